"""Key-channel equalization, for runtimes that quantize a layer's whole key cache with one encoding
(the QNN target's uint8 KV cache).

A few key channels of an LLM are many times larger than the rest, so one 8-bit encoding for all of
them leaves the ordinary channels a handful of levels. Attention reads keys only through q . k, so
scaling key channel c by s and query channel c by 1 / s changes nothing in exact arithmetic; with s
chosen to even out the key channels, eight bits resolve all of them. RoPE rotates the channel pairs
(c, c + head_dim / 2) together, so a pair shares one s. The factors fold into the rows of wk and wq
exactly: edgellama's quantized weights carry a float scale per row (and group), so multiplying a
row's scales scales the row without requantizing a single integer."""
from __future__ import annotations

import torch

LIMIT = 64.0  # no pair is scaled by more than this either way (a dead channel must not blow up q)


@torch.no_grad()
def pair_ranges(model, windows: list[list[int]], say=lambda _msg: None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, (keys, queries): the largest magnitude of each RoPE channel pair over the windows,
    [n_kv_heads, head_dim / 2] for keys and [n_heads, head_dim / 2] for queries (before RoPE, which
    rotates a pair without changing its magnitude)."""
    found: dict[tuple[int, str], torch.Tensor] = {}

    def watch(i: int, which: str, heads: int):
        def hook(_module, _inputs, out):
            x = out.float().reshape(-1, heads, 2, out.shape[-1] // heads // 2)
            m = x.pow(2).sum(2).sqrt().amax(0)
            found[i, which] = torch.maximum(found[i, which], m) if (i, which) in found else m
        return hook

    handles = []
    for i, layer in enumerate(model.layers):
        att = layer.attention
        handles += [att.wk.register_forward_hook(watch(i, "k", att.n_kv_heads)),
                    att.wq.register_forward_hook(watch(i, "q", att.n_heads))]
    try:
        for n, window in enumerate(windows, 1):
            say(f"measuring key channels, window {n}/{len(windows)}")
            model.hidden(torch.tensor([window]))
    finally:
        for h in handles:
            h.remove()
    return [(found[i, "k"], found[i, "q"]) for i in range(len(model.layers))]


def key_factors(keys: torch.Tensor) -> torch.Tensor:
    """[n_kv, pairs] magnitudes -> factors that bring every pair to the layer's geometric mean."""
    floor = keys.amax() * 1e-4
    m = keys.clamp_min(floor)
    return (m.log().mean().exp() / m).clamp(1 / LIMIT, LIMIT)


@torch.no_grad()
def equalize_keys(model, windows: list[list[int]], say=lambda _msg: None) -> dict:
    """Fold key-channel factors into wk (x s) and wq (x 1 / s) of every layer; returns the spread of
    the key pairs' ranges (largest / median) before and after, averaged over layers."""
    before, after = [], []
    for layer, (keys, _queries) in zip(model.layers, pair_ranges(model, windows, say)):
        att = layer.attention
        s = key_factors(keys)  # [n_kv, pairs]
        rows = torch.cat([s, s], dim=1)  # a pair's two channels: c and c + head_dim / 2
        scale_rows(att.wk, rows.reshape(-1))
        scale_rows(att.wq, (1 / rows).repeat_interleave(att.n_heads // att.n_kv_heads, dim=0).reshape(-1))
        before.append((keys.amax() / keys.median()).item())
        scaled = keys * s
        after.append((scaled.amax() / scaled.median()).item())
    return {"key_spread_before": sum(before) / len(before), "key_spread_after": sum(after) / len(after)}


def scale_rows(linear, factors: torch.Tensor) -> None:
    """Multiply output row r of a linear by factors[r]: its scales when quantized, else its weights."""
    w = linear.weight
    target = w.scale if hasattr(w, "qdata") else w.data
    target.mul_(factors.to(target.dtype)[:, None])
