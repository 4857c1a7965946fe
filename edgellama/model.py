"""The Llama module every export is checked against.

Parameter names follow Meta's checkpoints (`tok_embeddings`, `layers.N.attention.wq`, ...).
q/k rows are in the Hugging Face "rotate half" RoPE layout: Meta and GGUF weights are permuted
into it when loaded (see `formats.common.permute_meta_to_hf`).

Attention hands "store K/V and attend" to `Attention.core`, a small module that the KV-cache
transforms in `kv_cache.py` swap out; the default core is plain causal attention with no cache.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int = 32
    vocab_size: int = 32000
    hidden_dim: int = 11008
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_context_len: int = 4096
    tie_embeddings: bool = False
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def num_params(self) -> int:
        hd = self.head_dim
        attn = self.dim * hd * (2 * self.n_heads + 2 * self.n_kv_heads)
        ffn = 3 * self.dim * self.hidden_dim
        per_layer = attn + ffn + 2 * self.dim
        embed = self.vocab_size * self.dim * (1 if self.tie_embeddings else 2)
        return self.n_layers * per_layer + embed + self.dim


def ffn_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """SwiGLU hidden size as Meta's reference code derives it from params.json."""
    hidden = int(2 * 4 * dim / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


CONFIGS: dict[str, ModelArgs] = {
    "llama2-7b": ModelArgs(dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, hidden_dim=11008),
    "llama2-13b": ModelArgs(dim=5120, n_layers=40, n_heads=40, n_kv_heads=40, hidden_dim=13824),
    "llama2-70b": ModelArgs(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, hidden_dim=28672),
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in (at least) fp32 whatever the weights' dtype, as the reference implementations do.
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [T, head_dim] for the given absolute positions (HF layout: halves repeated)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class Rotary(nn.Module):
    """Applies RoPE: x * cos + rotate_half(x) * sin. x: [B, T, H, D]; cos/sin: [T, D]."""

    def rotate_half(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def forward(self, x, cos, sin):
        cos, sin = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
        return x * cos + self.rotate_half(x) * sin


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention written out (as transformers' eager path does) rather than through
    F.scaled_dot_product_attention, whose kernel choice depends on the query length: the cached
    and uncached models would then round differently. q: [B,H,T,D], k/v: [B,Hkv,S,D], mask: [T,S]
    (True = may attend) -> [B,T,H*D]."""
    b, h, t, d = q.shape
    hkv = k.shape[1]
    qg = q.reshape(b, hkv, (h // hkv) * t, d)  # the query heads that share a kv head, stacked
    scores = (qg @ k.transpose(-1, -2)) * d**-0.5
    scores = scores.view(b, hkv, h // hkv, t, -1).masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores.to(torch.promote_types(q.dtype, torch.float32)), dim=-1).to(q.dtype).view(b, hkv, (h // hkv) * t, -1)
    return (probs @ v).view(b, h, t, d).transpose(1, 2).reshape(b, t, h * d)


class CausalAttentionCore(nn.Module):
    """No cache: attend causally within the given tokens. q: [B,T,H,D], k/v: [B,T,Hkv,D]."""

    def forward(self, q, k, v, positions):
        t = q.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
        return attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        hd = args.head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, hd
        self.wq = nn.Linear(args.dim, args.n_heads * hd, bias=False)
        self.wk = nn.Linear(args.dim, args.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(args.dim, args.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(args.n_heads * hd, args.dim, bias=False)
        self.rotary: nn.Module = Rotary()
        self.core: nn.Module = CausalAttentionCore()

    def forward(self, x, cos, sin, positions):
        # -1 rather than the (symbolic, once exported) length: XNNPACK only delegates static views.
        b = x.shape[0]
        q = self.wq(x).view(b, -1, self.n_heads, self.head_dim)
        k = self.wk(x).view(b, -1, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(b, -1, self.n_kv_heads, self.head_dim)
        q, k = self.rotary(q, cos, sin), self.rotary(k, cos, sin)
        return self.wo(self.core(q, k, v, positions))


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.hidden_dim, bias=False)
        self.w2 = nn.Linear(args.hidden_dim, args.dim, bias=False)
        self.w3 = nn.Linear(args.dim, args.hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args)
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)

    def forward(self, x, cos, sin, positions):
        return self.feed(self.attend(x, cos, sin, positions))

    def attend(self, x, cos, sin, positions):
        """The residual stream after the attention half (`forward` = `feed(attend(x))`)."""
        return x + self.attention(self.attention_norm(x), cos, sin, positions)

    def feed(self, h):
        """The residual stream after the feed-forward half."""
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        if args.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T, V]. `input_pos` ([1], the first token's position)
        is only meaningful once a KV cache is installed; without one, positions start at 0."""
        return self.output(self.norm(self.hidden(tokens, input_pos)))

    def hidden(self, tokens: torch.Tensor, input_pos: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's output [B, T, dim], before the final norm and the head."""
        t = tokens.shape[1]
        positions = torch.arange(t, device=tokens.device)
        if input_pos is not None:
            positions = positions + input_pos[0]
        cos, sin = rope_cos_sin(positions, self.args.head_dim, self.args.rope_theta)
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h, cos, sin, positions)
        return h


def skeleton(args: ModelArgs) -> Transformer:
    """The module with every parameter on the meta device (shapes only, no memory)."""
    with torch.device("meta"):
        return Transformer(args).eval()
