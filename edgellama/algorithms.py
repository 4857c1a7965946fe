"""Choosing int4 scales better than round-to-nearest.

`clip` (no calibration) and `scale-search`: for every group of weights, try scales between amax/10 and amax/6 (RTN uses
amax/7.5) and keep the one with the least error weighted by how strongly each input channel is
driven (E[x^2] over calibration text), then refine it by least squares. Scales are rounded to what
the kernels store (`quant_math.representable_scale`) before their error is measured, so the search
optimises the weights that will actually run. `clip` is the same search with every input channel
weighted equally: no calibration text, but clipping then also hurts channels that matter."""
from __future__ import annotations

import functools
import warnings

import torch
from torch import nn

from .quant_math import quantize_with_scale, representable_scale, round_to_grid

GRID = torch.linspace(1 / 10.0, 1 / 6.0, 41)  # scale / amax; RTN's 1/7.5 lies inside
REFINE_ROUNDS = 2
CHUNK = 2**18  # weights searched at once, eagerly (1 MiB of fp32): a chunk's temporaries stay in the cache
FUSED_FROM = 2**22  # weights from which the search is compiled (see `_fused_search`); below, compiling costs more than it saves
FUSED_CHUNK = 2**20  # weights per call of the compiled search, whose kernels run on every core
CALIBRATION_WINDOWS = 8  # of 512 tokens: 4 cost SmolLM2 6% of its perplexity delta (docs/quantization.md)


def calibration_windows(tokenizer, path, count: int = CALIBRATION_WINDOWS, length: int = 512) -> list[list[int]]:
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
    """wg [rows, groups, g], importance [1, groups, g] -> scales [rows, groups]: the grid's best scale
    per group (round-to-nearest's among the candidates, so the search never does worse), then
    REFINE_ROUNDS least-squares rescales for the chosen integers, each kept only if it does better."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    amax = wg.abs().amax(-1, keepdim=True).clamp(min=1e-12)
    rtn = amax / ((qmax - qmin) / 2)
    best = _least_error(wg, importance, torch.cat([rtn[None], amax * GRID[:, None, None, None]]), bits, group_size)
    for _ in range(REFINE_ROUNDS):
        q = _integers(wg, best, bits, group_size)
        num, den = (importance * wg * q).sum(-1, keepdim=True), (importance * q * q).sum(-1, keepdim=True)
        rescaled = torch.where(num > 0, num / den.clamp(min=1e-20), best)
        best = _least_error(wg, importance, torch.stack([best, rescaled]), bits, group_size)
    return representable_scale(best[..., 0], group_size)


def _integers(wg: torch.Tensor, scale: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """The integers for `scale` [..., rows, groups, 1] rounded as the kernel stores it."""
    return round_to_grid(wg, representable_scale(scale[..., 0], group_size)[..., None], bits)


def _least_error(wg, importance, candidates, bits: int, group_size: int) -> torch.Tensor:
    """Of `candidates` [k, rows, groups, 1], the scale with the least importance-weighted error per
    group, the first of equals. Compiled, every candidate is scored in one fused loop; eagerly, one
    at a time, so that each pass's temporaries stay the size of the chunk (and in the cache)."""
    if torch.compiler.is_compiling():
        error = _weighted_error(wg, importance, candidates, bits, group_size)
        return candidates.gather(0, error.argmin(0, keepdim=True))[0]
    best, best_error = candidates[0], _weighted_error(wg, importance, candidates[0], bits, group_size)
    for scale in candidates[1:]:
        error = _weighted_error(wg, importance, scale, bits, group_size)
        better = error < best_error  # strictly: the first of equals stays
        best_error, best = torch.where(better, error, best_error), torch.where(better, scale, best)
    return best


def _weighted_error(wg, importance, scale, bits: int, group_size: int) -> torch.Tensor:
    """sum(importance * (w - dequantized w)^2) per group, for `scale` [..., rows, groups, 1]."""
    rounded = representable_scale(scale[..., 0], group_size)[..., None]
    return ((wg - _integers(wg, scale, bits, group_size) * rounded) ** 2 * importance).sum(-1, keepdim=True)


def scale_search(importance: dict[str, torch.Tensor] | None):
    """The algorithm for `layerwise.quantize_model`: (weight, bits, group_size, name) -> (q, scales).
    `importance=None` weighs every input channel equally (`clip`)."""

    def run(w: torch.Tensor, bits: int, group_size: int, name: str):
        out_f, in_f = w.shape
        g = group_size or in_f
        imp = (importance[name].float() if importance is not None else torch.ones(in_f)).reshape(1, in_f // g, g)
        wg = w.float().reshape(out_f, in_f // g, g)
        fused = _fused_search() if w.numel() >= FUSED_FROM else None
        if fused:
            scale = torch.cat([fused(c, imp, bits, group_size) for c in wg.split(max(1, FUSED_CHUNK // in_f))])
        else:
            chunks = wg.split(max(1, CHUNK // in_f))
            scale = torch.cat(_on_all_cores(lambda c: _group_scales(c, imp, bits, group_size), chunks))
        return quantize_with_scale(w, scale, bits), scale
    return run


@functools.cache
def _fused_search():
    """`_group_scales` compiled by inductor, which scores every candidate in one fused loop over the
    weights where eager torch makes a pass per op per candidate: a 7B layer's seven linears in 5.5 s
    against 22-27 s (AVX2, 2 cores), for ~20-25 s of compiling per process. The scales are those of
    the eager search but for ties between candidates broken by another summation order (4-8 groups
    per million). `emulate_precision_casts` keeps the bf16 rounding of the scales, which inductor
    would otherwise drop. None, after one warning, where it cannot compile (no C++ compiler)."""
    compiled = torch.compile(_group_scales, dynamic=True,
                             options={"emulate_precision_casts": True, "compile_threads": 1})
    try:  # sizes of 2 and up: torch.compile specialises sizes 0 and 1, which real chunks seldom have
        compiled(torch.ones(2, 2, 32), torch.ones(1, 2, 32), 4, 32)
    except Exception as e:  # noqa: BLE001 - any failure to compile leaves the eager search, which gives the same scales
        warnings.warn(f"scale search runs eagerly (several times slower on large weights): torch.compile failed: {e}")
        return None
    return compiled


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
