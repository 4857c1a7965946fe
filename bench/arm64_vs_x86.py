"""How far ExecuTorch's aarch64 kernels (under QEMU) are from the x86 ones on the same .pte (issue 17,
acceptance 2), measured as the probe before the issue did: 16-token prompts, then 48 greedy steps of the x86 run,
which the ARM run is teacher-forced on; per step, both runs' logits compared. The prompts are the
last 16 tokens of the shipped prompts (their first 16 are often the same chat-template system
text), duplicates dropped. Also checks whether two x86 runs, two ARM runs of one profile, and the
ARM CPU profiles are bit-identical.
Written to bench/results/arm64_vs_x86-NAME.{json,md}.

Usage: python bench/arm64_vs_x86.py [--artifact DIR] [--prompts 4] [--steps 48] [--cpus neoverse-n1,max-nosme]"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_results  # noqa: E402

DEFAULT_ARTIFACT = REPO / ".cache" / "smollm2-xnnpack-8da4w"  # the slow tests' cached default export
PROMPT_TOKENS = 16


def greedy(session, prompt: list[int], steps: int) -> tuple[list[int], np.ndarray]:
    session.reset()
    rows = [session.prefill(prompt)[-1]]
    tokens = []
    for _ in range(steps):
        tokens.append(int(np.argmax(rows[-1])))
        rows.append(session.decode(tokens[-1]))
    return tokens, np.stack(rows)


def forced(session, prompt: list[int], tokens: list[int]) -> np.ndarray:
    session.reset()
    rows = [session.prefill(prompt)[-1]]
    rows += [session.decode(t) for t in tokens]
    return np.stack(rows)


def compare(x86: np.ndarray, arm: np.ndarray) -> dict:
    top5 = [len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5 for a, b in zip(x86, arm)]
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(x86.astype(np.float64), arm.astype(np.float64))]
    same = x86.argmax(-1) == arm.argmax(-1)
    diff = np.abs(x86.astype(np.float64) - arm)
    return {"rows": len(x86), "top1_agree": int(same.sum()), "parted_at": np.flatnonzero(~same).tolist(),
            "top5_overlap": float(np.mean(top5)), "max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "correlation_mean": float(np.mean(corr))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--cpus", default="neoverse-n1,max-nosme")
    parser.add_argument("--name", default="smollm2")
    args = parser.parse_args()

    from edgellama.runtime.open import open_artifact
    from edgellama.runtime.parity import load_prompts

    x86, manifest = open_artifact(args.artifact)
    prompts = []
    for p in load_prompts(None):
        ids = x86.tokenizer.encode(x86.tokenizer.chat_prompt(p["prompt"]) if p["chat"] else p["prompt"])
        if len(ids) >= PROMPT_TOKENS and ids[-PROMPT_TOKENS:] not in prompts:
            prompts.append(ids[-PROMPT_TOKENS:])
    prompts = prompts[:args.prompts]
    runs = [greedy(x86, p, args.steps) for p in prompts]
    again = [greedy(x86, p, args.steps)[1] for p in prompts]
    x86_repeatable = all(np.array_equal(a, r[1]) for a, r in zip(again, runs))
    per_cpu, arm_rows = {}, {}
    for cpu in args.cpus.split(","):
        started = time.perf_counter()
        arm, _ = open_artifact(args.artifact, manifest, arch="arm64", cpu=cpu, say=print)
        arm_rows[cpu] = [forced(arm, p, tokens) for p, (tokens, _) in zip(prompts, runs)]
        if cpu == args.cpus.split(",")[0]:  # the same session again on the first prompt: is ARM repeatable?
            arm_repeatable = np.array_equal(forced(arm, prompts[0], runs[0][0]), arm_rows[cpu][0])
        arm.close()
        per_prompt = [compare(r[1], a) for r, a in zip(runs, arm_rows[cpu])]
        rows = sum(c["rows"] for c in per_prompt)
        per_cpu[cpu] = {"top1_agreement": sum(c["top1_agree"] for c in per_prompt) / rows,
                        "top5_overlap": float(np.mean([c["top5_overlap"] for c in per_prompt])),
                        "max_abs_logit_diff": max(c["max_abs"] for c in per_prompt),
                        "mean_abs_logit_diff": float(np.mean([c["mean_abs"] for c in per_prompt])),
                        "correlation_mean": float(np.mean([c["correlation_mean"] for c in per_prompt])),
                        "per_prompt": per_prompt, "seconds": round(time.perf_counter() - started, 1),
                        "first_logits_x86": runs[0][1][0][:5].round(2).tolist(),
                        "first_logits_arm": arm_rows[cpu][0][0][:5].round(2).tolist()}
        print(cpu, {k: v for k, v in per_cpu[cpu].items() if k != "per_prompt"}, flush=True)
    cpus = list(arm_rows)
    profiles_identical = all(np.array_equal(a, b) for c in cpus[1:] for a, b in zip(arm_rows[cpus[0]], arm_rows[c]))
    between = {f"{cpus[0]} vs {c}": compare(np.concatenate(arm_rows[cpus[0]]), np.concatenate(arm_rows[c]))
               for c in cpus[1:]}
    for pair, c in between.items():
        c["top1_agreement"] = c["top1_agree"] / c["rows"]
        del c["parted_at"]
        print(pair, c, flush=True)
    shown = args.artifact.resolve()
    shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else Path(shown.name)  # no machine paths in results
    record = {"artifact": str(shown), "recipe": manifest.get("recipe"), "prompt_tokens": PROMPT_TOKENS,
              "steps": args.steps, "prompts": len(prompts), "x86_runs_bit_identical": x86_repeatable,
              "arm_runs_bit_identical": arm_repeatable, "arm_profiles_bit_identical": profiles_identical,
              "arm_profiles_compared": between, "arm": per_cpu}
    rows = [[cpu, f"{m['top1_agreement']:.3f}", f"{m['top5_overlap']:.3f}", f"{m['max_abs_logit_diff']:.2f}",
             f"{m['mean_abs_logit_diff']:.3f}", f"{m['correlation_mean']:.4f}", m["seconds"]] for cpu, m in per_cpu.items()]
    note = (f"{len(prompts)} prompts x ({PROMPT_TOKENS}-token prompt + {args.steps} greedy steps of the x86 run, the ARM run "
            f"teacher-forced on them). Two x86 runs bit-identical: {x86_repeatable}; two ARM runs of "
            f"{cpus[0]}: {arm_repeatable}; ARM profiles bit-identical to each other: {profiles_identical}"
            + "".join(f" ({pair}: top-1 {c['top1_agreement']:.3f}, max |Δlogit| {c['max_abs']:.2f})" for pair, c in between.items())
            + f". `python bench/arm64_vs_x86.py --artifact {shown}`")
    print(write_results(f"arm64_vs_x86-{args.name}", record, rows,
                        ["-cpu", "top-1 agreement", "top-5 overlap", "max |Δlogit|", "mean |Δlogit|", "correlation", "s"], note))


if __name__ == "__main__":
    main()
