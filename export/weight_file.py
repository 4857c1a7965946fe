"""Weights encoded once and written at once to an ONNX external-data file, as a graph is built; the
graph (or, for the qnn target, every graph of a part: calibration, prompt, token, first token) refers
to the bytes by offset.

Why a file and not in-memory initializers: a 7B model holds ~6.7 billion weights. Kept as numpy
arrays until the graph is saved they cost GBs next to the model they come from (a 7B qnn export was
OOM-killed at 19 GB that way, the 7B ONNX export peaked at 10.8 GiB); written here they cost one
tensor at a time, and ONNX Runtime memory-maps aligned external data instead of copying it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx_ir as ir

# Where a tensor may start: the qnn target aligns every one to 64 KiB (the allocation granularity
# ONNX Runtime maps by); the ONNX CPU target packs densely (ORT 1.2x rounds an offset down to its
# page itself; 64 KiB gaps between SmolLM2's ~250 tensors would add ~8 MiB to its 100 MiB).
ALIGNMENT = 64 * 1024
INLINE_BYTES = 4096  # smaller tensors (scales of a norm, shapes) stay in the graph itself


class WeightFile:
    """name -> tensor, computed by `make()` the first time a graph asks for it."""

    def __init__(self, path: Path, alignment: int = ALIGNMENT):
        self.path, self.alignment = path, alignment
        self._file = open(path, "wb")
        self._external: dict[str, tuple[int, int, ir.DataType, tuple[int, ...]]] = {}
        self._inline: dict[str, ir.Tensor] = {}

    def tensor(self, name: str, make: Callable[[], np.ndarray]):
        if name in self._inline:
            return self._inline[name]
        if name not in self._external:
            encoded = ir.tensor(np.ascontiguousarray(make()), name=name)
            if encoded.nbytes < INLINE_BYTES:
                self._inline[name] = encoded
                return encoded
            self._write(name, encoded)
        offset, length, dtype, shape = self._external[name]
        return ir.ExternalTensor(self.path.name, offset, length, dtype, shape=ir.Shape(shape), name=name,
                                 base_dir=self.path.parent)

    def _write(self, name: str, encoded: ir.Tensor) -> None:
        offset = -self._file.tell() % self.alignment + self._file.tell()
        self._file.seek(offset)
        raw = encoded.tobytes()  # int4 packed two to a byte, low nibble first (the ONNX layout)
        self._file.write(raw)
        self._file.flush()  # the calibration graph is read by ONNX Runtime while this file is still open
        self._external[name] = (offset, len(raw), encoded.dtype, tuple(encoded.shape))

    def close(self) -> None:
        self._file.close()
