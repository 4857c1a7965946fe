"""A qnn artifact of SmolLM2 (the embedded default) measured three ways:
1. quality vs fp32 on parity's full default set (every shipped prompt + 32 greedy tokens, 4 windows of
   128 WikiText-2 test tokens), computed on the artifact's QDQ graphs run by the CPU EP: the HTP
   simulator would take about an hour for the set (~5 s per step), and `edgellama parity` measures
   how closely the HTP follows those graphs;
2. greedy text: the HTP simulator's first N tokens next to fp32's for a few prompts;
3. the simulator's time per prompt-graph call and per token-graph step.

Usage: python bench/qnn_smollm2.py ARTIFACT [--greedy-prompts 3] [--greedy-tokens 32]"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

GREEDY_PROMPTS = ["The capital of France is", "Water boils at a temperature of",
                  "What is the capital of France? Answer in one sentence."]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--greedy-prompts", type=int, default=3)
    ap.add_argument("--greedy-tokens", type=int, default=32)
    a = ap.parse_args()

    import edgellama
    from edgellama.runtime.open import open_artifact, read_artifact_manifest
    from edgellama.runtime.parity import (compare_reference, encode_prompts, greedy_rows, load_prompts,
                                          artifact_sequences, text_windows)
    from edgellama.runtime.qnn_session import cpu_twin
    from edgellama.runtime.session import EagerSession
    from edgellama.texts import evaluation_text

    manifest = read_artifact_manifest(a.artifact)
    context = manifest["runtime"]["max_context_len"]
    htp, _ = open_artifact(a.artifact, manifest)
    tok = htp.tokenizer
    twin = cpu_twin(a.artifact, manifest, tok)
    fp32 = EagerSession(edgellama.load_model(manifest["source"]["path"]), tok, context)

    prompts = encode_prompts(tok, load_prompts(None), context - 32)
    windows = text_windows(tok, evaluation_text(), 4, 128)
    t0 = time.perf_counter()
    quality = compare_reference(fp32, artifact_sequences(twin, prompts, windows, 32))["metrics"]
    print(f"QDQ graphs (CPU EP) vs fp32 on {len(prompts)} prompts x 32 + 4 x 128: top-1 {quality['top1_agreement']:.3f}, "
          f"KL {quality['kl_mean']:.4f}, ppl ratio {quality['ppl_ratio']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    name = f"qnn-smollm2-{manifest['recipe']}"
    header = ["recipe", "top-1 vs fp32", "KL", "ppl ratio", "simulator s / prompt call", "simulator s / token"]
    row = [manifest["recipe"], f"{quality['top1_agreement']:.3f}", f"{quality['kl_mean']:.4f}", f"{quality['ppl_ratio']:.3f}"]
    # written now too: the greedy part below takes the simulator tens of minutes
    write_results(name, {"artifact": str(a.artifact), "quality_vs_fp32_cpu_qdq": quality}, [row + ["-", "-"]], header)

    greedy, timing = [], {"prompt_call_s": [], "token_step_s": []}
    for text in GREEDY_PROMPTS[:a.greedy_prompts]:
        ids = tok.encode(text)
        htp.reset()
        t = time.perf_counter()
        logits = htp.prefill(ids)  # not `row`: that is the results table's row
        timing["prompt_call_s"].append(time.perf_counter() - t)
        ours = []
        for _ in range(a.greedy_tokens):
            ours.append(int(np.argmax(logits[-1])))
            t = time.perf_counter()
            logits = htp.decode(ours[-1])[None]
            timing["token_step_s"].append(time.perf_counter() - t)
        ref, _ = greedy_rows(fp32, ids, a.greedy_tokens)
        same = next((i for i, (x, y) in enumerate(zip(ours, ref)) if x != y), len(ours))
        greedy.append({"prompt": text, "htp": tok.decode(ours), "fp32": tok.decode(ref), "same_first_tokens": same})
        print(f"{text!r}\n  HTP : {tok.decode(ours)!r}\n  fp32: {tok.decode(ref)!r}  (same for {same} tokens)", flush=True)
    timing = {k: round(float(np.median(v)), 2) for k, v in timing.items()}
    record = {"artifact": str(a.artifact), "recipe": manifest["recipe"], "soc": manifest["runtime"]["soc"],
              "quality_vs_fp32_cpu_qdq": quality, "greedy": greedy, "simulator_median_seconds": timing}
    md = write_results(name, record, [row + [timing["prompt_call_s"], timing["token_step_s"]]], header)
    with md.open("a") as f:
        f.write("\nQuality: the artifact's QDQ graphs on the CPU EP vs fp32 over parity's default set "
                f"({len(prompts)} prompts x 32 greedy tokens + 4 x 128 WikiText-2 test tokens).\n\n"
                "| prompt | HTP simulator, greedy | fp32, greedy | same tokens |\n|---|---|---|---|\n")
        for g in greedy:
            f.write(f"| {g['prompt']} | {g['htp']!r} | {g['fp32']!r} | {g['same_first_tokens']} |\n".replace("\n'", "'"))
    print(md.read_text())


if __name__ == "__main__":
    main()
