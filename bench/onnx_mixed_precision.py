"""Mixed precision for the ONNX target (issue 16, item 3 and acceptance 4): size, decode speed and
quality of SmolLM2 ONNX artifacts against today's recipes.

Give it artifact folders already exported (the export commands are in docs/onnx.md; each takes
4-10 min here, and a level-only variant is made with bench/onnx_relevel.py instead). For each one
it reads the size of the weights file and, for the labels given to --parity, the agreement with fp32
from `edgellama parity --json` (LABEL=FILE: a JSON already measured on that artifact; LABEL=run: run
it here), then times all of them together with `edgellama bench --compare --json --threads 2`
(interleaved and counterbalanced, through onnxruntime-genai; or --bench FILE, that command's JSON
already measured), ratios to the first. Heavy processes run one at a time.
Written to bench/results/NAME.{json,md}.

    python bench/onnx_mixed_precision.py a8=DIR mixed=DIR [--parity mixed=run] [--bench FILE] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_results  # noqa: E402

CLI = [sys.executable, "-m", "edgellama.cli"]
# The XNNPACK default's figure on parity's defaults (docs/parity.md, 2026-11-26): the bar to meet.
XNNPACK_DEFAULT_TOP1 = 0.828
QUANT_OPTIONS = ("quant", "group_size", "quant_algo", "size_budget", "embedding_quant", "output_quant")


def labelled(pairs: list[str], what: str) -> dict[str, Path]:
    out = {}
    for p in pairs:
        label, sep, path = p.partition("=")
        if not sep or not label:
            sys.exit(f"{what} {p!r}: write LABEL=PATH")
        out[label] = Path(path)
    return out


def parity(folder: Path, given: Path | None) -> dict | None:
    """`edgellama parity --json` on parity's defaults; exit 1 (a FAIL) still carries every number."""
    if given is None:
        return None
    if str(given) != "run":
        return json.loads(given.read_text())
    res = subprocess.run([*CLI, "parity", str(folder), "--json"], capture_output=True, text=True, cwd=REPO)
    if res.returncode not in (0, 1):
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout)


def summary(folder: Path, record: dict | None) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    rt, q = manifest["runtime"], manifest["quantization"]
    row = {"artifact": str(folder), "made_by": made_by(manifest), "accuracy_level": rt["accuracy_level"],
           "accuracy_levels_by_bits": rt.get("accuracy_levels_by_bits"), "output": q["output"],
           "keep_8bit": len(q["keep_8bit"]), "data_mib": round(manifest["files"]["model.onnx.data"]["bytes"] / 2**20, 1)}
    if record is None:
        return {**row, **{k: "-" for k in ("top1_vs_fp32", "kl_vs_fp32", "ppl_ratio_vs_fp32", "top1_vs_twin")}}
    fp32 = record["references"]["fp32"]["metrics"]
    twin = record["references"]["twin"]["metrics"]
    return {**row, "top1_vs_fp32": round(fp32["top1_agreement"], 4), "kl_vs_fp32": round(fp32["kl_mean"], 4),
            "ppl_ratio_vs_fp32": round(fp32["ppl_ratio"], 4), "top1_vs_twin": round(twin["top1_agreement"], 4),
            "parity_verdict": record["verdict"], "parity_positions": fp32["positions"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", nargs="+", help="LABEL=DIR; the first is the speed baseline")
    p.add_argument("--parity", action="append", default=[], help="LABEL=parity.json already measured, or LABEL=run")
    p.add_argument("--bench", type=Path, help="`edgellama bench --compare --json` of these artifacts, in this order")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--name", default="onnx_mixed_precision-smollm2")
    p.add_argument("--note", default="", help="appended to the Markdown note (e.g. figures measured elsewhere)")
    a = p.parse_args()
    folders, given = labelled(a.artifacts, "artifact"), labelled(a.parity, "--parity")
    rows = {label: summary(f, parity(f, given.get(label))) for label, f in folders.items()}
    bench_json = a.bench or REPO / ".cache" / f"{a.name}-bench.json"  # git-ignored
    if a.bench is None:
        subprocess.run([*CLI, "bench", "--compare", *map(str, folders.values()), "--threads", "2", "--runs", str(a.runs),
                        "--json", "--out", str(bench_json)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    bench = json.loads(bench_json.read_text())
    if [r["artifact"] for r in bench["results"]] != [str(f) for f in folders.values()]:
        sys.exit(f"--bench {bench_json}: measured other artifacts, or in another order")
    for label, r in zip(folders, bench["results"]):
        rows[label]["decode_tok_s"] = round(r["decode_tok_s"]["median"], 1)
        rows[label]["prefill_tok_s"] = round(r["prefill_tok_s"]["median"], 1)
    base = rows[next(iter(folders))]["decode_tok_s"]
    header = ["artifact", "export", "levels (4-bit / 8-bit)", "head", "8-bit linears", "data MiB",
              "top-1 vs fp32", "KL vs fp32", "ppl ratio", "top-1 vs twin", "decode tok/s", f"decode / {next(iter(folders))}"]
    table = [[label, r["made_by"], levels(r), r["output"], r["keep_8bit"], r["data_mib"], r["top1_vs_fp32"],
              r["kl_vs_fp32"], r["ppl_ratio_vs_fp32"], r["top1_vs_twin"], r["decode_tok_s"],
              round(r["decode_tok_s"] / base, 3)] for label, r in rows.items()]
    load, settings = bench["load_average"], bench["settings"]
    note = (f"Quality: `edgellama parity --json` defaults (22 prompts + 32 greedy tokens, 4 x 128 WikiText-2 test tokens), "
            f"the XNNPACK default measured {XNNPACK_DEFAULT_TOP1} top-1 vs fp32 there (docs/parity.md). Speed: `edgellama bench "
            f"--compare --threads 2 --runs {settings['runs']}` (onnxruntime-genai, {settings['prompt_len']}-token prompt, "
            f"{settings['gen_len']} new tokens, medians). Load average (1/5/15 min) at start "
            f"{load['start'][0]:.1f}/{load['start'][1]:.1f}/{load['start'][2]:.1f}, at end {load['end'][0]:.1f}: "
            f"other jobs shared the 2 cores, so compare the ratios, not the absolute speeds. Bench JSON written "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(bench_json.stat().st_mtime))}. {a.note}").strip()
    print(write_results(a.name, {"rows": rows, "bench": {k: bench[k] for k in ("settings", "load_average", "ratios")},
                                 "os_loadavg_end": os.getloadavg()}, table, header, note))


def made_by(manifest: dict) -> str:
    """The recipe and the options given over it; a level rewrite (bench/onnx_relevel.py) says so."""
    from edgellama.export import ExportOptions, load_recipe

    recipe, default = load_recipe(manifest["recipe"]), ExportOptions()
    over = [f"--{k.replace('_', '-')} {v}" for k, v in manifest["options"].items()
            if k in QUANT_OPTIONS and recipe.get(k, getattr(default, k)) != v]
    rewritten = manifest["runtime"].get("accuracy_levels_by_bits")
    return " ".join([f"--recipe {manifest['recipe']}", *over, *(["+ onnx_relevel.py"] if rewritten else [])])


def levels(r: dict) -> str:
    by_bits = r["accuracy_levels_by_bits"]
    if by_bits:
        return f"{by_bits.get('4', r['accuracy_level'])} / {by_bits.get('8', r['accuracy_level'])}"
    return f"{r['accuracy_level']} / {r['accuracy_level']}"


if __name__ == "__main__":
    main()
