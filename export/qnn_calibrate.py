"""Activation encodings for the QNN graphs: the calibration graphs (float activations, quantized
weights: export/qnn_graph.py with no ranges) run on ONNX Runtime's CPU EP over windows of the
calibration text, through the same host loop as the artifact (runtime QnnSession), and the range
of every tensor that will be quantized is recorded.

Min/max widened by HEADROOM: text the calibration did not see drives activations past its range
(on the tiny test model a prompt's keys reached -6.4 where calibration saw -5.2, and the clipped
keys moved the logits by 3.7), and 16 bits leave resolution to spare: 2x costs one bit of 16."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .qnn_graph import ACT_BITS, KV_BITS, MASK_VALUE, PartSpec, build_part


HEADROOM = {16: 2.0, 8: 1.25}  # the 8-bit KV cache has less to spare


def bits_of(key: str) -> int:
    return KV_BITS if key.startswith("kv.") else ACT_BITS


def calibrate(model, parts: list[PartSpec], windows: list[list[int]], meta: dict, workdir: Path, say) -> dict:
    """-> {encoding key: (lo, hi, bits)} over every window, fed in prompt-graph chunks from position 0."""
    import onnx_ir as ir

    from edgellama.runtime.qnn_session import QnnSession

    graphs, names = [], {}
    for p, part in enumerate(parts):
        graph, extra = build_part(model, part, None)
        path = workdir / f"calibration-part{p}.onnx"
        ir.save(graph, path, external_data=path.name + ".data")
        graphs.append({"prompt": path})
        for key, name in extra:
            names.setdefault(name, key)
    ranges = {"attention_mask": [MASK_VALUE, 0.0], "position_cos": [-1.0, 1.0], "position_sin": [-1.0, 1.0]}

    def observe(outputs: dict, _kind: str) -> None:
        for name, value in outputs.items():
            key = names.get(name)
            if key is None:
                continue
            lo, hi = float(value.min()), float(value.max())
            old = ranges.setdefault(key, [lo, hi])
            old[0], old[1] = min(old[0], lo), max(old[1], hi)

    session = QnnSession(graphs, meta, backend="cpu", observe=observe)
    ar = meta["prefill_len"]
    for n, window in enumerate(windows, 1):
        say(f"calibrating 16-bit activations: window {n}/{len(windows)}")
        session.reset()
        usable = len(window) // ar * ar  # whole prompt-graph calls only
        session.prefill(window[:usable])
    del session
    for path in workdir.glob("calibration-part*"):
        path.unlink()
    fixed = {"attention_mask", "position_cos", "position_sin"}  # exact: the host feeds nothing outside

    def widened(key, lo, hi):
        bits = bits_of(key)
        margin = 1.0 if key in fixed else HEADROOM[bits]
        return lo * margin, hi * margin, bits
    return {key: widened(key, lo, hi) for key, (lo, hi) in ranges.items()}
