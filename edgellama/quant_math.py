"""Quantization arithmetic shared by round-to-nearest (`quant.py`) and the searching algorithms
(`algorithms.py`): scales as the kernels store them, rounding as torchao rounds. Its own module so
that neither of those two imports the other for it."""
from __future__ import annotations

import torch


def representable_scale(scale: torch.Tensor, group_size: int) -> torch.Tensor:
    """Group scales are rounded to bf16 before the integers are chosen: XNNPACK's blockwise int4
    kernels store them as bf16, and with fp32 scales the eager twin and the .pte differ by ~1e-3
    per linear (measured); with bf16-representable scales they agree to ~3e-7. Per-channel scales
    stay fp32 (XNNPACK keeps those in fp32)."""
    if group_size:
        scale = scale.to(torch.bfloat16).float()
    return scale.clamp(min=torch.finfo(torch.bfloat16).tiny)


def round_to_grid(wg: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """torchao's rounding: clamp(round(w * (1/scale)), qmin, qmax), half to even, as floats;
    `scale` broadcasts against the grouped weights `wg`."""
    return torch.clamp(torch.round(wg * (1.0 / scale)), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def quantize_with_scale(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """w [out, in] and scale [out, groups] -> int8 integers [out, in] (`round_to_grid`)."""
    out_f, in_f = w.shape
    wg = w.float().reshape(out_f, scale.shape[1], -1)
    return round_to_grid(wg, scale[..., None], bits).reshape(out_f, in_f).to(torch.int8)


def symmetric_rtn(w: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchao's symmetric convention: scale = amax / ((qmax - qmin) / 2) (amax/7.5 for int4)."""
    out_f, in_f = w.shape
    g = group_size or in_f
    amax = w.float().reshape(out_f, in_f // g, g).abs().amax(-1)
    scale = representable_scale(amax / ((2**bits - 1) / 2), group_size)
    return quantize_with_scale(w, scale, bits), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    out_f, in_f = q.shape
    groups = scale.shape[1]
    return (q.float().reshape(out_f, groups, -1) * scale[..., None]).reshape(out_f, in_f)
