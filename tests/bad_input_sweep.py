"""Acceptance 3 of issue 15: run the bad-input list of the issue, each case as a user would (a fresh
`python -m edgellama.cli` process, no --debug), on tiny models, and print the counts: tracebacks,
wrong exit codes, internal errors (exit 3), error lines that are not exactly one.

    .venv/bin/python tests/bad_input_sweep.py [--work DIR] [--jobs 2] [--report bench/results/bad_input_sweep.md]

Takes ~10 min on 2 quiet cores (two tiny exports, then ~50 processes that each import torch, four of
them small exports that must succeed). Exit status 0
when every case got its expected exit code with one error line and no traceback."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from checkpoints import hf_model, odd_width_hf, write_gguf, write_hf, write_meta  # noqa: E402
from conftest import REPO, VOCAB, training_text  # noqa: E402
from test_bad_artifacts import flip_byte, rehash  # noqa: E402


def cli(*args, cwd=None):
    return [sys.executable, "-m", "edgellama.cli", *map(str, args)], cwd


def tokenizer(work: Path, vocab: int, name: str) -> Path:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(sentence_iterator=iter(training_text()), model_prefix=str(work / name),
                                   vocab_size=vocab, model_type="bpe", byte_fallback=True, minloglevel=2,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
    return work / f"{name}.model"


def edit_json(path: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def prepare(work: Path) -> dict:
    """Tiny checkpoints and artifacts the cases damage copies of."""
    sp = tokenizer(work, VOCAB, "tok")
    model = hf_model(VOCAB)
    base = {"sp": sp, "meta": write_meta(work / "meta", model.state_dict(), 1, tokenizer=sp),
            "hf": write_hf(work / "hf", model, tokenizer=sp), "w80": odd_width_hf(work / "w80", sp),
            "big_sp": tokenizer(work, 500, "big"),
            "gguf_ffn320": write_gguf(work / "ffn320.gguf", model.state_dict(), sp, hidden_dim=320)}
    for name, extra in (("pte", []), ("onnx", ["--target", "onnx"])):
        out = work / name
        if not (out / "manifest.json").exists():
            cmd, _ = cli("export", "--model", base["meta"], "--max-seq-len", "32", "--max-context-len", "64",
                         "--out", out, *extra)
            subprocess.run(cmd, check=True, capture_output=True)
        base[name] = out
    return base


def cases(work: Path, b: dict) -> list[tuple[str, list, str | None, int]]:
    """(name, command, cwd, expected exit code)."""
    c = []

    def hf_with(name, change):
        return edit_json(copy(b["hf"], work / name) / "config.json", change).parent

    for name, change in [("config: key missing", lambda d: d.pop("hidden_size")),
                         ("config: string for an int", lambda d: d.update(num_hidden_layers="3")),
                         ("config: float for an int", lambda d: d.update(intermediate_size=352.5))]:
        c.append((name, *cli("inspect", hf_with(name.replace(" ", "_").replace(":", ""), change)), 2))
    broken = copy(b["hf"], work / "hf_broken")
    (broken / "config.json").write_text('{"hidden_size": 96,')
    c.append(("config: broken JSON", *cli("inspect", broken), 2))
    listed = copy(b["hf"], work / "hf_list")
    (listed / "config.json").write_text("[1, 2]")
    c.append(("config: a list", *cli("inspect", listed), 2))
    c.append(("config.json contradicts the weights (inspect)",
              *cli("inspect", hf_with("hf_ffn320", lambda d: d.update(intermediate_size=320))), 2))
    ffn384 = copy(b["meta"], work / "meta_ffn384")
    edit_json(ffn384 / "params.json", lambda d: d.update(multiple_of=64))
    c.append(("params.json contradicts the weights (inspect)", *cli("inspect", ffn384), 2))
    c.append(("GGUF metadata contradicts the tensors (inspect)", *cli("inspect", b["gguf_ffn320"]), 2))
    params = copy(b["meta"], work / "meta_params")
    (params / "params.json").write_text("{")
    c.append(("params.json: broken JSON", *cli("inspect", params), 2))

    def art(name, src="pte"):
        return copy(b[src], work / name)
    for name, content in [("manifest: invalid JSON", "{nope"), ("manifest: empty", "")]:
        a = art(name.replace(" ", "_").replace(":", ""))
        (a / "manifest.json").write_text(content)
        c.append((name, *cli("run", a, "-p", "hi", "-n", "2"), 2))
    a = art("no_sha")
    edit_json(a / "manifest.json", lambda m: m["files"]["model.pte"].pop("sha256"))
    c.append(("manifest: entry without sha256", *cli("run", a, "-p", "hi", "-n", "2"), 2))
    for name, change in [("manifest: files removed, byte flipped", lambda m: m.pop("files")),
                         ("manifest: files {}, byte flipped", lambda m: m.update(files={}))]:
        a = art(name.split(",")[0].replace(" ", "_").replace(":", "").replace("{}", "empty"))
        flip_byte(a / "model.pte")
        edit_json(a / "manifest.json", change)
        c.append((name + " (run)", *cli("run", a, "-p", "hi", "-n", "2"), 2))
        c.append((name + " (parity)", *cli("parity", a), 2))
    for name, damage in [("truncated .pte", lambda d: d[: len(d) // 2]), ("empty .pte", lambda d: b"")]:
        a = art(name.replace(" ", "_").replace(".", ""))
        (a / "model.pte").write_bytes(damage((a / "model.pte").read_bytes()))
        rehash(a)
        c.append((name + " behind a re-hashed manifest", *cli("run", a, "-p", "hi", "-n", "2"), 2))
    a = art("trunc_data", "onnx")
    (a / "model.onnx.data").write_bytes((a / "model.onnx.data").read_bytes()[:5000])
    rehash(a)
    c.append(("truncated .onnx.data behind a re-hashed manifest", *cli("run", a, "-p", "hi", "-n", "2"), 2))
    a = art("garbage_onnx", "onnx")
    (a / "model.onnx").write_bytes(os.urandom(3000))
    rehash(a)
    c.append(("garbage .onnx behind a re-hashed manifest", *cli("run", a, "-p", "hi", "-n", "2"), 2))
    a = art("big_tokenizer")
    shutil.copy(b["big_sp"], a / "tokenizer.model")
    rehash(a)
    c.append(("tokenizer larger than the model's vocabulary", *cli("run", a, "-p", "hi", "-n", "2"), 2))
    long_prompt = "word " * 200
    c.append(("prompt over the context: run .pte", *cli("run", b["pte"], "-p", long_prompt), 2))
    c.append(("prompt over the context: run ONNX", *cli("run", b["onnx"], "-p", long_prompt), 2))
    c.append(("prompt over the context: generate (model context 256)",
              *cli("generate", "--model", b["hf"], "-p", "word " * 400), 2))
    huge = hf_with("hf_huge_context", lambda d: d.update(max_position_embeddings=100_000_000))
    c.append(("generate --max-context-len 100000000",
              *cli("generate", "--model", huge, "-p", "hi", "--max-context-len", "100000000"), 2))
    (work / "a_file").write_text("mine")
    c.append(("--out under a file", *cli("export", "--model", b["meta"], "--out", work / "a_file" / "x"), 2))
    c.append(("--force onto a file", *cli("export", "--model", b["meta"], "--out", work / "a_file", "--force"), 2))
    if b.get("rofs"):
        c.append(("--out on a read-only filesystem", *cli("export", "--model", b["meta"], "--out", b["rofs"] / "art"), 2))
    c.append(("--out SRC --force", *cli("export", "--model", b["meta"], "--out", b["meta"], "--force"), 2))
    user = work / "user_folder"
    user.mkdir(exist_ok=True)
    (user / "thesis.txt").write_text("mine")
    c.append(("--out . --force in a user folder", *cli("export", "--model", b["meta"], "--out", ".", "--force", cwd=user), 2))
    c.append(("--out user folder --force", *cli("export", "--model", b["meta"], "--out", user, "--force"), 2))
    c.append(("parity --report naming a file", *cli("parity", b["pte"], "--report", work / "a_file"), 2))
    for name, content in [("recipe max_seq_len = 12.5", b'max_seq_len = 12.5\n'),
                          ("recipe not UTF-8", 'quant = "8da4w" # caf\xe9\n'.encode("latin-1"))]:
        recipe = work / (name.replace(" ", "_").replace("=", "").replace(".", "") + ".toml")
        recipe.write_bytes(content)
        c.append((name, *cli("export", "--model", b["meta"], "--recipe", recipe, "--out", work / "r_out"), 2))
    c.append(("--quant 8da4w --group-size 0, width 80",
              *cli("export", "--model", b["w80"], "--quant", "8da4w", "--group-size", "0", "--out", work / "g0"), 2))
    c.append(("--quant 8da8w --group-size 32",
              *cli("export", "--model", b["meta"], "--quant", "8da8w", "--group-size", "32", "--out", work / "g8"), 2))
    c.append(("parity --reference of other dimensions", *cli("parity", b["pte"], "--reference", b["w80"]), 2))
    for name, content in [("binary", b"\x00\x01binary\x00" * 50), ("latin-1", "caf\xe9 cr\xe8me ".encode("latin-1") * 40)]:
        text = work / f"{name}.txt"
        text.write_bytes(content)
        c.append((f"parity --text {name}", *cli("parity", b["pte"], "--text", text), 2))
        c.append((f"eval-ppl --text {name}", *cli("eval-ppl", "--model", b["hf"], "--text", text, "--ctx", "64"), 2))
    c.append(("--quant fp32 on widths no group size divides (exports)",
              *cli("export", "--model", b["w80"], "--quant", "fp32", "--max-seq-len", "16", "--max-context-len", "32",
                   "--out", work / "ok_fp32_w80"), 0))
    (work / "ok_empty_out").mkdir()
    c.append(("an existing empty --out (exports)",
              *cli("export", "--model", b["meta"], "--target", "onnx", "--quant", "fp32", "--max-seq-len", "16",
                   "--out", work / "ok_empty_out"), 0))
    c.append(("default recipe on a model of context 256 (adjusted, exports)",
              *cli("export", "--model", b["meta"], "--out", work / "ok_default"), 0))
    c.append(("--quant magic", *cli("export", "--model", b["meta"], "--quant", "magic", "--out", work / "m"), 2))
    c.append(("no such checkpoint", *cli("inspect", work / "nope"), 2))
    c.append(("--quant 8da8w with the default group size (adjusted, exports)",
              *cli("export", "--model", b["meta"], "--quant", "8da8w", "--quant-algo", "rtn", "--size-budget", "1.0",
                   "--max-seq-len", "32", "--max-context-len", "64", "--out", work / "ok_8da8w"), 0))
    return c


def run_case(case) -> dict:
    name, cmd, cwd, expected = case
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "EDGELLAMA_DEBUG": ""})
    lines = res.stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith(("error:", "internal error:"))]
    notes = [line for line in lines if line.startswith("note:")]
    return {"case": name, "rc": res.returncode, "expected": expected, "traceback": "Traceback" in res.stderr,
            "error_lines": len(ours), "message": (ours or notes or lines or [""])[-1]}


@contextmanager
def read_only_filesystem(folder: Path):
    """A real read-only tmpfs (needs root, as the tests' own); None where it cannot be mounted."""
    folder.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    try:
        yield folder if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def masked(text: str, work: Path) -> str:
    """Messages without this machine's paths, so the report can be committed."""
    for path, name in ((work, "WORK"), (REPO, "REPO"), (Path(sys.prefix), "VENV")):
        text = text.replace(str(path.resolve()), name).replace(str(path), name)
    return text


def write_report(path: Path, results: list[dict], summary: str, seconds: float, work: Path) -> None:
    import psutil

    path.parent.mkdir(parents=True, exist_ok=True)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM "
               f"({platform.processor() or platform.machine()}), load average {os.getloadavg()[0]:.1f} at the end")
    bar = "\\|"  # a literal | inside a Markdown table cell
    rows = [f"| {'ok' if r['ok'] else '**BAD**'} | {r['rc']} | {r['expected']} | {r['case']} | "
            f"{masked(r['message'], work).replace('|', bar)} |" for r in results]
    path.write_text("\n".join([
        "# Bad-input sweep (issue 15, acceptance 3)", "",
        f"Run {when} on {machine}; {seconds / 60:.1f} min in all.", "",
        f"Command: `.venv/bin/python {masked(' '.join(sys.argv), work)}` (each case a fresh `python -m edgellama.cli` process, "
        "no --debug; WORK is the sweep's working folder).", "",
        f"**{summary}**", "",
        "| | rc | want | case | last error (or note) line |", "|---|---|---|---|---|", *rows, ""]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="working folder (kept; default: a temporary one, removed)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report", type=Path, help="also write the results as Markdown to this file")
    a = ap.parse_args()
    started = time.monotonic()
    work = (a.work or Path(tempfile.mkdtemp(prefix="edgellama-sweep-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        base = prepare(work)  # kept across runs with --work; the damaged copies are made afresh
        shutil.rmtree(work / "cases", ignore_errors=True)
        (work / "cases").mkdir()
        with read_only_filesystem(work / "cases" / "rofs") as rofs:
            todo = cases(work / "cases", {**base, "rofs": rofs})
            with ThreadPoolExecutor(a.jobs) as pool:
                results = list(pool.map(run_case, todo))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for r in results:
        r["ok"] = r["rc"] == r["expected"] and not r["traceback"] and (r["expected"] == 0 or r["error_lines"] == 1)
        print(f"{'ok ' if r['ok'] else 'BAD'} rc {r['rc']} (want {r['expected']})  {r['case']}: {masked(r['message'], work)}")
    tracebacks = sum(r["traceback"] for r in results)
    wrong = sum(r["rc"] != r["expected"] for r in results)
    internal = sum(r["rc"] == 3 for r in results)
    not_one = sum(r["expected"] and r["error_lines"] != 1 for r in results)
    summary = (f"{len(results)} cases: {tracebacks} tracebacks, {wrong} wrong exit codes, {internal} internal errors, "
               f"{not_one} without exactly one error line")
    if rofs is None:
        summary += " (no read-only filesystem could be mounted: that case was left out)"
    print(f"\n{summary}")
    if a.report:
        write_report(a.report, results, summary, time.monotonic() - started, work)
        print(f"report: {a.report}")
    return 1 if tracebacks or wrong or not_one else 0


if __name__ == "__main__":
    sys.exit(main())
