"""edgellama's quantized weights (torchao `IntxUnpackedToInt8Tensor`) as the inputs of ONNX Runtime's
block-quantized ops: `com.microsoft::MatMulNBits` for linears and `com.microsoft::GatherBlockQuantized`
for the embedding. Pure numpy: the integers and scales are taken as they are, never re-quantized,
so the ONNX model computes with exactly the dequantized weights of the eager twin.

Both ops store unsigned values with an implicit zero point of 2^(bits-1) when no zero point is
given, so a symmetric value q in [-2^(bits-1), 2^(bits-1)-1] is stored as q + 2^(bits-1): the
dequantized weight (u - zp) * scale is q * scale, bit for bit."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgellama.errors import InputError

# ORT's block-quantized ops take power-of-two blocks of at least 16 along the input dimension.
BLOCK_SIZES = (256, 128, 64, 32, 16)


@dataclass
class BlockQuantized:
    """A weight [rows, cols] quantized in blocks of `block` along cols, packed for ORT."""
    packed: np.ndarray  # uint8; values stored little end first, `8 // bits` per byte
    scales: np.ndarray  # float32 [rows, cols // block]
    bits: int
    block: int
    rows: int
    cols: int


def integer_weight(weight, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(int values [rows, cols] as int8, scales [rows, groups] float32, bits) of a torchao tensor."""
    if weight.zero_point.abs().max().item() != 0:
        raise InputError(f"{name}: asymmetric quantization (non-zero zero points) has no ONNX form here yet; "
                         f"export with a symmetric --quant-algo (rtn or scale-search)")
    bits = int(str(weight.target_dtype).removeprefix("torch.int"))
    return weight.qdata.numpy(), weight.scale.float().numpy(), bits


def block_for(cols: int, groups: int, name: str) -> int:
    """The ORT block size for a weight with `groups` scales per row. One scale per row (per-channel)
    becomes the largest allowed block dividing the row, with the row's scale repeated per block."""
    if groups == 1:
        for b in BLOCK_SIZES:
            if cols % b == 0:
                return b
        raise InputError(f"{name}: input width {cols} is not a multiple of 16, which ONNX Runtime's quantized ops "
                         f"need; use --target xnnpack for this model")
    block = cols // groups
    if block not in BLOCK_SIZES:
        raise InputError(f"{name}: groups of {block} are not a power of two >= 16, which ONNX Runtime's quantized "
                         f"ops need; use --group-size 32, 64, 128 or 256")
    return block


def pack(q: np.ndarray, bits: int) -> np.ndarray:
    """Signed values -> unsigned with offset 2^(bits-1), packed along the last axis, low bits first."""
    u = (q.astype(np.int16) + (1 << (bits - 1))).astype(np.uint8)
    if bits == 8:
        return u
    if bits == 4:
        return u[..., 0::2] | (u[..., 1::2] << 4)
    raise ValueError(f"{bits}-bit packing is not implemented")


def block_quantized(weight, name: str) -> BlockQuantized:
    q, scale, bits = integer_weight(weight, name)
    rows, cols = q.shape
    block = block_for(cols, scale.shape[1], name)
    scales = np.repeat(scale, cols // block // scale.shape[1], axis=1)  # per-channel -> one per block
    return BlockQuantized(pack(q, bits), np.ascontiguousarray(scales, dtype=np.float32), bits, block, rows, cols)


def matmul_nbits_weight(weight, name: str) -> BlockQuantized:
    """MatMulNBits's B is [N, K / block, block * bits / 8]."""
    w = block_quantized(weight, name)
    w.packed = w.packed.reshape(w.rows, w.cols // w.block, w.block * w.bits // 8)
    return w


def concat_rows(parts: list[BlockQuantized]) -> BlockQuantized:
    """Stack weights along N (q,k,v -> qkv; gate,up -> gate_up): each row is quantized on its own,
    so this is exact. All parts must share bits and block."""
    first = parts[0]
    assert all(p.bits == first.bits and p.block == first.block and p.cols == first.cols for p in parts)
    return BlockQuantized(np.concatenate([p.packed for p in parts]), np.concatenate([p.scales for p in parts]),
                          first.bits, first.block, sum(p.rows for p in parts), first.cols)
