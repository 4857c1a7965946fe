"""Where the default recipe's quantization time goes at 7B shapes (issue 16): the first N layers of a
7B-shaped synthetic checkpoint quantized as `edgellama export` does (8da4w g32, scale-search, size
budget 1.15, 8 random calibration windows of 512 tokens), with a timer around every stage, then
extrapolated to all layers. Every stage is linear in the layer count except the sensitivity carry:
each linear's perturbation (a bf16 tangent, or an fp32 state with `--exact`) travels through every
later layer, so it is timed per (perturbation x layer) step and multiplied by the number of such steps
in the full model, linears_per_layer * L * (L - 1) / 2.

Usage: python bench/quant_profile.py [--config llama2-7b] [--layers 2] [--exact] [--eager-search] [--size-budget 1.15] [--name NAME]"""
from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import synthetic_meta, write_results  # noqa: E402

TIMES: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)


def timed(stage: str, fn):
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[stage] += time.perf_counter() - t0
            COUNTS[stage] += 1
    return run


def instrument():
    """Timers around the stages; the sensitivity carry is counted in (state x layer) steps."""
    import torch

    import edgellama.algorithms as algorithms
    import edgellama.layerwise as layerwise
    import edgellama.loader as loader
    import edgellama.sensitivity as sensitivity
    from edgellama.model import TransformerBlock

    loader.load_params = timed("read layer (I/O + bf16->fp32)", loader.load_params)
    algorithms.layer_input_power = timed("calibration forward (E[x^2])", algorithms.layer_input_power)
    search = algorithms.scale_search
    algorithms.scale_search = lambda imp: timed("scale search", search(imp))
    layerwise.symmetric_rtn = timed("8-bit re-quantization (+ reload)", layerwise.symmetric_rtn)
    layerwise.dequantize = timed("dequantize for sensitivity", layerwise.dequantize)
    sensitivity.Sensitivity.finish = timed("sensitivity finish (head + KL)", sensitivity.Sensitivity.finish)
    step = sensitivity.Sensitivity.step

    def counted_step(self, layer, *args, **kwargs):
        COUNTS["carried state x layer"] += len(self.perturbed)
        return step(self, layer, *args, **kwargs)
    sensitivity.Sensitivity.step = timed("sensitivity step (carry + starts + float)", counted_step)
    # the layer forwards inside each stage, to split the sensitivity step into carry and starts
    forward = TransformerBlock.forward

    def forward_timed(self, x, *args):
        t0 = time.perf_counter()
        out = forward(self, x, *args)
        key = f"layer forward, batch {x.shape[0]} x {x.shape[1]} tokens"
        TIMES[key] += time.perf_counter() - t0
        COUNTS[key] += 1
        return out
    TransformerBlock.forward = forward_timed
    return torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="llama2-7b")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--quant", default="8da4w")
    ap.add_argument("--group-size", type=int, default=32)
    ap.add_argument("--algo", default="scale-search")
    ap.add_argument("--size-budget", type=float, default=1.15)
    ap.add_argument("--name", default="quant_profile-llama2-7b")
    ap.add_argument("--sens-tokens", type=int, help="override sensitivity.TOKENS (positions the pass carries)")
    ap.add_argument("--exact", action="store_true", help="the exact sensitivity measure (fp32 states) even where int8 units make the linearized one the default")
    ap.add_argument("--eager-search", action="store_true", help="the scale search eager at every size (as before it was compiled for large weights)")
    ap.add_argument("--checkpoint", help="an existing synthetic checkpoint folder (default: made under .cache/bench)")
    a = ap.parse_args()
    torch = instrument()
    import edgellama.sensitivity as sensitivity

    sensitivity.TOKENS = a.sens_tokens or sensitivity.TOKENS
    sensitivity.LINEARIZED = sensitivity.LINEARIZED and not a.exact  # the default is the CPU's (sensitivity.int8_units)
    if a.eager_search:
        import edgellama.algorithms as algorithms

        algorithms.FUSED_FROM = float("inf")
    from edgellama.formats import open_checkpoint
    from edgellama.layerwise import quantize_checkpoint
    from edgellama.quant import QuantSpec

    ckpt = open_checkpoint(a.checkpoint or synthetic_meta(a.config, "bf16"))
    full = ckpt.args.n_layers
    ckpt.args = dataclasses.replace(ckpt.args, n_layers=a.layers)
    g = torch.Generator().manual_seed(0)
    calibration = torch.randint(3, ckpt.args.vocab_size, (8, 512), generator=g).tolist()
    spec = QuantSpec(scheme=a.quant, group_size=a.group_size, algo=a.algo, size_budget=a.size_budget,
                     embedding="8w", output="8da8w")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    layer_done = []
    quantize_checkpoint(ckpt, spec, calibration, progress=lambda m: layer_done.append((m, time.perf_counter() - t0)))
    total = time.perf_counter() - t0
    print(layer_done, file=sys.stderr)
    n, big = a.layers, full
    carried = COUNTS["carried state x layer"]
    carried_full = carried * big * (big - 1) / (n * (n - 1)) if n > 1 else float("nan")
    rows = []
    for stage in sorted(TIMES):
        per = TIMES[stage] / max(COUNTS[stage], 1)
        rows.append([stage, COUNTS[stage], f"{TIMES[stage]:.1f}", f"{per:.2f}"])
    record = {"config": a.config, "layers_run": n, "sensitivity_tokens": sensitivity.TOKENS,
              "sensitivity_linearized": sensitivity.LINEARIZED, "eager_search": a.eager_search, "layers_full": big, "spec": dataclasses.asdict(spec),
              "seconds_total": total, "times": dict(TIMES), "counts": dict(COUNTS),
              "carried_steps_run": carried, "carried_steps_full": carried_full,
              "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
              "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
              "progress": layer_done}
    note = (f"{n} of {big} layers run in {total:.0f} s (load average {load0:.2f} at start, "
            f"{os.getloadavg()[0]:.2f} at end); {carried} carried (state x layer) steps here, "
            f"{carried_full:.0f} in the full model.")
    md = write_results(a.name, record, rows, ["stage", "calls", "seconds", "seconds per call"], note)
    print(md.read_text())


if __name__ == "__main__":
    main()
