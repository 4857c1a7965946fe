"""The forward-mode derivative of a float decoder layer, written out, with int8 matmuls.

The sensitivity pass (sensitivity.py) carries each linear's perturbation through the later layers as
the tangent of the float model at the float state. Here that tangent map is spelled out for
`model.TransformerBlock` (RMSNorm, rotary grouped-query attention, SwiGLU), together with the tangents
that changes of the layer's own weights start, so that its matmuls can take int8: the tangent
rounded per row (one scale per token) and the float weights per output channel. On CPUs with int8
dot-product units that is ~2x bf16 and ~4.6x fp32 (2048x4096 @ 4096x11008 on the avx512_vnni box:
0.25 s, 0.48 s, 1.15 s). Between the matmuls everything is fp32, and as with any tangent the rounding
is relative to the perturbation, not to the hidden state."""
from __future__ import annotations

import functools

import torch
from torch import nn

from .quant_math import symmetric_rtn


class LayerTangent:
    """`layer` at the float state `x` [1, T, dim]: `middle` and `output` are its float forward
    (`layer.attend(x)`, `layer.feed(middle)`, the very same calls), calling it maps tangents
    [B, T, dim] at `x` to tangents at `output`, and `starts` gives the tangents that changes of its
    linears' weights make there."""

    @torch.no_grad()
    def __init__(self, layer: nn.Module, x: torch.Tensor, cos, sin, positions):
        self.layer, self.cos, self.sin = layer, cos, sin
        seen, inputs = {}, {}

        def record_input(path):  # what each linear multiplies, for `starts`
            return lambda _m, args: inputs.update({path: args[0]})

        hooks = [layer.attention.core.register_forward_hook(lambda _m, args, _out: seen.update(qkv=args[:3])),
                 layer.feed_forward.w1.register_forward_hook(lambda _m, _args, out: seen.update(gate=out)),
                 layer.feed_forward.w3.register_forward_hook(lambda _m, _args, out: seen.update(up=out)),
                 *(layer.get_submodule(path).register_forward_pre_hook(record_input(path)) for path in LINEARS)]
        try:
            self.middle = layer.attend(x, cos, sin, positions)
            self.output = layer.feed(self.middle)
        finally:
            for hook in hooks:
                hook.remove()
        self.x, self.inputs = x, inputs
        q, k, v = (t.transpose(1, 2) for t in seen["qkv"])  # [1, heads, T, head_dim], rotated
        group = q.shape[1] // k.shape[1]  # query heads per kv head (grouped-query attention)
        self.group, self.scale = group, q.shape[-1] ** -0.5
        self.q, self.k, self.v = q, self.per_query_head(k), self.per_query_head(v)
        scores = (self.q @ self.k.transpose(-1, -2)) * self.scale
        causal = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
        self.probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
        gate, up = seen["gate"], seen["up"]
        sig = torch.sigmoid(gate)
        self.silu_gate = gate * sig  # d(silu(a) * b) = silu'(a) b da + silu(a) db
        self.dgate = sig * (1 + gate * (1 - sig)) * up

    @functools.cached_property
    def weights(self) -> dict[str, Int8Weight]:
        """Quantized on first use: the first layer carries nothing."""
        att, ffn = self.layer.attention, self.layer.feed_forward
        return {"qkv": Int8Weight(att.wq.weight, att.wk.weight, att.wv.weight), "o": Int8Weight(att.wo.weight),
                "gate_up": Int8Weight(ffn.w1.weight, ffn.w3.weight), "down": Int8Weight(ffn.w2.weight)}

    @torch.no_grad()
    def __call__(self, dx: torch.Tensor, at: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`at` adds tangents [B, T, out] at the outputs of the linears it names (see `starts`)."""
        w, att, at = self.weights, self.layer.attention, at or {}
        b, t, _ = dx.shape
        dq, dk, dv = w["qkv"](norm_tangent(self.layer.attention_norm, self.x, dx)).split(
            [att.n_heads * att.head_dim, att.n_kv_heads * att.head_dim, att.n_kv_heads * att.head_dim], -1)
        dq, dk, dv = (d + at.get(f"attention.{name}", 0) for d, name in zip((dq, dk, dv), ("wq", "wk", "wv")))
        dq = att.rotary(dq.view(b, t, att.n_heads, att.head_dim), self.cos, self.sin)  # rotary is linear
        dk = att.rotary(dk.view(b, t, att.n_kv_heads, att.head_dim), self.cos, self.sin)
        dv = dv.view(b, t, att.n_kv_heads, att.head_dim)
        dmiddle = dx + w["o"](self.attention_tangent(dq, dk, dv)) + at.get("attention.wo", 0)
        dgate, dup = w["gate_up"](norm_tangent(self.layer.ffn_norm, self.middle, dmiddle)).chunk(2, -1)
        dgate, dup = dgate + at.get("feed_forward.w1", 0), dup + at.get("feed_forward.w3", 0)
        return dmiddle + w["down"](self.dgate * dgate + self.silu_gate * dup) + at.get("feed_forward.w2", 0)

    def starts(self, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """[len(weights), T, dim]: for each linear (path -> another weight), the tangent at `output`
        when that linear alone takes the other weight: first order in the change, as is the carry."""
        n, t, dim = len(weights), self.x.shape[1], self.x.shape[2]
        at = {}
        for i, (path, weight) in enumerate(weights.items()):
            change = self.inputs[path][0] @ (weight - self.layer.get_submodule(path).weight).T  # [T, out]
            at.setdefault(path, torch.zeros(n, t, change.shape[-1]))[i] = change
        return self(torch.zeros(n, t, dim), at)

    def attention_tangent(self, dq, dk, dv) -> torch.Tensor:
        """Of softmax(q k^T / sqrt(d)) v, causal: [B, T, heads, d] tangents (k, v: kv heads) -> [B, T, heads * d]."""
        dq, dk, dv = dq.transpose(1, 2), self.per_query_head(dk.transpose(1, 2)), self.per_query_head(dv.transpose(1, 2))
        dscores = (dq @ self.k.transpose(-1, -2) + self.q @ dk.transpose(-1, -2)) * self.scale
        dprobs = self.probs * (dscores - (self.probs * dscores).sum(-1, keepdim=True))  # 0 where masked
        dout = dprobs @ self.v + self.probs @ dv
        return dout.transpose(1, 2).flatten(2)

    def per_query_head(self, kv: torch.Tensor) -> torch.Tensor:
        """[B, kv heads, T, d] -> [B, heads, T, d]: each kv head for the query heads that share it."""
        return kv if self.group == 1 else kv.repeat_interleave(self.group, 1)


LINEARS = ("attention.wq", "attention.wk", "attention.wv", "attention.wo",
           "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")


def norm_tangent(norm: nn.Module, x: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Of RMSNorm w * x * r, r = (mean(x^2) + eps)^-1/2: w * r * (dx - x r^2 mean(x dx))."""
    r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps)
    return norm.weight * r * (dx - x * (r * r) * (x * dx).mean(-1, keepdim=True))


class Int8Weight:
    """Linears' float weights [N_i, K], stacked along N and rounded to int8 per output channel;
    called on float x [..., K], rounds x to int8 per row and returns x @ W^T [..., sum N_i] in fp32."""

    def __init__(self, *weights: torch.Tensor):
        q, scale = symmetric_rtn(torch.cat(weights), 8, 0)  # as the 8-bit linears themselves are rounded
        self.int8, self.scale = q.T.contiguous(), scale[:, 0]  # [K, N]: _int_mm's layout

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        scale = torch.linalg.vector_norm(rows, float("inf"), 1, keepdim=True).clamp(min=1e-30) / 127
        out = torch._int_mm(torch.round(rows / scale).to(torch.int8), self.int8).float()
        return out.mul_(scale).mul_(self.scale).view(*x.shape[:-1], -1)
