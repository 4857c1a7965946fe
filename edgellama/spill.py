"""Quantized linears parked on disk between quantization and the exporter.

A streamed export (`layerwise.quantize_checkpoint(..., spill_dir=)`) quantizes every layer before the
exporter sees layer 0 (mixed precision needs all layers' sensitivities first), but must not keep them:
torchao holds int4 values one per byte, so a quantized 7B model is ~7 GiB in memory. Each linear's
integers go here instead, with its float32 scales, and are read back by name. The file is unnamed
(`tempfile.TemporaryFile`) inside the export's staging folder: it is gone when closed or when the
process dies, and never lands in the artifact.

Two layouts, for the two ways exporters consume layers:
- packed (ONNX, qnn: they walk the layers in order and drop each once written): int4 packed two to a
  byte; `get` reads a copy, so about one layer is in memory at a time.
- mapped (XNNPACK: torch.export needs every layer at once): one integer per byte, page-aligned, and
  `get` returns views of the file (a private mapping) for the integers and their scales, read by the
  OS only where the lowering reads them. `evict()` then drops the pages read so far from this process
  (they stay in the file), so memory holds the one partition being packed rather than the model."""
from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import numpy as np
import torch


class Spill:
    """name -> (int values, scales, bits), appended as written, read back by name."""

    def __init__(self, folder: Path, mapped: bool = False):
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".spill-")
        self._index: dict[str, tuple[int, tuple[int, int], tuple[int, int], int, bool]] = {}
        self.mapped = mapped
        self._maps: list[mmap.mmap] = []

    def put(self, name: str, q: torch.Tensor, scale: torch.Tensor, bits: int) -> None:
        """A later put of the same name (a linear promoted to 8-bit) replaces the earlier one."""
        values = q.to(torch.int8).numpy()
        packed = not self.mapped and bits == 4 and values.shape[1] % 2 == 0
        data = pack_int4(values) if packed else values
        offset = self._file.seek(0, os.SEEK_END)
        if self.mapped:  # a mapping starts on a page boundary
            offset = self._file.seek(-offset % mmap.ALLOCATIONGRANULARITY, os.SEEK_END)
            self._file.truncate(offset)
        self._file.write(np.ascontiguousarray(data).tobytes())
        self._file.write(scale.float().contiguous().numpy().tobytes())
        self._file.flush()  # get() reads the file descriptor itself
        self._index[name] = (offset, tuple(values.shape), tuple(scale.shape), bits, packed)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def get(self, name: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        offset, shape, scale_shape, bits, packed = self._index[name]
        count = shape[0] * shape[1] // (2 if packed else 1)
        scale_bytes = 4 * scale_shape[0] * scale_shape[1]
        if self.mapped:
            # the scales follow the values: mapped with them when 4-byte aligned (13B at g32 has
            # 1.5 GiB of scales, which lowering would otherwise hold beside the packed weights)
            aligned = count % 4 == 0
            view = mmap.mmap(self._file.fileno(), count + scale_bytes * aligned, offset=offset, access=mmap.ACCESS_COPY)
            self._maps.append(view)
            values = np.frombuffer(view, dtype=np.int8, count=count).reshape(shape)
            scale = np.frombuffer(view, dtype=np.float32, offset=count) if aligned else self._read_scales(offset + count, scale_bytes)
        else:
            data = np.frombuffer(os.pread(self._file.fileno(), count, offset), dtype=np.int8)
            values = unpack_int4(data, shape) if packed else data.reshape(shape).copy()
            scale = self._read_scales(offset + count, scale_bytes)
        return torch.from_numpy(values), torch.from_numpy(scale.reshape(scale_shape)), bits

    def _read_scales(self, offset: int, size: int) -> np.ndarray:
        return np.frombuffer(os.pread(self._file.fileno(), size, offset), dtype=np.float32).copy()

    def evict(self) -> None:
        """Mapped layout: forget the pages read so far. Nothing writes to the views, so the next read
        of one comes back from the file (usually still in the page cache); a write into one would be
        lost here, so replace a tensor rather than change it in place."""
        for view in self._maps:
            view.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        self._file.close()


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Signed int4 values [rows, cols] (cols even) -> [rows, cols / 2] bytes, even column in the low nibble."""
    u = values.view(np.uint8) & 0x0F
    return (u[:, 0::2] | (u[:, 1::2] << 4)).view(np.int8)


def unpack_int4(packed: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The inverse of pack_int4: nibbles back to signed int8 (shifting left then arithmetically right
    sign-extends them)."""
    p = packed.reshape(shape[0], shape[1] // 2)
    out = np.empty(shape, dtype=np.int8)
    out[:, 0::2] = (p << 4) >> 4
    out[:, 1::2] = p >> 4
    return out
