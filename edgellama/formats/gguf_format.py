"""GGUF (llama.cpp): one file with metadata, tokenizer and (possibly quantized) tensors.

Tensors are dequantized to float one at a time from the file's memory map; llama.cpp's q/k row
permutation (Meta's interleaved RoPE layout) is undone so the weights match the HF layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..model import ModelArgs
from .common import Checkpoint, TokenizerSource, corrupt, layer_names, permute_meta_to_hf, release_pages

# What gguf-py can dequantize and we have tested; anything else is refused with a clear message.
SUPPORTED_TYPES = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                   "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}

_BLOCK = {"attention.wq": "attn_q", "attention.wk": "attn_k", "attention.wv": "attn_v",
          "attention.wo": "attn_output", "feed_forward.w1": "ffn_gate", "feed_forward.w2": "ffn_down",
          "feed_forward.w3": "ffn_up", "attention_norm": "attn_norm", "ffn_norm": "ffn_norm"}


def gguf_name(ours: str) -> str:
    if ours == "tok_embeddings.weight":
        return "token_embd.weight"
    if ours == "norm.weight":
        return "output_norm.weight"
    if ours == "output.weight":
        return "output.weight"
    _, i, rest = ours.split(".", 2)
    return f"blk.{i}.{_BLOCK[rest.removesuffix('.weight')]}.weight"


def _torch_shape(t) -> list[int]:
    return [int(d) for d in reversed(t.shape)]  # GGML lists the fastest dimension first


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def _count(reader, path: Path, key: str, default=None) -> int:
    """A size from the metadata; missing or not a positive integer is a broken conversion."""
    value = _field(reader, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{path}: GGUF metadata {key} = {value!r} is not a positive integer; convert the model to GGUF again")
    return value


def open_gguf(path: Path) -> Checkpoint:
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError, KeyError) as e:
        raise corrupt(path, e) from None
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise InputError(f"{path}: GGUF architecture {arch!r} is not 'llama'; edgellama loads Llama-family models")
    tensors = {t.name: t for t in reader.tensors}
    emb = tensors.get("token_embd.weight")
    if emb is None:
        raise InputError(f"{path}: has no token_embd.weight; this GGUF holds no Llama model")
    n_heads = _count(reader, path, "llama.attention.head_count")
    n_layers = _count(reader, path, "llama.block_count")
    args = ModelArgs(
        dim=_count(reader, path, "llama.embedding_length"), n_layers=n_layers, n_heads=n_heads,
        n_kv_heads=_count(reader, path, "llama.attention.head_count_kv", n_heads),
        vocab_size=_torch_shape(emb)[0],
        hidden_dim=_count(reader, path, "llama.feed_forward_length"),
        norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        max_context_len=_field(reader, "llama.context_length", 4096),
        tie_embeddings="output.weight" not in tensors)
    if args.dim % n_heads or n_heads % args.n_kv_heads:
        raise InputError(f"{path}: GGUF metadata embedding_length {args.dim}, head_count {n_heads} and head_count_kv "
                         f"{args.n_kv_heads} do not divide evenly; convert the model to GGUF again")

    names = layer_names(n_layers)
    if args.tie_embeddings:
        names.remove("output.weight")
    for n in names:
        t = tensors.get(gguf_name(n))
        if t is None:
            raise InputError(f"{path}: no tensor {gguf_name(n)} for a {n_layers}-layer model per its metadata; the file is incomplete, convert it again")
        if t.tensor_type.name not in SUPPORTED_TYPES:
            raise InputError(f"{path}: tensor {t.name} has GGML type {t.tensor_type.name}, which edgellama cannot dequantize; "
                             f"convert the model to one of {', '.join(sorted(SUPPORTED_TYPES))}")

    def loader(n: str):
        def load(dtype: torch.dtype) -> torch.Tensor:
            t = tensors[gguf_name(n)]
            try:
                data = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
                if not data.flags.writeable:  # an F32 tensor comes back as a view of the read-only map
                    data = data.copy()
            except (ValueError, IndexError) as e:
                raise corrupt(path, e) from None
            w = torch.from_numpy(data.reshape(_torch_shape(t)))
            leaf = n.split(".")[-2]
            if leaf in ("wq", "wk"):
                w = permute_meta_to_hf(w, n_heads if leaf == "wq" else args.n_kv_heads)
            out = w.to(dtype).contiguous()
            release_pages(t.data.ctypes.data, t.data.nbytes)
            return out
        return load

    tok = {
        "model": _field(reader, "tokenizer.ggml.model"),
        "pre": _field(reader, "tokenizer.ggml.pre"),
        "tokens": _field(reader, "tokenizer.ggml.tokens"),
        "scores": _field(reader, "tokenizer.ggml.scores"),
        "token_type": _field(reader, "tokenizer.ggml.token_type"),
        "merges": _field(reader, "tokenizer.ggml.merges"),
        "bos_token_id": _field(reader, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": _field(reader, "tokenizer.ggml.eos_token_id"),
        "add_bos_token": _field(reader, "tokenizer.ggml.add_bos_token"),
        "add_space_prefix": _field(reader, "tokenizer.ggml.add_space_prefix"),
        "chat_template": _field(reader, "tokenizer.chat_template"),
    }
    return Checkpoint(
        format="gguf", path=path, files=[path], args=args,
        tensors={n: loader(n) for n in names},
        origin={n: (path, gguf_name(n)) for n in names},
        shapes={n: tuple(_torch_shape(tensors[gguf_name(n)])) for n in names},
        source_dtypes={tensors[gguf_name(n)].tensor_type.name for n in names},
        tokenizer=TokenizerSource("gguf", path, tok) if tok["tokens"] else TokenizerSource("none"))
