"""Time and peak RSS of quantizing a 7B-shaped checkpoint layer by layer (issue 3: completes on this
24 GiB machine without holding the fp32 model, which alone would be 25 GiB).

The synthetic checkpoint has no tokenizer and random weights, so calibrating algorithms get random
token windows (the cost is the same as for text). Mixed precision (--size-budget) is off by default:
its sensitivity pass carries one hidden state per linear through the later layers
(`edgellama/sensitivity.py`); `--group-size 32 --size-budget 1.15` is the default recipe.

Usage: python bench/quantize_memory.py [--config llama2-7b] [--quant 8da4w] [--group-size 128] [--algo scale-search]
                                       [--size-budget 1.15] [--checkpoint FOLDER]"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_measured, synthetic_meta, write_results  # noqa: E402

QUANTIZE = """
import json, resource, time, torch
from edgellama.formats import open_checkpoint
from edgellama.layerwise import quantize_checkpoint
from edgellama.quant import QuantSpec
t0 = time.perf_counter()
ckpt = open_checkpoint({path!r})
g = torch.Generator().manual_seed(0)
calibration = torch.randint(3, ckpt.args.vocab_size, (8, 512), generator=g).tolist()
spec = QuantSpec(scheme={quant!r}, group_size={group}, algo={algo!r}, size_budget={budget}, embedding="8w", output="8da8w")
model = quantize_checkpoint(ckpt, spec, calibration)
seconds = time.perf_counter() - t0
stored = sum((p.qdata.numel() + p.scale.numel() * 4) if hasattr(p, "qdata") else p.numel() * p.element_size()
             for p in model.parameters())
print(json.dumps({{"seconds": seconds, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "quantized_model_bytes": stored, "params": ckpt.args.num_params(), "keep_8bit": len(spec.keep_8bit)}}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="llama2-7b")
    ap.add_argument("--quant", default="8da4w")
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--algo", default="scale-search")
    ap.add_argument("--size-budget", type=float, default=1.0, help="1.15 = the default recipe's mixed precision")
    ap.add_argument("--checkpoint", help="an existing synthetic checkpoint folder (default: made under .cache/bench)")
    a = ap.parse_args()
    folder = a.checkpoint or synthetic_meta(a.config, "bf16")
    load = os.getloadavg()[0]
    r = run_measured(QUANTIZE.format(path=str(folder), quant=a.quant, group=a.group_size, algo=a.algo,
                                     budget=a.size_budget))
    fp32_bytes = r["params"] * 4
    record = {"config": a.config, "source": "meta, 1 shard, bf16", "quant": a.quant, "group_size": a.group_size,
              "algo": a.algo, "size_budget": a.size_budget, **r, "fp32_model_bytes": fp32_bytes,
              "loadavg_start": load, "loadavg_end": os.getloadavg()[0]}
    budget = f"-b{a.size_budget:g}" if a.size_budget > 1 else ""
    md = write_results(f"quantize_memory-{a.config}-{a.quant}-g{a.group_size}{budget}", record,
                       [[a.config, f"{a.quant} g{a.group_size}", a.algo + (f"@{a.size_budget:g}" if a.size_budget > 1 else ""), f"{r['seconds'] / 60:.1f}",
                         f"{r['peak_rss_bytes'] / 2**30:.2f}", f"{fp32_bytes / 2**30:.1f}",
                         f"{r['quantized_model_bytes'] / 2**30:.2f}"]],
                       ["model", "scheme", "algorithm", "minutes", "peak RSS GiB", "fp32 model GiB",
                        "quantized tensors GiB (int4 held as int8, as torchao does)"],
                       f"Load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (2 cores shared with other jobs).")
    print(md.read_text())


if __name__ == "__main__":
    main()
