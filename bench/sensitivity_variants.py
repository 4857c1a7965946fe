"""How few calibration positions the sensitivity pass can use and still choose the same 8-bit linears
(issue 16): SmolLM2 quantized as the default recipe (8da4w g32 scale-search, size budget 1.15), with
the sensitivity measured side by side on the first T tokens of the calibration window for several T,
every variant seeing the same int4 weights. Reports, per T, the 8-bit list chosen, its overlap with
the list at the largest T and the Spearman rank correlation of the sensitivities.

Usage: python bench/sensitivity_variants.py [--tokens 256,128,64,32] [--name sensitivity_variants-smollm2]"""
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
    ap.add_argument("--tokens", default="256,128,64,32")
    ap.add_argument("--budget", type=float, default=1.15)
    ap.add_argument("--name", default="sensitivity_variants-smollm2")
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

    counts = [int(t) for t in a.tokens.split(",")]
    base = sensitivity.Sensitivity
    variants, results, seconds = {}, {}, {t: 0.0 for t in counts}

    class Side(base):
        """Steps one inner Sensitivity per token count on the same int4 weights."""

        def __init__(self, embedded):
            super().__init__(embedded[:, :max(counts)])
            for t in counts:
                variants[t] = base(embedded[:, :t])

        def step(self, layer, int4_weights, *rope):
            for t, v in variants.items():
                t0 = time.perf_counter()
                v.step(layer, int4_weights, *(r[:t] for r in rope))
                seconds[t] += time.perf_counter() - t0
            self.names = variants[max(counts)].names

        def finish(self, norm, output):
            out = {}
            for t, v in variants.items():
                t0 = time.perf_counter()
                out[t] = v.finish(norm, output)
                seconds[t] += time.perf_counter() - t0
            results.update(out)
            return out[max(counts)]

    sensitivity.Sensitivity = Side
    sensitivity.TOKENS = max(counts)
    path = default_model_path()
    tok = edgellama.load_tokenizer(path)
    fp32 = edgellama.load_model(path)
    spec = QuantSpec(scheme="8da4w", group_size=32, algo="scale-search", embedding="8w", output="8da8w",
                     size_budget=a.budget)
    quantize_model(copy.deepcopy(fp32), spec, calibration=calibration_windows(tok, calibration_text()))
    shapes, ref = linear_shapes(fp32.args), max(counts)
    chosen = {t: sensitivity.choose_8bit(r, shapes, 32, a.budget) for t, r in results.items()}
    names = list(results[ref])

    def ranks(r):
        order = sorted(names, key=lambda n: r[n])
        return torch.tensor([order.index(n) for n in names], dtype=torch.float64)

    rows, record = [], {"budget": a.budget, "variants": {}}
    for t in counts:
        same = len(set(chosen[t]) & set(chosen[ref]))
        rho = float(torch.corrcoef(torch.stack([ranks(results[t]), ranks(results[ref])]))[0, 1])
        rows.append([t, len(chosen[t]), f"{same}/{len(chosen[ref])}", f"{rho:.3f}", f"{seconds[t]:.0f}"])
        record["variants"][t] = {"keep_8bit": chosen[t], "sensitivity": results[t], "seconds": seconds[t],
                                 "overlap": same, "spearman": rho}
        print(rows[-1], sorted(set(chosen[t]) ^ set(chosen[ref])), flush=True)
    md = write_results(a.name, record, rows, ["tokens", "8-bit linears", f"shared with {ref} tokens",
                                              "Spearman rank correlation of sensitivity", "seconds (pass only)"])
    print(md.read_text())


if __name__ == "__main__":
    main()
