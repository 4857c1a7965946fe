"""One part's weights, encoded once and written once to the part's data file; every graph of the
part (calibration, prompt, token) refers to the same bytes as ONNX external tensors.

Why a file and not in-memory initializers: a 7B part holds ~2.2 billion weights. As numpy int4
arrays (one byte per value) in each of three graphs they cost GBs next to the model they come from
(a 7B export was OOM-killed at 19 GB that way); written here they cost one tensor at a time, and
ONNX Runtime memory-maps aligned external data instead of copying it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx_ir as ir

ALIGNMENT = 64 * 1024  # ONNX Runtime maps external tensors whose offsets are aligned (else copies them)
INLINE_BYTES = 4096  # smaller tensors (scales of a norm, shapes) stay in the graph itself


class PartWeights:
    """name -> tensor, computed by `make()` the first time a graph asks for it."""

    def __init__(self, path: Path):
        self.path = path
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
        offset = -self._file.tell() % ALIGNMENT + self._file.tell()
        self._file.seek(offset)
        raw = encoded.tobytes()  # int4 packed two to a byte, low nibble first (the ONNX layout)
        self._file.write(raw)
        self._file.flush()  # the calibration graph is read by ONNX Runtime while this file is still open
        self._external[name] = (offset, len(raw), encoded.dtype, tuple(encoded.shape))

    def close(self) -> None:
        self._file.close()
