"""Load time and peak RSS of reading a 7B-shaped Meta checkpoint (1 shard, bf16) into the model.

Target (issue 2): peak RSS under 1.2x the model's size in the requested dtype.
Usage: python bench/load_memory.py [--config llama2-7b] [--dtype bf16]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_measured, synthetic_meta, write_results  # noqa: E402

LOAD = """
import json, resource, time, torch, edgellama
t0 = time.perf_counter()
model = edgellama.load_model({path!r}, torch.{dtype})
seconds = time.perf_counter() - t0
params = sum(p.numel() for p in model.parameters())
size = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({{"seconds": seconds, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "params": params, "model_bytes": size}}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="llama2-7b")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16"])
    a = ap.parse_args()
    folder = synthetic_meta(a.config, a.dtype)
    torch_dtype = {"bf16": "bfloat16", "fp16": "float16"}[a.dtype]
    r = run_measured(LOAD.format(path=str(folder), dtype=torch_dtype))
    ratio = r["peak_rss_bytes"] / r["model_bytes"]
    record = {"config": a.config, "format": "meta, 1 shard", "source_dtype": a.dtype, "load_dtype": a.dtype, **r,
              "rss_over_model": ratio, "target_rss_over_model": 1.2, "meets_target": ratio < 1.2}
    md = write_results(f"load_memory-{a.config}", record,
                       [[a.config, f"Meta 1 shard {a.dtype}", a.dtype, f"{r['params'] / 1e9:.2f}B",
                         f"{r['model_bytes'] / 2**30:.2f}", f"{r['seconds']:.1f}",
                         f"{r['peak_rss_bytes'] / 2**30:.2f}", f"{ratio:.2f}"]],
                       ["model", "checkpoint", "load dtype", "params", "model GiB", "load s", "peak RSS GiB",
                        "RSS / model"])
    print(md.read_text())


if __name__ == "__main__":
    main()
