"""Perplexity of SmolLM2 on WikiText-2 test (ctx 512, llama.cpp style) for fp32 and int4 schemes x
algorithms, computed on the eager twin (the same arithmetic the .pte runs, up to kernel rounding).
Algorithms calibrate on WikiText-2 valid only.

Usage: python bench/quant_quality.py [--windows 32] [--schemes 8da4w:32,8da4w:64,4w:32] [--algos rtn,scale-search]"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_results  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "wikitext-2"


def main():
    import torch

    import edgellama
    from edgellama.algorithms import calibration_windows
    from edgellama.default_model import default_model_path
    from edgellama.evaluate import perplexity, text_windows
    from edgellama.quant import QuantSpec, eager_twin, quantize_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=32, help="test windows of 512 tokens (609 = all)")
    ap.add_argument("--schemes", default="8da4w:32,8da4w:64,4w:32,4w:64")
    ap.add_argument("--algos", default="rtn,scale-search")
    a = ap.parse_args()
    path = default_model_path()
    tok = edgellama.load_tokenizer(path)
    fp32 = edgellama.load_model(path)
    test = text_windows(tok, (DATA / "test.txt").read_text(), 512, a.windows)
    calib = calibration_windows(tok, DATA / "valid.txt")
    t0 = time.perf_counter()
    base = perplexity(fp32, test)
    rows, record = [["fp32", "-", "-", f"{base.ppl:.3f}", "0", "-", "1.000", f"{time.perf_counter() - t0:.0f}"]], {
        "model": str(path), "windows": len(test), "scored_tokens": base.tokens, "fp32_ppl": base.ppl, "runs": []}
    for item in a.schemes.split(","):
        scheme, group = item.split(":")
        rtn_delta = None
        for algo in a.algos.split(","):
            t0 = time.perf_counter()
            spec = QuantSpec(scheme=scheme, group_size=int(group), algo=algo, embedding="8w", output="8da8w")
            model = eager_twin(quantize_model(copy.deepcopy(fp32), spec, calibration=calib))
            r = perplexity(model, test, reference=fp32)
            delta = r.ppl - base.ppl
            rtn_delta = delta if algo == "rtn" else rtn_delta
            ratio = delta / rtn_delta if rtn_delta else float("nan")
            rows.append([scheme, group, algo, f"{r.ppl:.3f}", f"{delta:.3f}", f"{ratio:.2f}", f"{r.top1_agreement:.3f}",
                         f"{time.perf_counter() - t0:.0f}"])
            record["runs"].append({"scheme": scheme, "group_size": int(group), "algo": algo, "ppl": r.ppl,
                                   "delta": delta, "ratio_to_rtn": ratio, "top1_agreement": r.top1_agreement})
            print(rows[-1], flush=True)
            del model
    md = write_results("quant_quality-smollm2", record, rows,
                       ["scheme", "group", "algorithm", "ppl", "delta vs fp32", "delta / RTN delta",
                        "top-1 agreement with fp32", "seconds"])
    print(md.read_text())


if __name__ == "__main__":
    main()
