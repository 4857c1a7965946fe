"""Activation encodings for the QNN graphs: a calibration graph (float activations, quantized
weights: export/qnn_graph.py with no ranges) runs on ONNX Runtime's CPU EP over windows of the
calibration text, through the same host loop as the artifact (runtime QnnSession), and the range
of every tensor that will be quantized is recorded. Layer by layer: each layer is fed the hidden
states the previous one produced, so memory holds one layer's graph at a time.

Min/max widened by HEADROOM: text the calibration did not see drives activations past its range
(on the tiny test model a prompt's keys reached -6.4 where calibration saw -5.2, and the clipped
keys moved the logits by 3.7), and 16 bits leave resolution to spare: 2x costs one bit of 16.

Two sets of encodings: the sequence's first token runs in a graph of its own (FIRST). The first
position is the attention sink, and its residual stream carries massive activations: 2.4e4 in
SmolLM2's layers 11-27, where no other position of a calibration window passes ~600. One encoding
for both would spend 5 of the residual's 16 bits on one position (measured: the CPU-EP QDQ model's
KL to fp32 on two WikiText-2 test windows 0.123 with them, 0.074 with those layers' residuals left
in float). Only the KV cache encodings are shared, since the first token's keys and values sit in
the same cache as every other token's."""
from __future__ import annotations

import numpy as np

from edgellama.runtime.qnn_session import FIRST, MASK_VALUE

from .qnn_graph import ACT_BITS, PartSpec, build_part
from .weight_file import WeightFile


HEADROOM = {16: 2.0, 8: 1.25}  # an 8-bit KV cache has less to spare
REST = "rest"  # the encodings of the prompt and token graphs; FIRST: the first token's graph


FIXED = {"attention_mask": (MASK_VALUE, 0.0), "position_cos": (-1.0, 1.0), "position_sin": (-1.0, 1.0)}


def calibrate_part(model, part: PartSpec, p: int, weights: WeightFile, windows: list[list[int]], meta: dict,
                   carried: list | None, kv_bits: int, say) -> tuple[dict, list]:
    """One part's encodings -> ({FIRST | REST: {encoding key: (lo, hi, bits)}}, the hidden states it
    hands the next part, one per call). `carried`: the previous part's, fed in the same order.

    Run one layer at a time: ONNX Runtime's CPU EP starts a graph by running every DequantizeLinear
    whose inputs are all weights, so a graph holds all its weights in fp32 while it runs (8 GB for
    a third of a 7B model); a graph of one layer holds one layer's."""
    ranges = {FIRST: {}, REST: {}}
    for layer in range(part.first, part.last):
        say(f"part {p}: calibrating 16-bit activations, layer {layer + 1}/{part.n_layers}")
        carried = _calibrate_layer(model, PartSpec(layer, layer + 1, part.n_layers, part.ar, part.context),
                                    weights, windows, meta, carried, ranges)
    return {kind: widen(found, kv_bits) for kind, found in share_kv(ranges).items()}, carried


def _calibrate_layer(model, layer: PartSpec, weights: WeightFile, windows: list[list[int]], meta: dict,
                     carried: list | None, ranges: dict) -> list:
    """Widen `ranges` ({FIRST | REST: ...}) by what one layer's tensors reach over the windows; -> its
    hidden outputs. The calibration graphs sit beside the part's weight file and read their weights
    from it."""
    import onnx_ir as ir

    from edgellama.runtime.qnn_session import QnnSession

    paths, names = {}, {}
    for kind, ar in (("prompt", layer.ar), (FIRST, 1)):
        graph, extra = build_part(model, PartSpec(layer.first, layer.last, layer.n_layers, ar, layer.context), None, weights)
        paths[kind] = weights.path.parent / f"calibration-layer{layer.first}-{kind}.onnx"
        ir.save(graph, paths[kind])
        names[kind] = {name: key for key, name in extra}
        del graph
    handed = []

    def observe(outputs: dict, kind: str) -> None:
        found = ranges[FIRST if kind == FIRST else REST]
        for name, value in outputs.items():
            if name == "hidden_out":
                handed.append(value)
            key = names[kind].get(name)
            if key is None:
                continue
            lo, hi = float(value.min()), float(value.max())
            old = found.setdefault(key, [lo, hi])
            old[0], old[1] = min(old[0], lo), max(old[1], hi)

    feed = iter(carried or [])
    session = QnnSession([paths], meta, backend="cpu", observe=observe,
                         hidden_in=(lambda: next(feed)) if carried else None)
    ar = meta["prefill_len"]
    for window in windows:
        session.reset()
        session.prefill(window[:1 + (len(window) - 1) // ar * ar])  # the first token, then whole prompt-graph calls
    del session
    for path in paths.values():
        path.unlink()
    return handed


def share_kv(ranges: dict) -> dict:
    """The KV cache holds every token's keys and values: one encoding per cache tensor for both sets."""
    for key in set(ranges[FIRST]) | set(ranges[REST]):
        if key.startswith("kv."):
            seen = [ranges[kind][key] for kind in (FIRST, REST) if key in ranges[kind]]
            both = [min(r[0] for r in seen), max(r[1] for r in seen)]
            ranges[FIRST][key], ranges[REST][key] = both, list(both)
    return ranges


def widen(ranges: dict, kv_bits: int) -> dict:
    """Observed [lo, hi] -> encodings with HEADROOM; the host-fed inputs keep their exact ranges."""
    out = {key: (lo, hi, ACT_BITS) for key, (lo, hi) in FIXED.items()}
    for key, (lo, hi) in ranges.items():
        bits = kv_bits if key.startswith("kv.") else ACT_BITS
        out[key] = (lo * HEADROOM[bits], hi * HEADROOM[bits], bits)
    return out
