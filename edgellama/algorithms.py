"""Choosing int4 scales better than round-to-nearest.

`clip` (no calibration) and `scale-search`: for every group of weights, try scales between amax/10 and amax/6 (RTN uses
amax/7.5) and keep the one with the least error weighted by how strongly each input channel is
driven (E[x^2] over calibration text), then refine it by least squares. Scales are rounded to what
the kernels store (`quant_math.representable_scale`) before their error is measured, so the search
optimises the weights that will actually run. `clip` is the same search with every input channel
weighted equally: no calibration text, but clipping then also hurts channels that matter."""
from __future__ import annotations

import torch
from torch import nn

from .quant_math import quantize_with_scale, representable_scale

GRID = torch.linspace(1 / 10.0, 1 / 6.0, 41)  # scale / amax; RTN's 1/7.5 lies inside
REFINE_ROUNDS = 2


def calibration_windows(tokenizer, path, count: int = 8, length: int = 512) -> list[list[int]]:
    """`count` consecutive windows of `length` tokens from a text file (WikiText-2 valid by default)."""
    from pathlib import Path

    from .errors import InputError

    from .texts import read_text

    path = Path(path)
    ids = tokenizer.encode(read_text(path, "--calibration", count * length * 8), bos=False)
    windows = [ids[i:i + length] for i in range(0, len(ids) - length + 1, length)][:count]
    if not windows:
        raise InputError(f"{path}: fewer than {length} tokens of text; pass a longer --calibration file")
    return windows


@torch.no_grad()
def layer_input_power(layer: nn.Module, prefix: str, hidden: list[torch.Tensor], *rope) -> dict[str, torch.Tensor]:
    """E[x^2] per input channel of every linear in one decoder layer, over the calibration hidden
    states entering it (one [1, T, dim] tensor per window, run one at a time so the sums are the
    same whether the model is streamed or whole)."""
    sums, counts, hooks = {}, {}, []
    for name, module in layer.named_modules():
        if isinstance(module, nn.Linear):
            def hook(_m, args, name=prefix + name):
                x = args[0].reshape(-1, args[0].shape[-1]).float()
                sums[name] = sums.get(name, 0) + (x * x).sum(0)
                counts[name] = counts.get(name, 0) + x.shape[0]
            hooks.append(module.register_forward_pre_hook(hook))
    try:
        for h in hidden:
            layer(h, *rope)
    finally:
        for h in hooks:
            h.remove()
    return {n: sums[n] / counts[n] for n in sums}


def _group_scales(wg: torch.Tensor, importance: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """wg [rows, groups, g], importance [1, groups, g] -> scales [rows, groups]."""

    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    amax = wg.abs().amax(-1, keepdim=True).clamp(min=1e-12)

    def error(scale):
        scale = representable_scale(scale[..., 0], group_size)[..., None]
        q = torch.clamp(torch.round(wg * (1.0 / scale)), qmin, qmax)
        return ((wg - q * scale) ** 2 * importance).sum(-1, keepdim=True), q

    best = amax / ((qmax - qmin) / 2)
    best_err, _ = error(best)
    candidates = [amax * c for c in GRID]
    for _ in range(REFINE_ROUNDS + 1):
        for scale in candidates:
            err, _ = error(scale)
            better = err < best_err
            best_err, best = torch.where(better, err, best_err), torch.where(better, scale, best)
        _, q = error(best)  # least-squares rescale for the chosen integers
        num, den = (importance * wg * q).sum(-1, keepdim=True), (importance * q * q).sum(-1, keepdim=True)
        candidates = [torch.where(num > 0, num / den.clamp(min=1e-20), best)]
    return representable_scale(best[..., 0], group_size)


def scale_search(importance: dict[str, torch.Tensor] | None):
    """The algorithm for `layerwise.quantize_model`: (weight, bits, group_size, name) -> (q, scales).
    `importance=None` weighs every input channel equally (`clip`)."""

    def run(w: torch.Tensor, bits: int, group_size: int, name: str):
        out_f, in_f = w.shape
        g = group_size or in_f
        imp = (importance[name].float() if importance is not None else torch.ones(in_f)).reshape(1, in_f // g, g)
        wg = w.float().reshape(out_f, in_f // g, g)
        scale = torch.cat([_group_scales(wg[i:i + 256], imp, bits, group_size) for i in range(0, out_f, 256)])
        return quantize_with_scale(w, scale, bits), scale
    return run
