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
# 4 = every 4th grid point, then the 6 around the best (see _group_scales): 2.3x less search, but on
# SmolLM2 it moved the 8-bit list and the default recipe's perplexity delta from 0.996 to 1.039, and a
# tiny test model's greedy output; 1 = the whole grid, bit-identical to the search before issue 16.
COARSE = 1
REFINE_ROUNDS = 2
CHUNK = 2**18  # weights searched at once (1 MiB of fp32): a chunk's temporaries stay in the cache


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
def layer_input_power(layer: nn.Module, prefix: str, hidden: list[torch.Tensor], *rope
                      ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """E[x^2] per input channel of every linear in one decoder layer, over the calibration hidden
    states entering it (one [1, T, dim] tensor per window, run one at a time so the sums are the
    same whether the model is streamed or whole), and the hidden states leaving it: the same
    forward feeds the next layer, so calibration costs one forward per layer, not two."""
    sums, counts, hooks = {}, {}, []
    for name, module in layer.named_modules():
        if isinstance(module, nn.Linear):
            def hook(_m, args, name=prefix + name):
                x = args[0].reshape(-1, args[0].shape[-1]).float()
                sums[name] = sums.get(name, 0) + (x * x).sum(0)
                counts[name] = counts.get(name, 0) + x.shape[0]
            hooks.append(module.register_forward_pre_hook(hook))
    try:
        out = [layer(h, *rope) for h in hidden]
    finally:
        for h in hooks:
            h.remove()
    return {n: sums[n] / counts[n] for n in sums}, out


def _group_scales(wg: torch.Tensor, importance: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """wg [rows, groups, g], importance [1, groups, g] -> scales [rows, groups].

    Coarse to fine: every COARSE-th grid point first, then the grid points within COARSE - 1 of the
    best (on this group's error curve the best grid point lies next to the best coarse one):
    17 error evaluations per group instead of 41, each a pass over the weights, for +0.05%
    weighted error (random 1024x4096 and 512x11008 weights with an outlier channel: 2.3x faster at
    one thread)."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    amax = wg.abs().amax(-1, keepdim=True).clamp(min=1e-12)

    def error(scale):  # scale [..., rows, groups, 1] -> (weighted error, integers), as the kernel rounds
        scale = representable_scale(scale[..., 0], group_size)[..., None]
        q = torch.clamp(torch.round(wg * (1.0 / scale)), qmin, qmax)
        return ((wg - q * scale) ** 2 * importance).sum(-1, keepdim=True), q

    best = amax / ((qmax - qmin) / 2)  # RTN's scale: the search never does worse
    best_err, _ = error(best)

    def keep_better(candidates):  # [k, rows, groups, 1], one at a time: a batch of k would leave the cache
        nonlocal best, best_err
        own_err, own = None, None  # the best of these candidates, which the fine pass centres on
        for k, scale in enumerate(candidates):
            err, _ = error(scale)
            better = err < best_err  # strictly: the first of equals is kept, as in a sequential scan
            best_err, best = torch.where(better, err, best_err), torch.where(better, scale, best)
            if own is None:
                own_err, own = err, torch.zeros_like(err, dtype=torch.long)
            else:
                better = err < own_err
                own_err, own = torch.where(better, err, own_err), torch.where(better, k, own)
        return own

    coarse = torch.arange(0, len(GRID), COARSE)
    centre = coarse[keep_better(amax * GRID[coarse][:, None, None, None])]
    if COARSE > 1:  # COARSE = 1 is the whole grid, as before issue 16
        near = torch.tensor([o for o in range(1 - COARSE, COARSE) if o])[:, None, None, None]
        keep_better(amax * GRID[(centre + near).clamp(0, len(GRID) - 1)])
    for _ in range(REFINE_ROUNDS):  # least-squares rescale for the chosen integers
        _, q = error(best)
        num, den = (importance * wg * q).sum(-1, keepdim=True), (importance * q * q).sum(-1, keepdim=True)
        keep_better(torch.where(num > 0, num / den.clamp(min=1e-20), best)[None])
    return representable_scale(best[..., 0], group_size)


def scale_search(importance: dict[str, torch.Tensor] | None):
    """The algorithm for `layerwise.quantize_model`: (weight, bits, group_size, name) -> (q, scales).
    `importance=None` weighs every input channel equally (`clip`)."""

    def run(w: torch.Tensor, bits: int, group_size: int, name: str):
        out_f, in_f = w.shape
        g = group_size or in_f
        imp = (importance[name].float() if importance is not None else torch.ones(in_f)).reshape(1, in_f // g, g)
        wg = w.float().reshape(out_f, in_f // g, g)
        rows = max(1, CHUNK // in_f)
        scale = torch.cat(_on_all_cores(lambda c: _group_scales(c, imp, bits, group_size), wg.split(rows)))
        return quantize_with_scale(w, scale, bits), scale
    return run


def _on_all_cores(fn, chunks):
    """fn over the row chunks, one Python thread per core and each torch op single-threaded. The
    search is many small elementwise passes: with torch's own two threads every pass ends in an
    OpenMP barrier, and once another process wants a core those barriers dominate (a 1024x4096
    weight at load average 4.5: 1 thread 1.4 s, 2 threads 12.8 s, wall). Chunks on threads need
    no barrier; torch releases the GIL inside its ops."""
    from concurrent.futures import ThreadPoolExecutor

    n = torch.get_num_threads()
    if n == 1 or len(chunks) == 1:
        return [fn(c) for c in chunks]
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(fn, chunks))
    finally:
        torch.set_num_threads(n)
