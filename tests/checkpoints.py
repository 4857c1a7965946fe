"""Writers for tiny random Llama 2 checkpoints in every format the loader reads.

The ground truth is a `transformers.LlamaForCausalLM` with random weights (HF layout); each writer
converts its state dict the way the real converters do (Meta: q/k rows back to interleaved RoPE,
split across model-parallel ranks; GGUF: llama.cpp's permutation and names)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

# GQA and sizes nothing divides by accident: 6 heads, 2 kv heads, head_dim 16, FFN from
# Meta's multiple_of/ffn_dim_multiplier rule (int(1.3 * 256) -> 352), rope_theta not 10000.
TINY = dict(dim=96, n_layers=3, n_heads=6, n_kv_heads=2, multiple_of=32, ffn_dim_multiplier=1.3,
            norm_eps=1e-5, rope_theta=20000.0, hidden_dim=352, max_seq_len=256)
HF_TO_META = {"self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
              "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
              "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
              "mlp.up_proj": "feed_forward.w3", "input_layernorm": "attention_norm",
              "post_attention_layernorm": "ffn_norm"}
GGUF_BLOCK = {"attention.wq": "attn_q", "attention.wk": "attn_k", "attention.wv": "attn_v",
              "attention.wo": "attn_output", "feed_forward.w1": "ffn_gate", "feed_forward.w2": "ffn_down",
              "feed_forward.w3": "ffn_up", "attention_norm": "attn_norm", "ffn_norm": "ffn_norm"}


def hf_model(vocab_size: int, tie: bool = False, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=TINY["dim"], intermediate_size=TINY["hidden_dim"],
                      num_hidden_layers=TINY["n_layers"], num_attention_heads=TINY["n_heads"],
                      num_key_value_heads=TINY["n_kv_heads"], rms_norm_eps=TINY["norm_eps"],
                      rope_theta=TINY["rope_theta"], max_position_embeddings=TINY["max_seq_len"],
                      tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # HF initialises norms to 1; random norms catch a mixed-up norm
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.2 if "norm" not in name else 0.3) + (1.0 if "norm" in name else 0.0))
    return model


def odd_width_hf(folder: Path, tokenizer: Path, vocab_size: int = 384) -> Path:
    """A one-layer HF checkpoint 80 wide: no int4 group size of XNNPACK's (multiples of 32) divides
    it, so it is the model for the scheme/width checks."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=80, intermediate_size=192, num_hidden_layers=1,
                      num_attention_heads=5, num_key_value_heads=1, max_position_embeddings=128)
    torch.manual_seed(0)
    return write_hf(folder, LlamaForCausalLM(cfg).eval(), tokenizer=tokenizer)


def hf_to_meta_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def meta_state(hf_state: dict) -> dict:
    out = {}
    for k, v in hf_state.items():
        if k == "model.embed_tokens.weight":
            out["tok_embeddings.weight"] = v
        elif k == "model.norm.weight":
            out["norm.weight"] = v
        elif k == "lm_head.weight":
            out["output.weight"] = v
        else:
            _, _, i, rest = k.split(".", 3)
            mod, leaf = rest.rsplit(".", 1)
            name = f"layers.{i}.{HF_TO_META[mod]}.{leaf}"
            if mod == "self_attn.q_proj":
                v = hf_to_meta_rope(v, TINY["n_heads"])
            elif mod == "self_attn.k_proj":
                v = hf_to_meta_rope(v, TINY["n_kv_heads"])
            out[name] = v
    if "output.weight" not in out:
        out["output.weight"] = out["tok_embeddings.weight"]
    return out


def write_meta(folder: Path, hf_state: dict, n_shards: int, dtype=torch.float32, tokenizer: Path | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    state = meta_state(hf_state)
    for rank in range(n_shards):
        shard = {}
        for k, v in state.items():
            leaf = k.split(".")[-2]
            if leaf in ("wq", "wk", "wv", "w1", "w3", "output"):
                v = v.chunk(n_shards, dim=0)[rank]
            elif leaf in ("wo", "w2", "tok_embeddings"):
                v = v.chunk(n_shards, dim=1)[rank]
            shard[k] = v.to(dtype).clone()
        torch.save(shard, folder / f"consolidated.{rank:02d}.pth")
    params = {k: TINY[k] for k in ("dim", "n_layers", "n_heads", "n_kv_heads", "multiple_of",
                                   "ffn_dim_multiplier", "norm_eps", "rope_theta")}
    params["vocab_size"] = -1
    (folder / "params.json").write_text(json.dumps(params))
    if tokenizer:
        (folder / "tokenizer.model").write_bytes(tokenizer.read_bytes())
    return folder


def write_hf(folder: Path, model, max_shard_size: str = "40KB", safe: bool = True, tokenizer: Path | None = None):
    model.save_pretrained(folder, max_shard_size=max_shard_size, safe_serialization=safe)
    if tokenizer:
        (folder / "tokenizer.model").write_bytes(tokenizer.read_bytes())
    return folder


def write_hf_bin(folder: Path, model, tokenizer: Path | None = None):
    """transformers 5 only writes safetensors; a pytorch_model.bin is written as older releases did."""
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(folder)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, folder / "pytorch_model.bin")
    if tokenizer:
        (folder / "tokenizer.model").write_bytes(tokenizer.read_bytes())
    return folder


def sp_pieces(sp_model: Path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    return tokens, scores, types


def write_gguf(path: Path, hf_state: dict, sp_model: Path, qtype: str = "F32", skip: str | None = None,
               **metadata):
    """`qtype` applies to 2-D weights; `skip` drops a tensor (for incomplete-file tests); `metadata`
    overrides TINY's values in the header only (for metadata that contradicts the tensors)."""
    import gguf

    m = {**TINY, **metadata}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(m["max_seq_len"])
    w.add_embedding_length(m["dim"])
    w.add_block_count(m["n_layers"])
    w.add_feed_forward_length(m["hidden_dim"])
    w.add_head_count(m["n_heads"])
    w.add_head_count_kv(m["n_kv_heads"])
    w.add_rope_freq_base(m["rope_theta"])
    w.add_layer_norm_rms_eps(m["norm_eps"])
    tokens, scores, types = sp_pieces(sp_model)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for k, v in meta_state(hf_state).items():
        if k == "output.weight" and "lm_head.weight" not in hf_state:
            continue
        if k == "tok_embeddings.weight":
            name = "token_embd.weight"
        elif k == "norm.weight":
            name = "output_norm.weight"
        elif k == "output.weight":
            name = "output.weight"
        else:
            _, i, rest = k.split(".", 2)
            name = f"blk.{i}.{GGUF_BLOCK[rest.removesuffix('.weight')]}.weight"
        if name == skip:
            continue
        arr = v.float().numpy()
        if arr.ndim == 2 and qtype != "F32":
            q = gguf.GGMLQuantizationType[qtype]
            try:
                data = gguf.quants.quantize(arr, q)
            except NotImplementedError:  # types gguf-py cannot write (IQ*): zero blocks of the right size
                data = np.zeros(gguf.quants.quant_shape_to_byte_shape(arr.shape, q), dtype=np.uint8)
            w.add_tensor(name, data, raw_dtype=q)
        else:
            w.add_tensor(name, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def random_meta(folder: Path, dim: int, n_layers: int, tokenizer: Path, vocab_size: int = 384, n_heads: int = 16) -> Path:
    """A one-shard bf16 Meta checkpoint of random N(0, 0.02) weights (norms 1) of any width and depth,
    the FFN width from Meta's rule (multiple_of 256): big layers without a transformers model behind them.
    Each weight is drawn from a seed of its own place in the file, so two depths of one width share their
    first layers."""
    from edgellama.model import ModelArgs, ffn_hidden_dim, skeleton

    folder.mkdir(parents=True, exist_ok=True)
    args = ModelArgs(dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads, vocab_size=vocab_size,
                     hidden_dim=ffn_hidden_dim(dim, 256, None))
    shapes = {name: tuple(p.shape) for name, p in skeleton(args).named_parameters()}
    state = {}
    for k, (name, shape) in enumerate(shapes.items()):
        g = torch.Generator().manual_seed(k)
        state[name] = (torch.ones(shape) if len(shape) == 1 else torch.randn(*shape, generator=g) * 0.02).bfloat16()
    torch.save(state, folder / "consolidated.00.pth")
    (folder / "params.json").write_text(json.dumps({"dim": dim, "n_layers": n_layers, "n_heads": n_heads,
                                                    "n_kv_heads": n_heads, "multiple_of": 256, "norm_eps": 1e-5,
                                                    "vocab_size": -1}))
    (folder / "tokenizer.model").write_bytes(tokenizer.read_bytes())
    return folder
