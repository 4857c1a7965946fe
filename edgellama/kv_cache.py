"""Static KV cache: the attention form mobile runtimes and NPUs need.

`install_static_cache(model, max_seq_len)` swaps every `Attention.core` for a module that owns
fixed-shape caches `[B, n_kv_heads, max_seq_len, head_dim]`, writes the new K/V in place at
their positions and attends over the cache with a causal-by-position mask. The model is then
called as `model(tokens[1, T], input_pos[1])`, for a prefill (T > 1) or a decode step (T = 1).

`ExplicitCacheModel` is the other flavour, for ONNX and NPU graphs that hold no state: the caches
are inputs and the updated caches outputs, all of one fixed shape.
"""
from __future__ import annotations

import torch
from torch import nn

from .model import CausalAttentionCore, Transformer, attend


def check_room(end: int, max_seq_len: int) -> None:
    """Eager only: a write past the cache would be silently dropped or wrap in a compiled graph."""
    if end > max_seq_len:
        raise ValueError(f"position {end - 1} is past the KV cache (max_context_len={max_seq_len}); "
                         f"reset the session or export with a larger --max-context-len")


def visible(positions: torch.Tensor, max_seq_len: int) -> torch.Tensor:
    """[T, max_seq_len] mask: the query at each position sees cache slots up to its own."""
    return torch.arange(max_seq_len, device=positions.device)[None, :] <= positions[:, None]


class StaticCacheCore(nn.Module):
    """Pure-PyTorch cache: index_copy_ into buffers, masked SDPA over all max_seq_len slots."""

    def __init__(self, n_kv_heads: int, head_dim: int, max_seq_len: int, dtype: torch.dtype, batch: int = 1):
        super().__init__()
        self.max_seq_len = max_seq_len
        shape = (batch, n_kv_heads, max_seq_len, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype), persistent=False)

    def forward(self, q, k, v, positions):
        if not torch.compiler.is_compiling():
            check_room(int(positions[-1]) + 1, self.max_seq_len)
        self.k_cache.index_copy_(2, positions, k.transpose(1, 2).to(self.k_cache.dtype))
        self.v_cache.index_copy_(2, positions, v.transpose(1, 2).to(self.v_cache.dtype))
        return attend(q.transpose(1, 2), self.k_cache.to(q.dtype), self.v_cache.to(q.dtype),
                      visible(positions, self.max_seq_len))

    def reset(self):
        self.k_cache.zero_()
        self.v_cache.zero_()


class ExecuTorchCacheCore(nn.Module):
    """ExecuTorch's `llama::update_cache` and `llama::custom_sdpa` ops: caches [1, max_seq_len, Hkv, D]
    (sequence in dim 1, as the ops expect), written in place at `start_pos`; custom_sdpa attends
    causally by absolute position and takes the Hkv-head cache as is, so GQA needs no copies.
    These ops keep the exported graph to a few ops per layer, which XNNPACK takes in large partitions."""

    def __init__(self, n_kv_heads: int, head_dim: int, max_seq_len: int, dtype: torch.dtype):
        super().__init__()
        from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (registers llama::*)

        self.max_seq_len = max_seq_len
        shape = (1, max_seq_len, n_kv_heads, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype), persistent=False)

    def forward(self, q, k, v, positions):
        start_pos = positions[0].item()
        if not torch.compiler.is_compiling():
            check_room(start_pos + q.shape[1], self.max_seq_len)
        torch._check(start_pos >= 0)
        torch._check(start_pos + q.shape[1] <= self.max_seq_len)
        torch.ops.llama.update_cache(k.to(self.k_cache.dtype), self.k_cache, start_pos)
        torch.ops.llama.update_cache(v.to(self.v_cache.dtype), self.v_cache, start_pos)
        y = torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start_pos, None, 0.0, True)
        return y.reshape(q.shape[0], -1, q.shape[2] * q.shape[3])

    def reset(self):
        self.k_cache.zero_()
        self.v_cache.zero_()


class ExplicitCacheCore(nn.Module):
    """No state: attends over `cache_in` (set by ExplicitCacheModel for the call) with the new K/V
    written at their positions, and leaves that updated pair in `cache_out`."""

    def __init__(self, max_seq_len: int):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.cache_in = self.cache_out = None

    def forward(self, q, k, v, positions):
        if not torch.compiler.is_compiling():
            check_room(int(positions[-1]) + 1, self.max_seq_len)
        k_in, v_in = self.cache_in
        k_cache = k_in.index_copy(2, positions, k.transpose(1, 2).to(k_in.dtype))
        v_cache = v_in.index_copy(2, positions, v.transpose(1, 2).to(v_in.dtype))
        self.cache_out = (k_cache, v_cache)
        return attend(q.transpose(1, 2), k_cache.to(q.dtype), v_cache.to(q.dtype), visible(positions, self.max_seq_len))


class ExplicitCacheModel(nn.Module):
    """`forward(tokens[1, T], input_pos[1], k_0, v_0, k_1, v_1, ...) -> (logits, k_0', v_0', ...)`,
    every cache [1, n_kv_heads, max_seq_len, head_dim]; the outputs are the inputs with the new
    positions written, ready to be fed back (or aliased in place by a runtime that can)."""

    def __init__(self, model: Transformer, max_seq_len: int):
        super().__init__()
        self.model = model
        self.max_seq_len = max_seq_len
        for layer in model.layers:
            layer.attention.core = ExplicitCacheCore(max_seq_len)

    def empty_caches(self, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        a = self.model.args
        return [torch.zeros(1, a.n_kv_heads, self.max_seq_len, a.head_dim, dtype=dtype) for _ in range(2 * a.n_layers)]

    def forward(self, tokens, input_pos, *caches):
        cores = [layer.attention.core for layer in self.model.layers]
        for i, core in enumerate(cores):
            core.cache_in = caches[2 * i], caches[2 * i + 1]
        logits = self.model(tokens, input_pos)
        out = [t for core in cores for t in core.cache_out]
        for core in cores:
            core.cache_in = core.cache_out = None
        return (logits, *out)


CORES = {"static": StaticCacheCore, "executorch": ExecuTorchCacheCore}


def install_static_cache(model: Transformer, max_seq_len: int, dtype: torch.dtype | None = None,
                         kind: str = "static") -> Transformer:
    """In place: give every attention layer a static KV cache of `max_seq_len` positions.
    kind: "static" (pure PyTorch, any backend) or "executorch" (ExecuTorch's custom ops)."""
    args = model.args
    dtype = dtype or model.norm.weight.dtype
    for layer in model.layers:
        layer.attention.core = CORES[kind](args.n_kv_heads, args.head_dim, max_seq_len, dtype)
    return model


def remove_cache(model: Transformer) -> Transformer:
    for layer in model.layers:
        layer.attention.core = CausalAttentionCore()
    return model


def reset_cache(model: Transformer) -> None:
    for layer in model.layers:
        if hasattr(layer.attention.core, "reset"):
            layer.attention.core.reset()
