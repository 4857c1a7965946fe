"""How cheaply the sensitivity pass can measure and still choose the same 8-bit linears (issue 16):
SmolLM2 quantized as the default recipe (8da4w g32 scale-search, size budget 1.15), with the
sensitivity measured side by side by several variants of the pass, every variant seeing the same int4
weights. A variant is TOKENS:MODE: the first TOKENS positions of the calibration window, and `exact`
(perturbed states carried in fp32) or `linear` (tangents with int8 matmuls; the default on CPUs with int8 units,
without the exact re-measure of the cut that follows it in the product; see edgellama/sensitivity.py). Reports, per variant, the 8-bit list chosen, its overlap with the first
variant's list, the Spearman rank correlation of the sensitivities, the spread of their ratio to the
first variant's and the pass's seconds.

Usage: python bench/sensitivity_variants.py [--variants 256:exact,256:linear] [--name sensitivity_variants-smollm2]"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="256:exact,256:linear")
    ap.add_argument("--budget", type=float, default=1.15)
    ap.add_argument("--name", default="sensitivity_variants-smollm2-linear")
    a = ap.parse_args()
    import torch

    import edgellama
    import edgellama.sensitivity as sensitivity
    from edgellama.algorithms import calibration_windows
    from edgellama.default_model import default_model_path
    from edgellama.layerwise import quantize_model
    from edgellama.quant import QuantSpec
    from edgellama.schemes import linear_shapes
    from edgellama.texts import calibration_text

    keys = a.variants.split(",")
    spans = {k: (int(k.split(":")[0]), k.split(":")[1] == "linear") for k in keys}
    base = sensitivity.Sensitivity
    variants, results, seconds = {}, {}, {k: 0.0 for k in keys}

    class Side(base):
        """Steps one inner Sensitivity per variant on the same int4 weights."""
        linearized = False  # the first variant's KLs are the product's choice here: nothing to re-measure

        def __init__(self, embedded, *_):
            for k, (t, linearized) in spans.items():
                variants[k] = base(embedded[:, :t], linearized)

        def step(self, layer, int4_weights, *rope):
            for k, v in variants.items():
                t0 = time.perf_counter()
                v.step(layer, int4_weights, *(r[:spans[k][0]] for r in rope))
                seconds[k] += time.perf_counter() - t0

        def finish(self, norm, output):
            for k, v in variants.items():
                t0 = time.perf_counter()
                results[k] = v.finish(norm, output)
                seconds[k] += time.perf_counter() - t0
            return results[keys[0]]

    sensitivity.Sensitivity = Side
    sensitivity.TOKENS = max(t for t, _ in spans.values())
    path = default_model_path()
    tok = edgellama.load_tokenizer(path)
    fp32 = edgellama.load_model(path)
    spec = QuantSpec(scheme="8da4w", group_size=32, algo="scale-search", embedding="8w", output="8da8w",
                     size_budget=a.budget)
    quantize_model(copy.deepcopy(fp32), spec, calibration=calibration_windows(tok, calibration_text()))
    shapes, ref = linear_shapes(fp32.args), keys[0]
    chosen = {k: sensitivity.choose_8bit(r, shapes, 32, a.budget) for k, r in results.items()}
    names = list(results[ref])

    def ranks(r):
        order = sorted(names, key=lambda n: r[n])
        return torch.tensor([order.index(n) for n in names], dtype=torch.float64)

    rows, record = [], {"budget": a.budget, "variants": {}}
    for k in keys:
        same = len(set(chosen[k]) & set(chosen[ref]))
        rho = float(torch.corrcoef(torch.stack([ranks(results[k]), ranks(results[ref])]))[0, 1])
        ratio = torch.tensor([results[k][n] / results[ref][n] for n in names if results[ref][n] > 0])
        low, high = (float(q) for q in ratio.quantile(torch.tensor([0.05, 0.95], dtype=ratio.dtype)))
        rows.append([k, len(chosen[k]), f"{same}/{len(chosen[ref])}", f"{rho:.3f}", f"{low:.2f}-{high:.2f}",
                     f"{seconds[k]:.0f}"])
        record["variants"][k] = {"keep_8bit": chosen[k], "sensitivity": results[k], "seconds": seconds[k],
                                 "overlap": same, "spearman": rho,
                                 "kl_ratio_to_reference_5_95": [low, high]}
        print(rows[-1], sorted(set(chosen[k]) ^ set(chosen[ref])), flush=True)
    md = write_results(a.name, record, rows, ["tokens:mode", "8-bit linears", f"shared with {ref}",
                                              "Spearman rank correlation of sensitivity",
                                              f"KL / {ref}'s KL, 5th-95th percentile", "seconds (pass only)"])
    print(md.read_text())


if __name__ == "__main__":
    main()
