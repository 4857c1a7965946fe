"""ONNX for ONNX Runtime on CPU: int4 (or int8) weight-only linears as `com.microsoft::MatMulNBits`,
attention as `com.microsoft::GroupQueryAttention` over a static KV cache, the embedding as
`com.microsoft::GatherBlockQuantized`; plus the `genai_config.json` with which
`onnxruntime_genai.Model(folder)` loads the folder. The graph is built in `onnx_graph.py`."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from edgellama.errors import InputError

from .options import ExportOptions

MODEL_FILE = "model.onnx"
# Weights always go to a side file: one code path for every size, and the only one that works past
# protobuf's 2 GB limit.
DATA_FILE = "model.onnx.data"
GENAI_CONFIG = "genai_config.json"
# The output head is weight-only, as the 4w linears (schemes.head_scheme): int4 in groups, or 8-bit per
# channel (MatMulNBits bits=8 in ORT 1.32, the per-channel scale repeated for each block of the row, exact).
SCHEMES = ("4w", "8w", "fp32")
# MatMulNBits is weight-only: it has no form for torchao's per-token int8 activations (8da*). Its
# accuracy_level 4 quantizes activations too, but per block and symmetric, which is another scheme.
INSTEAD = {"8da4w": "4w", "8da8w": "8w", "fp16": "fp32", "bf16": "fp32"}
ACCURACY_LEVELS = {0: "unset (fp32 on CPU)", 1: "fp32", 2: "fp16", 3: "bf16", 4: "int8 activations"}


def check_options(options: ExportOptions) -> None:
    if options.quant not in SCHEMES:
        raise InputError(f"--quant {options.quant}: not available for --target onnx (MatMulNBits is weight-only); "
                         f"use --quant {INSTEAD.get(options.quant, '4w')}, or --target xnnpack for {options.quant}")
    if options.dtype != "fp32":
        raise InputError(f"--dtype {options.dtype}: the ONNX export computes in fp32 on CPU; use --dtype fp32")
    if options.logits != "all":
        raise InputError("--logits last: onnxruntime-genai binds a logits buffer for every prompt position; "
                         "use --logits all (the default) for --target onnx")
    if options.accuracy_level not in ACCURACY_LEVELS:
        raise InputError(f"--accuracy-level {options.accuracy_level}: use 0, 1 (fp32), 2 (fp16), 3 (bf16) or 4 (int8)")


def genai_config(model, tokenizer, options: ExportOptions) -> dict:
    """What onnxruntime-genai reads: the decoder's I/O names, sizes, and greedy search over a
    KV cache of max_context_len positions shared between past and present (written in place)."""
    a = model.args
    eos = list(tokenizer.eos_ids)
    return {
        "model": {
            "type": "llama",
            "bos_token_id": tokenizer.bos_id if tokenizer.bos_id is not None else eos[0],
            "eos_token_id": eos if len(eos) > 1 else eos[0],
            "pad_token_id": eos[0],
            "vocab_size": a.vocab_size,
            "context_length": options.max_context_len,
            "decoder": {
                "filename": MODEL_FILE,
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "head_size": a.head_dim, "hidden_size": a.dim, "num_attention_heads": a.n_heads,
                "num_hidden_layers": a.n_layers, "num_key_value_heads": a.n_kv_heads,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
            },
        },
        "search": {"do_sample": False, "num_beams": 1, "num_return_sequences": 1, "max_length": options.max_context_len,
                   "min_length": 0, "past_present_share_buffer": True, "early_stopping": True,
                   "repetition_penalty": 1.0, "length_penalty": 1.0, "no_repeat_ngram_size": 0,
                   "diversity_penalty": 0.0, "temperature": 1.0, "top_k": 1, "top_p": 1.0},
    }


def sentencepiece_config(tokenizer) -> dict:
    """The tokenizer_config.json beside the converted tokenizer.json (an HF tokenizer writes its own)."""
    piece = lambda i: tokenizer.id_to_piece(i) if i is not None else None  # noqa: E731
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": tokenizer.add_bos, "add_eos_token": False,
              "bos_token": piece(tokenizer.bos_id), "eos_token": piece(tokenizer.eos_ids[0] if tokenizer.eos_ids else None),
              "unk_token": piece(0), "chat_template": tokenizer.chat_template}
    # genai's JSON reader takes null for a string as an error ("type must be string, but is null")
    return {k: v for k, v in config.items() if v is not None}


def write_genai_tokenizer(tokenizer, folder: Path) -> None:
    """onnxruntime-genai reads tokenizer.json only; our runtime keeps tokenizer.model beside it."""
    if tokenizer.kind == "sentencepiece":
        from .onnx_tokenizer import write_tokenizer_json

        write_tokenizer_json(tokenizer, folder)
        (folder / "tokenizer_config.json").write_text(json.dumps(sentencepiece_config(tokenizer), indent=1))


def op_counts(model) -> dict:
    return dict(sorted(Counter(n.op_type for n in model.graph).items()))


def write_model(model, tokenizer, options: ExportOptions, folder: Path, say) -> dict:
    import onnx_ir as ir

    from .onnx_graph import build_decoder
    from .weight_file import WeightFile

    say("building the ONNX graph, writing its weights")
    weights = WeightFile(folder / DATA_FILE, alignment=1)
    graph = build_decoder(model, options.max_context_len, options.accuracy_level, weights, consume=True)
    weights.close()
    say(f"writing {MODEL_FILE}")
    ir.save(graph, folder / MODEL_FILE)  # the weights are in DATA_FILE already; the graph refers to them
    (folder / GENAI_CONFIG).write_text(json.dumps(genai_config(model, tokenizer, options), indent=1))
    write_genai_tokenizer(tokenizer, folder)
    a = model.args
    return {"model_file": MODEL_FILE, "data_file": DATA_FILE, "runtime": "onnxruntime", "provider": "cpu",
            "genai_config": GENAI_CONFIG, "max_seq_len": options.max_seq_len,
            "max_context_len": options.max_context_len, "vocab_size": a.vocab_size, "n_layers": a.n_layers,
            "n_kv_heads": a.n_kv_heads, "head_dim": a.head_dim,
            "bos_id": tokenizer.bos_id, "eos_ids": list(tokenizer.eos_ids),
            "accuracy_level": options.accuracy_level, "ops": op_counts(graph), **thresholds_key(options)}


def thresholds_key(options: ExportOptions) -> dict:
    """Which `parity` limits apply (runtime_py/data/thresholds.toml). At accuracy_level 4 ONNX Runtime
    quantizes activations to int8, which the weight-only eager twin does not, so the artifact is judged
    by its own table (`4w-a8`, `8w-a8`); otherwise by the scheme's (no key: the scheme's name)."""
    if options.accuracy_level == 4 and options.quant in ("4w", "8w"):
        return {"thresholds": f"{options.quant}-a8"}
    return {}
