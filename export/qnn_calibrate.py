"""Activation encodings for the QNN graphs: a calibration graph (float activations, quantized
weights: export/qnn_graph.py with no ranges) runs on ONNX Runtime's CPU EP over windows of the
calibration text, through the same host loop as the artifact (runtime QnnSession), and the range
of every tensor that will be quantized is recorded. Layer by layer: each layer is fed the hidden
states the previous one produced, so memory holds one layer's graph at a time.

Min/max widened by HEADROOM: text the calibration did not see drives activations past its range
(on the tiny test model a prompt's keys reached -6.4 where calibration saw -5.2, and the clipped
keys moved the logits by 3.7), and 16 bits leave resolution to spare: 2x costs one bit of 16."""
from __future__ import annotations

import numpy as np

from edgellama.runtime.qnn_session import MASK_VALUE

from .qnn_graph import ACT_BITS, PartSpec, build_part
from .qnn_weights import PartWeights


HEADROOM = {16: 2.0, 8: 1.25}  # an 8-bit KV cache has less to spare


FIXED = {"attention_mask": (MASK_VALUE, 0.0), "position_cos": (-1.0, 1.0), "position_sin": (-1.0, 1.0)}


def calibrate_part(model, part: PartSpec, p: int, weights: PartWeights, windows: list[list[int]], meta: dict,
                   carried: list | None, kv_bits: int, say) -> tuple[dict, list]:
    """One part's encodings -> ({encoding key: (lo, hi, bits)}, the hidden states it hands the next
    part, one per call). `carried`: the previous part's, fed in the same order.

    Run one layer at a time: ONNX Runtime's CPU EP starts a graph by running every DequantizeLinear
    whose inputs are all weights, so a graph holds all its weights in fp32 while it runs (8 GB for
    a third of a 7B model); a graph of one layer holds one layer's."""
    ranges = {}
    for layer in range(part.first, part.last):
        say(f"part {p}: calibrating 16-bit activations, layer {layer + 1}/{part.n_layers}")
        carried = _calibrate_layer(model, PartSpec(layer, layer + 1, part.n_layers, part.ar, part.context),
                                    weights, windows, meta, carried, ranges)
    return widen(ranges, kv_bits), carried


def _calibrate_layer(model, layer: PartSpec, weights: PartWeights, windows: list[list[int]], meta: dict,
                     carried: list | None, ranges: dict) -> list:
    """Widen `ranges` by what one layer's tensors reach over the windows; -> its hidden outputs. The
    calibration graph sits beside the part's weight file and reads its weights from it."""
    import onnx_ir as ir

    from edgellama.runtime.qnn_session import QnnSession

    graph, extra = build_part(model, layer, None, weights)
    path = weights.path.parent / f"calibration-layer{layer.first}.onnx"
    ir.save(graph, path)
    del graph
    names = {name: key for key, name in extra}
    handed = []

    def observe(outputs: dict, _kind: str) -> None:
        for name, value in outputs.items():
            if name == "hidden_out":
                handed.append(value)
            key = names.get(name)
            if key is None:
                continue
            lo, hi = float(value.min()), float(value.max())
            old = ranges.setdefault(key, [lo, hi])
            old[0], old[1] = min(old[0], lo), max(old[1], hi)

    feed = iter(carried or [])
    session = QnnSession([{"prompt": path}], meta, backend="cpu", observe=observe,
                         hidden_in=(lambda: next(feed)) if carried else None)
    ar = meta["prefill_len"]
    for window in windows:
        session.reset()
        session.prefill(window[:len(window) // ar * ar])  # whole prompt-graph calls only
    del session
    path.unlink()
    return handed


def widen(ranges: dict, kv_bits: int) -> dict:
    """Observed [lo, hi] -> encodings with HEADROOM; the host-fed inputs keep their exact ranges."""
    out = {key: (lo, hi, ACT_BITS) for key, (lo, hi) in FIXED.items()}
    for key, (lo, hi) in ranges.items():
        bits = kv_bits if key.startswith("kv.") else ACT_BITS
        out[key] = (lo * HEADROOM[bits], hi * HEADROOM[bits], bits)
    return out
