"""Meta's format: params.json + consolidated.NN.pth, one file per model-parallel rank.

Each rank holds a slice of the column-parallel weights (wq/wk/wv/w1/w3/output, split on dim 0),
of the row-parallel ones (wo/w2, split on dim 1) and of the embedding (split on dim 1);
norms are replicated. Loading concatenates the slices back, one tensor at a time.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..errors import InputError
from ..model import ModelArgs, ffn_hidden_dim
from .common import Checkpoint, TokenizerSource, corrupt, layer_names, permute_meta_to_hf, to_dtype
from .config_file import config_value, read_config

_SHARD = re.compile(r"consolidated\.(\d+)\.pth$")
_DIM0 = ("wq", "wk", "wv", "w1", "w3", "output")
_DIM1 = ("wo", "w2", "tok_embeddings")


def is_meta(path: Path) -> bool:
    return path.is_dir() and (any(path.glob("consolidated.*.pth")) or (path / "params.json").exists())


def shard_files(path: Path) -> list[Path]:
    shards = sorted(path.glob("consolidated.*.pth"))
    if not shards:
        raise InputError(f"{path}: no consolidated.NN.pth shards next to params.json: copy the weight files into this folder")
    numbers = [int(_SHARD.search(p.name).group(1)) for p in shards]
    expected = list(range(len(shards)))
    if numbers != expected:
        missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
        raise InputError(f"{path}: shards {', '.join(p.name for p in shards)} are not numbered 00..{len(shards) - 1:02d}"
                         f" (missing consolidated.{missing[0]:02d}.pth): copy every shard of the checkpoint")
    return shards


def _load_shard(p: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(p, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError(f"{p}: refusing to load a pickle that holds code or non-tensor objects "
                         f"({str(e).splitlines()[0][:120]}); convert the checkpoint to safetensors or plain tensors") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise corrupt(p, e) from None


def _merge_dim(name: str) -> int | None:
    leaf = name.split(".")[-2] if name.endswith(".weight") else name
    if leaf in _DIM0:
        return 0
    if leaf in _DIM1:
        return 1
    return None  # replicated (norms)


def _merged_shape(name: str, shards: list[Path], states: list[dict]) -> tuple[int, ...]:
    """The shape `torch.cat` of the ranks' slices will have, from the mapped tensors' headers."""
    shapes = [tuple(getattr(sd[name], "shape", ())) for sd in states]  # a non-tensor entry: refused as misshapen
    d, first = _merge_dim(name), shapes[0]
    if len(shapes) == 1 or d is None or len(first) <= d:
        return first  # replicated, or too few dimensions to split: the shape check reports that
    for p, s in zip(shards[1:], shapes[1:]):
        if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != d):
            raise InputError(f"{p}: tensor {name} has shape {s} but {shards[0].name} holds {first}; "
                             f"the shards come from different checkpoints: copy every shard of one checkpoint")
    return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1:]


def open_meta(path: Path) -> Checkpoint:
    params_file = path / "params.json"
    if not params_file.exists():
        raise InputError(f"{params_file}: missing; Meta checkpoints need the params.json that ships with consolidated.*.pth")
    params = read_config(params_file)
    shards = shard_files(path)
    states = [_load_shard(p) for p in shards]

    def num(key, kind=int, *default):
        return config_value(params, key, params_file, kind, *default)

    dim, n_heads = num("dim"), num("n_heads")
    n_kv = num("n_kv_heads", int, None) or n_heads
    if dim % n_heads or n_heads % n_kv:
        raise InputError(f"{params_file}: dim {dim}, n_heads {n_heads} and n_kv_heads {n_kv} do not divide evenly; "
                         f"restore the original file")
    emb = states[0].get("tok_embeddings.weight")
    if emb is None:
        raise InputError(f"{shards[0]}: has no tok_embeddings.weight; this is not a Llama checkpoint")
    # Meta's params.json says "vocab_size": -1 when the tokenizer decides; the embedding's rows do.
    vocab = config_value(params, "vocab_size", params_file, int, -1, positive=False)
    if vocab <= 0:
        vocab = emb.shape[0]
    args = ModelArgs(
        dim=dim, n_layers=num("n_layers"), n_heads=n_heads, n_kv_heads=n_kv, vocab_size=vocab,
        hidden_dim=ffn_hidden_dim(dim, num("multiple_of", int, 256), num("ffn_dim_multiplier", float, None)),
        norm_eps=num("norm_eps", float, 1e-5), rope_theta=num("rope_theta", float, 10000.0),
        max_context_len=num("max_seq_len", int, 4096), tie_embeddings=False)

    # Every rank holds the same slice of wq's rows, so the first shard tells how many ranks there are.
    rows = states[0]["layers.0.attention.wq.weight"].shape[0] if "layers.0.attention.wq.weight" in states[0] else 0
    if rows and args.dim % rows == 0 and args.dim // rows != len(shards):
        raise InputError(f"{path}: params.json and consolidated.00.pth imply {args.dim // rows} model-parallel shards, "
                         f"found {len(shards)}; copy exactly consolidated.00..{args.dim // rows - 1:02d}.pth")

    expected = set(layer_names(args.n_layers))
    for p, sd in zip(shards, states):
        extra = sorted(k for k in sd if k not in expected and not k.startswith("rope."))
        missing = sorted(expected - set(sd))
        if missing or extra:
            what = f"lacks {missing[0]}" if missing else f"has unexpected tensor {extra[0]}"
            raise InputError(f"{p}: {what} for a {args.n_layers}-layer model per params.json; "
                             f"use the params.json that came with these weights")

    def loader(name: str):
        def load(dtype: torch.dtype) -> torch.Tensor:
            parts = [sd[name] for sd in states]
            d = _merge_dim(name)
            t = parts[0] if len(parts) == 1 or d is None else torch.cat(parts, dim=d)
            leaf = name.split(".")[-2]
            if leaf in ("wq", "wk"):
                heads = n_heads if leaf == "wq" else n_kv
                if t.shape[0] % (2 * heads) == 0:  # otherwise the shape check reports it
                    t = permute_meta_to_hf(t, heads)
            return to_dtype(t, dtype, parts)
        return load

    names = layer_names(args.n_layers)
    dtypes = {str(states[0][n].dtype).removeprefix("torch.") for n in names}
    tok = path / "tokenizer.model"
    if not tok.exists() and (path.parent / "tokenizer.model").exists():
        tok = path.parent / "tokenizer.model"  # Meta's download puts it one level up
    return Checkpoint(
        format="meta", path=path, files=[params_file, *shards], args=args,
        tensors={n: loader(n) for n in names},
        origin={n: (shards[0], n) for n in names},
        shapes={n: _merged_shape(n, shards, states) for n in names},
        source_dtypes=dtypes,
        tokenizer=TokenizerSource("sentencepiece", tok) if tok.exists() else TokenizerSource("none"))
