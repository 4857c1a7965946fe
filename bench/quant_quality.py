"""Perplexity of SmolLM2 on WikiText-2 test (ctx 512, llama.cpp style) for fp32 and int4 schemes x
algorithms, computed on the eager twin (the same arithmetic the .pte runs, up to kernel rounding).
Algorithms calibrate on WikiText-2 valid only.

An algorithm written `scale-search@1.15` adds mixed precision: the most sensitive linears at 8-bit
within 1.15x the all-int4 size (the default recipe).

Usage: python bench/quant_quality.py [--windows 32] [--fp32-from bench/results/NAME.json] [--schemes 8da4w:32,8da4w:64,4w:32] [--algos rtn,scale-search,scale-search@1.15]
       [--sensitivity-window W] [--sensitivity auto|exact|linearized] [--calibration-windows N]"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402



def main():
    import torch

    import edgellama
    import edgellama.sensitivity as sensitivity
    from edgellama.algorithms import CALIBRATION_WINDOWS, calibration_windows
    from edgellama.default_model import default_model_path
    from edgellama.evaluate import PplResult, perplexity, text_windows
    from edgellama.layerwise import quantize_model
    from edgellama.texts import calibration_text, evaluation_text
    from edgellama.quant import QuantSpec, eager_twin

    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=32, help="test windows of 512 tokens (609 = all)")
    ap.add_argument("--schemes", default="8da4w:32,8da4w:64,4w:32,4w:64")
    ap.add_argument("--algos", default="rtn,scale-search,scale-search@1.15")
    ap.add_argument("--name", default="quant_quality-smollm2", help="results file stem in bench/results/")
    ap.add_argument("--fp32-from", help="take the fp32 perplexity from this earlier results JSON (same windows) "
                                        "instead of computing it again")
    ap.add_argument("--sensitivity-window", type=int, default=0,
                    help="the calibration window the sensitivity pass reads (default 0, as the product)")
    ap.add_argument("--sensitivity", choices=["auto", "exact", "linearized"], default="auto",
                    help="which sensitivity pass (auto: the product's choice for this CPU, sensitivity.int8_units)")
    ap.add_argument("--calibration-windows", type=int, default=CALIBRATION_WINDOWS,
                    help="calibration windows of 512 tokens (default: the product's)")
    a = ap.parse_args()
    sensitivity.WINDOW = a.sensitivity_window
    if a.sensitivity != "auto":
        sensitivity.LINEARIZED = a.sensitivity == "linearized"
    path = default_model_path()
    tok = edgellama.load_tokenizer(path)
    fp32 = edgellama.load_model(path)
    test = text_windows(tok, evaluation_text().read_text(), 512, a.windows)
    calib = calibration_windows(tok, calibration_text(), a.calibration_windows)
    t0 = time.perf_counter()
    if a.fp32_from:  # fp32 is deterministic: an earlier run's figure on the same windows is this run's
        earlier = json.loads(Path(a.fp32_from).read_text())
        assert earlier["windows"] == len(test), f"{a.fp32_from} scored {earlier['windows']} windows, not {len(test)}"
        base = PplResult(earlier["fp32_ppl"], earlier["scored_tokens"], None)
    else:
        base = perplexity(fp32, test)
    seconds = f"{time.perf_counter() - t0:.0f}" if not a.fp32_from else f"from {Path(a.fp32_from).name}"
    rows, record = [["fp32", "-", "-", f"{base.ppl:.3f}", "0", "-", "1.000", seconds]], {
        "model": str(path), "windows": len(test), "scored_tokens": base.tokens, "fp32_ppl": base.ppl,
        "fp32_from": a.fp32_from, "sensitivity_window": a.sensitivity_window,
        "sensitivity_linearized": sensitivity.LINEARIZED, "calibration_windows": len(calib), "runs": []}
    for item in a.schemes.split(","):
        scheme, group = item.split(":")
        rtn_delta = None
        for name in a.algos.split(","):
            t0 = time.perf_counter()
            algo, _, budget = name.partition("@")
            spec = QuantSpec(scheme=scheme, group_size=int(group), algo=algo, embedding="8w", output="8da8w",
                             size_budget=float(budget or 1.0))
            model = eager_twin(quantize_model(copy.deepcopy(fp32), spec, calibration=calib))
            r = perplexity(model, test, reference=fp32)
            delta = r.ppl - base.ppl
            rtn_delta = delta if name == "rtn" else rtn_delta
            ratio = delta / rtn_delta if rtn_delta else float("nan")
            rows.append([scheme, group, name, f"{r.ppl:.3f}", f"{delta:.3f}", f"{ratio:.2f}", f"{r.top1_agreement:.3f}",
                         f"{time.perf_counter() - t0:.0f}"])
            record["runs"].append({"scheme": scheme, "group_size": int(group), "algo": algo,
                                   "size_budget": spec.size_budget, "keep_8bit": spec.keep_8bit, "ppl": r.ppl,
                                   "delta": delta, "ratio_to_rtn": ratio, "top1_agreement": r.top1_agreement})
            print(rows[-1], flush=True)
            del model
    md = write_results(a.name, record, rows,
                       ["scheme", "group", "algorithm", "ppl", "delta vs fp32", "delta / RTN delta",
                        "top-1 agreement with fp32", "seconds"])
    print(md.read_text())


if __name__ == "__main__":
    main()
