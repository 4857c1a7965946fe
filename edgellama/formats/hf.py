"""Hugging Face format: config.json + model.safetensors / model-XXXXX-of-YYYYY.safetensors
(with model.safetensors.index.json) / pytorch_model*.bin. HF already stores q/k in the
rotate-half layout this module uses, so tensors are only renamed."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import InputError
from ..model import ModelArgs
from .common import Checkpoint, TokenizerSource, corrupt, layer_names, to_dtype
from .config_file import config_value, read_config

_SHARDED = re.compile(r"-(\d{5})-of-(\d{5})\.(safetensors|bin)$")


def is_hf(path: Path) -> bool:
    return path.is_dir() and ((path / "config.json").exists() or any(path.glob("*.safetensors"))
                              or any(path.glob("pytorch_model*.bin")))


def hf_name(ours: str) -> str:
    if ours == "tok_embeddings.weight":
        return "model.embed_tokens.weight"
    if ours == "norm.weight":
        return "model.norm.weight"
    if ours == "output.weight":
        return "lm_head.weight"
    _, i, rest = ours.split(".", 2)
    rest = (rest.replace("attention.wq", "self_attn.q_proj").replace("attention.wk", "self_attn.k_proj")
            .replace("attention.wv", "self_attn.v_proj").replace("attention.wo", "self_attn.o_proj")
            .replace("feed_forward.w1", "mlp.gate_proj").replace("feed_forward.w2", "mlp.down_proj")
            .replace("feed_forward.w3", "mlp.up_proj").replace("attention_norm", "input_layernorm")
            .replace("ffn_norm", "post_attention_layernorm"))
    return f"model.layers.{i}.{rest}"


def _weight_files(path: Path) -> list[Path]:
    for pattern, index_name in (("*.safetensors", "model.safetensors.index.json"),
                                ("pytorch_model*.bin", "pytorch_model.bin.index.json")):
        files = sorted(path.glob(pattern))
        index = path / index_name
        if index.exists():
            weight_map = read_config(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise InputError(f"{index}: no \"weight_map\" object; restore the index that came with the shards")
            listed = sorted(set(map(str, weight_map.values())))
            for name in listed:
                if not (path / name).exists():
                    raise InputError(f"{path / name}: listed in {index.name} but missing; copy every shard of the checkpoint")
            unlisted = [f.name for f in files if f.name not in listed]
            if unlisted:
                raise InputError(f"{path / unlisted[0]}: not listed in {index.name}; remove the stray file or restore the matching index")
            return [path / n for n in listed]
        if files:
            counts = {int(m.group(2)) for f in files if (m := _SHARDED.search(f.name))}
            if counts and (len(counts) > 1 or counts.pop() != len(files)):
                raise InputError(f"{path}: shard files {', '.join(f.name for f in files)} do not form one complete set; "
                                 f"copy every shard (and its index.json) of the checkpoint")
            return files
    raise InputError(f"{path}: no model*.safetensors or pytorch_model*.bin next to config.json; copy the weight files into this folder")


def _open_file(f: Path) -> dict:
    """name -> (zero-arg loader of the tensor as stored, its shape from the header)."""
    if f.suffix == ".safetensors":
        try:
            handle = safe_open(f, framework="pt")
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
        except (SafetensorError, OSError) as e:
            raise corrupt(f, e) from None

        def get(k, handle=handle, f=f):
            try:
                return handle.get_tensor(k)
            except (SafetensorError, OSError, RuntimeError) as e:
                raise corrupt(f, e) from None
        return {k: ((lambda k=k: get(k)), shape) for k, shape in shapes.items()}
    try:
        sd = torch.load(f, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError(f"{f}: refusing to load a pickle that holds code or non-tensor objects "
                         f"({str(e).splitlines()[0][:120]}); convert the checkpoint to safetensors") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise corrupt(f, e) from None
    # mmap: no bytes read yet. A non-tensor entry gets shape (): refused as unexpected or as misshapen.
    return {k: ((lambda t=t: t), tuple(getattr(t, "shape", ()))) for k, t in sd.items()}


def open_hf(path: Path) -> Checkpoint:
    config_file = path / "config.json"
    if not config_file.exists():
        raise InputError(f"{config_file}: missing; Hugging Face checkpoints need the config.json that ships with the weights")
    cfg = read_config(config_file)
    if cfg.get("model_type", "llama") not in ("llama", "mistral"):
        raise InputError(f"{config_file}: model_type {cfg.get('model_type')!r} is not a Llama architecture; edgellama loads Llama-family models")
    def num(key, kind=int, *default):
        return config_value(cfg, key, config_file, kind, *default)

    n_heads = num("num_attention_heads")
    rope = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else {}
    args = ModelArgs(
        dim=num("hidden_size"), n_layers=num("num_hidden_layers"), n_heads=n_heads,
        n_kv_heads=num("num_key_value_heads", int, None) or n_heads, vocab_size=num("vocab_size"),
        hidden_dim=num("intermediate_size"), norm_eps=num("rms_norm_eps", float, 1e-6),
        rope_theta=num("rope_theta", float, None) or config_value(rope, "rope_theta", config_file, float, 10000.0),
        max_context_len=num("max_position_embeddings", int, 4096),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)))
    if args.dim % n_heads or n_heads % args.n_kv_heads:
        raise InputError(f"{config_file}: hidden_size {args.dim}, num_attention_heads {n_heads} and "
                         f"num_key_value_heads {args.n_kv_heads} do not divide evenly; restore the original file")
    if cfg.get("head_dim") not in (None, args.head_dim):
        raise InputError(f"{config_file}: head_dim {cfg['head_dim']} != hidden_size/num_attention_heads; not supported")

    files = _weight_files(path)
    available: dict[str, tuple[Path, object, tuple[int, ...]]] = {}
    for f in files:
        for k, (get, shape) in _open_file(f).items():
            available[k] = (f, get, shape)
    names = layer_names(args.n_layers)
    if args.tie_embeddings:
        names.remove("output.weight")
    wanted = {hf_name(n): n for n in names}
    for n in names:
        if hf_name(n) not in available:
            raise InputError(f"{files[0].parent}: no tensor {hf_name(n)} in {', '.join(f.name for f in files)} "
                             f"for a {args.n_layers}-layer model per config.json; use the config.json that came with these weights")
    extra = sorted(k for k in available if k not in wanted and "rotary_emb" not in k
                   and not (k == "lm_head.weight" and args.tie_embeddings))
    if extra:
        raise InputError(f"{available[extra[0]][0]}: unexpected tensor {extra[0]}; the weights and config.json disagree — "
                         f"use the config.json that came with these weights")

    def loader(n: str):
        def load(dtype: torch.dtype) -> torch.Tensor:
            t = available[hf_name(n)][1]()
            return to_dtype(t, dtype, [])
        return load

    dtypes = {str(available[hf_name(names[0])][1]().dtype).removeprefix("torch.")}
    tokenizer = TokenizerSource("none")
    if (path / "tokenizer.json").exists():
        tokenizer = TokenizerSource("hf", path / "tokenizer.json")
    elif (path / "tokenizer.model").exists():
        tokenizer = TokenizerSource("sentencepiece", path / "tokenizer.model")
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.exists():
        tokenizer.config = read_config(tok_cfg)
    tokenizer.config.setdefault("bos_token_id", cfg.get("bos_token_id"))
    tokenizer.config.setdefault("eos_token_id", cfg.get("eos_token_id"))
    return Checkpoint(
        format="hf", path=path, files=[config_file, *files], args=args,
        tensors={n: loader(n) for n in names},
        origin={n: (available[hf_name(n)][0], hf_name(n)) for n in names},
        shapes={n: available[hf_name(n)][2] for n in names},
        source_dtypes=dtypes, tokenizer=tokenizer)
