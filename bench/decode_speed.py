"""Prefill and decode tok/s through ExecuTorch's C++ LLM runner (TextLLMRunner) for our .pte and for
the .pte that ExecuTorch's own exporter (`python -m executorch.extension.llm.export.export_llm`)
makes from the same model at the same scheme (8da4w, group 32, 8-bit per-row embeddings, custom SDPA
with KV cache, XNNPACK, same max_seq_len / max_context_len).

Both artifacts are built into a cache folder (default: the repository's .cache/peers) and reused
when present; the peer's is keyed by its options. export_llm on SmolLM2 takes the better part of an
hour, so it can be built on its own first:

    nice -n 19 python bench/decode_speed.py --build-peer-only

Both .pte files are measured by `edgellama bench --compare`'s code (edgellama/runtime/bench.py): each in
its own TextLLMRunner worker process, interleaved and counterbalanced (every .pte loaded first once,
order flipped every run, an idle gap before each), exactly --prompt-tokens prompt tokens and
--new-tokens generated.

With `--target onnx` it measures our ONNX export against onnxruntime_genai's model builder instead
(bench/onnx_decode_speed.py, whose options follow).

Usage: python bench/decode_speed.py [--runs 5] [--new-tokens 128] [--threads 2] [--cache DIR]
       python bench/decode_speed.py --target onnx [--runs 5] [--block-size 32] [--accuracy-level 4]"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS, write_results  # noqa: E402


RECIPE = "xnnpack-8da4w"



# --------------------------------------------------------------------------- our artifact

def ensure_ours(cache: Path, recipe: str) -> Path:
    """Our artifact for `recipe`, exported with the current code into the cache if absent."""
    out = cache / f"ours-smollm2-{recipe.removeprefix('xnnpack-')}"
    if (out / "manifest.json").exists():
        return out
    cmd = [sys.executable, "-m", "edgellama.cli", "export", "--recipe", recipe, "--out", str(out)]
    print("exporting ours:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return out


# --------------------------------------------------------------------------- the peer artifact

def peer_options(manifest: dict) -> dict:
    """export_llm settings matching our manifest's options."""
    o = manifest["options"]
    assert o["quant"] == "8da4w" and o["embedding_quant"] == "8w", o  # the only scheme mapped so far
    from importlib.metadata import version

    return {"qmode": "8da4w", "group_size": o["group_size"], "embedding_quantize": "8,0",
            "max_seq_length": o["max_seq_len"], "max_context_length": o["max_context_len"],
            "bos_id": manifest["tokenizer"]["bos_id"], "eos_ids": manifest["tokenizer"]["eos_ids"],
            "source_sha256": manifest["source"]["files"][0]["sha256"], "executorch": version("executorch")}


def peer_folder(cache: Path, opts: dict, n_layers: int | None = None) -> Path:
    key = hashlib.sha256(json.dumps({**opts, "n_layers": n_layers}, sort_keys=True).encode()).hexdigest()[:10]
    trunc = f"-{n_layers}layers" if n_layers else ""
    folder = cache / f"peer-smollm2-g{opts['group_size']}{trunc}-{key}"
    # export_llm takes a checkpoint whose path contains "8da4w" or "int8" for an already quantized one
    assert "8da4w" not in str(folder) and "int8" not in str(folder), folder
    return folder


def write_meta_checkpoint(folder: Path, n_layers: int | None = None) -> None:
    """consolidated.00.pth + params.json from our loader. Our parameter names are Meta's, with q/k rows
    in the HF rotate-half order, which export_llm reads as is when params say use_hf_rope."""
    import torch

    import edgellama
    from edgellama.default_model import default_model_path

    model = edgellama.load_model(default_model_path())
    a = model.args
    keep = a.n_layers if n_layers is None else n_layers
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("layers.") and int(k.split(".")[1]) >= keep:
            continue
        state[k] = v.detach().clone().contiguous()
    state.setdefault("output.weight", state["tok_embeddings.weight"].clone())  # untie
    assert set(state) >= {"tok_embeddings.weight", "norm.weight", "output.weight",
                          "layers.0.attention.wq.weight", "layers.0.feed_forward.w1.weight"}, sorted(state)[:20]
    torch.save(state, folder / "consolidated.00.pth")
    params = {"dim": a.dim, "n_layers": keep, "n_heads": a.n_heads, "n_kv_heads": a.n_kv_heads,
              "vocab_size": a.vocab_size, "hidden_dim": a.hidden_dim, "norm_eps": a.norm_eps,
              "rope_theta": a.rope_theta, "use_hf_rope": True}
    (folder / "params.json").write_text(json.dumps(params, indent=1))


def peer_config(folder: Path, opts: dict) -> Path:
    """The export_llm (hydra) config, as in executorch/examples/models/llama/config/llama_xnnpack.yaml."""
    meta = json.dumps({"get_bos_id": opts["bos_id"], "get_eos_ids": opts["eos_ids"]})
    text = f"""base:
  model_class: smollm2
  checkpoint: {folder / 'consolidated.00.pth'}
  params: {folder / 'params.json'}
  metadata: '{meta}'
model:
  use_kv_cache: True
  use_sdpa_with_kv_cache: True
  enable_dynamic_shape: True
  dtype_override: fp32
quantization:
  qmode: {opts['qmode']}
  group_size: {opts['group_size']}
  embedding_quantize: '{opts['embedding_quantize']}'
backend:
  xnnpack:
    enabled: True
    extended_ops: True
export:
  max_seq_length: {opts['max_seq_length']}
  max_context_length: {opts['max_context_length']}
  output_dir: {folder}
  output_name: model.pte
"""
    path = folder / "export_llm.yaml"
    path.write_text(text)
    return path


def build_peer(cache: Path, opts: dict, n_layers: int | None = None) -> Path:
    """Run export_llm (in a child process, niced) unless its .pte is cached; record wall time and peak RSS."""
    folder = peer_folder(cache, opts, n_layers)
    pte = folder / "model.pte"
    if (folder / "build.json").exists() and pte.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "build.pid"
    if lock.exists():
        pid = int(lock.read_text())
        if Path(f"/proc/{pid}").exists():
            print(f"peer build already running (pid {pid}, log {folder / 'export_llm.log'}); waiting", flush=True)
            while Path(f"/proc/{pid}").exists():
                time.sleep(30)
            if (folder / "build.json").exists():
                return folder
            sys.exit(f"the peer build by pid {pid} ended without a .pte; see {folder / 'export_llm.log'}")
    lock.write_text(str(os.getpid()))
    try:
        if not (folder / "params.json").exists():
            write_meta_checkpoint(folder, n_layers)
        cfg = peer_config(folder, opts)
        cmd = [sys.executable, "-m", "executorch.extension.llm.export.export_llm", "--config", str(cfg)]
        (folder / "command.txt").write_text(" ".join(cmd) + "\n")
        print(f"building peer: {' '.join(cmd)}\n  log: {folder / 'export_llm.log'}", flush=True)
        t0 = time.perf_counter()
        with open(folder / "export_llm.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                    preexec_fn=lambda: os.nice(19))
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code or not pte.exists():
            sys.exit(f"export_llm failed (exit {code}); see {folder / 'export_llm.log'}")
        (folder / "build.json").write_text(json.dumps({
            "command": cmd, "options": opts, "n_layers": n_layers, "seconds": round(seconds, 1),
            "peak_rss_bytes": usage.ru_maxrss * 1024, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "load_average_at_end": os.getloadavg()}, indent=1))
        (folder / "consolidated.00.pth").unlink()  # 0.5 GB; params.json + the config say how it was made
    finally:
        lock.unlink(missing_ok=True)
    return folder


# --------------------------------------------------------------------------- top-1 agreement

TOP1 = r"""
import json, sys
import torch
import executorch.kernels.quantized  # noqa: F401
from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
from executorch.runtime import Runtime
method = Runtime.get().load_program(sys.argv[1]).load_method("forward")
tokens = json.loads(sys.argv[2])
top = []
for pos, t in enumerate(tokens):  # one token a step: export_llm's .pte returns the last position only
    (logits,) = method.execute([torch.tensor([[t]], dtype=torch.long), torch.tensor([pos], dtype=torch.long)])
    top.append(int(logits.reshape(-1, logits.shape[-1])[-1].argmax()))
print(json.dumps(top))
"""


def top1_agreement(ptes: dict, tok, n_tokens: int = 96) -> dict:
    """Share of positions of an English WikiText-2 window (teacher-forced) where each .pte's top-1
    next token equals the fp32 model's (our loader's dequantized weights)."""
    import torch

    import edgellama
    from edgellama.default_model import default_model_path
    from edgellama.runtime.bench_prompt import exact_prompt, paragraphs

    _, tokens = exact_prompt(tok, paragraphs(None), n_tokens, skip=1)
    model = edgellama.load_model(default_model_path()).eval()
    with torch.no_grad():
        ref = model(torch.tensor([tokens]))[0].argmax(-1).tolist()
    del model
    out = {"tokens": len(tokens), "text": tok.decode(tokens)}
    for name, pte in ptes.items():
        res = subprocess.run([sys.executable, "-c", TOP1, str(pte), json.dumps(tokens)], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(res.stderr[-2000:])
        top = json.loads(res.stdout.strip().splitlines()[-1])
        out[name] = sum(a == b for a, b in zip(top, ref)) / len(ref)
    return out


def main():
    pick = argparse.ArgumentParser(add_help=False)
    pick.add_argument("--target", choices=["xnnpack", "onnx"], default="xnnpack")
    target, argv = pick.parse_known_args()
    if target.target == "onnx":
        import onnx_decode_speed

        return onnx_decode_speed.main(argv)
    ap = argparse.ArgumentParser(epilog="--target onnx: our ONNX export against onnxruntime_genai's builder "
                                        "(bench/onnx_decode_speed.py; see --target onnx --help)")
    ap.add_argument("--recipe", default=RECIPE)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--ours", type=Path, default=None, help="an existing artifact folder instead of exporting")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2, help="XNNPACK threadpool size, the same for both")
    ap.add_argument("--build-peer-only", action="store_true")
    ap.add_argument("--peer-layers", type=int, default=None, help="truncate the peer (a dry run of export_llm)")
    ap.add_argument("--no-top1", action="store_true", help="skip top-1 agreement with fp32")
    ap.add_argument("--name", default="decode_speed-smollm2")
    a = ap.parse_args(argv)
    cache = a.cache or PEERS
    cache.mkdir(parents=True, exist_ok=True)

    ours = a.ours or ensure_ours(cache, a.recipe)
    manifest = json.loads((ours / "manifest.json").read_text())
    from edgellama.default_model import default_model_path

    # the peer is built from the embedded default model: ours must come from the same file
    assert Path(manifest["source"]["path"]) == default_model_path(), manifest["source"]["path"]
    opts = peer_options(manifest)
    peer = build_peer(cache, opts, a.peer_layers)
    if a.build_peer_only:
        print((peer / "build.json").read_text())
        return

    from edgellama.runtime.bench import Settings, Subject, artifact_subject, measure

    # export_llm's .pte takes at most max_seq_len - 1 tokens per forward (its token_dim bound) while
    # the runner prefills chunks of max_seq_len: keep the prompt to one chunk it accepts.
    assert a.prompt_tokens <= opts["max_seq_length"] - 1, f"a {a.prompt_tokens}-token prompt would not prefill on the export_llm .pte"
    ptes = {"ours": ours / manifest["runtime"]["model_file"], "export_llm": peer / "model.pte"}
    mine = artifact_subject(ours, a.threads, a.prompt_tokens + a.new_tokens, force_memory=False)
    # the peer has no manifest: the same TextLLMRunner worker, pointed at its .pte with our tokenizer
    peer_bytes = ptes["export_llm"].stat().st_size
    theirs = Subject("export_llm", {**mine.spec, "model_file": str(ptes["export_llm"])}, mine.tokenizer,
                     {**mine.about, "artifact": str(peer), "recipe": None, "quantization": opts,
                      "artifact_bytes": peer_bytes, "model_bytes": peer_bytes})
    subjects = [mine, theirs]
    measured = measure(subjects, Settings(a.prompt_tokens, a.new_tokens, a.runs, 1, a.threads, None),
                       lambda msg: print(msg, flush=True))
    summary = {}
    for name, r in zip(ptes, measured["results"]):
        summary[name] = {"pte": str(ptes[name]), "pte_bytes": ptes[name].stat().st_size, "threads": r["threads"],
                         "prefill_tok_s": r["prefill_tok_s"]["median"], "decode_tok_s": r["decode_tok_s"]["median"],
                         "prompt_tokens": a.prompt_tokens, "generated_tokens": a.new_tokens, "runs": r["runs"]}
    threads = {name: s["threads"] for name, s in summary.items()}
    n_prompt = a.prompt_tokens
    top1 = None if a.no_top1 else top1_agreement(ptes, subjects[0].tokenizer)
    ratio = summary["ours"]["decode_tok_s"] / summary["export_llm"]["decode_tok_s"]
    build = json.loads((peer / "build.json").read_text())
    record = {"recipe": a.recipe, "ours_options": manifest["options"], "peer_options": opts,
              "peer_build": build, "bench": {k: measured[k] for k in ("machine", "settings", "load_average")},
              "new_tokens": a.new_tokens, "runs": a.runs,
              "load_average": os.getloadavg(), "decode_ratio_ours_over_peer": ratio, "top1_agreement_with_fp32": top1,
              "results": summary}
    q = manifest["quantization"]
    built = {"ours": f"edgellama export --recipe {a.recipe} ({manifest['export_seconds'] / 60:.0f} min)",
             "export_llm": f"export_llm {opts['qmode']} g{opts['group_size']} emb {opts['embedding_quantize']} "
                           f"({build['seconds'] / 60:.0f} min, {build['peak_rss_bytes'] / 2**30:.1f} GiB peak)"}
    rows = [[name, built[name], f"{s['pte_bytes'] / 2**20:.1f}", s["prompt_tokens"], f"{s['prefill_tok_s']:.1f}",
             f"{s['decode_tok_s']:.1f}", f"{top1[name]:.3f}" if top1 else "-"] for name, s in summary.items()]
    rows.append(["ours / export_llm", "",
                 f"{summary['ours']['pte_bytes'] / summary['export_llm']['pte_bytes']:.2f}", "",
                 f"{summary['ours']['prefill_tok_s'] / summary['export_llm']['prefill_tok_s']:.2f}", f"**{ratio:.2f}**",
                 ""])
    md = write_results(a.name, record, rows,
                       [".pte", "built by", "MiB", "prompt tokens", "prefill tok/s", "decode tok/s",
                        f"top-1 = fp32 ({top1['tokens'] if top1 else 0} tokens)"])
    with open(md, "a") as f:
        f.write(f"\nTextLLMRunner, {threads['ours']} threads, temperature 0, {a.new_tokens} new tokens after a "
                f"{n_prompt}-token WikiText-2 prompt; medians of {2 * a.runs} generations per .pte ({a.runs} with "
                f"each loaded first), interleaved as `edgellama bench --compare` does. Load average {os.getloadavg()[0]:.1f} at the end.\n\n"
                f"Ours: {q['scheme']} g{q['group_size']} {q['algo']}, output head {q['output']}, "
                f"{len(q.get('keep_8bit', []))} linears kept 8-bit, embedding {q['embedding']}. export_llm: every "
                f"linear, the output head included, {opts['qmode']} g{opts['group_size']} (its default HQQ scales), "
                f"embedding {opts['embedding_quantize']}; only the last position's logits. Top-1: teacher-forced "
                f"next-token argmax against our fp32 model on a {top1['tokens'] if top1 else 0}-token WikiText-2 "
                f"test window.\n")
    print(md.read_text())


if __name__ == "__main__":
    main()
