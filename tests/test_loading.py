"""One tiny random Llama 2 written in every format must give transformers' logits (fp32, 1e-4)."""
from __future__ import annotations

import pytest
import torch

import edgellama
from checkpoints import write_gguf, write_hf, write_hf_bin, write_meta


def reference_logits(hf, tokens):
    with torch.no_grad():
        return hf(tokens).logits


def assert_same_logits(path, hf, tokens):
    model = edgellama.load_model(path)
    with torch.no_grad():
        ours = model(tokens)
    ref = reference_logits(hf, tokens)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("n_shards", [1, 2, 8])
def test_meta_shards_match_transformers(tmp_path, tiny_hf, tokens, sp_model, n_shards):
    path = write_meta(tmp_path / "meta", tiny_hf.state_dict(), n_shards, tokenizer=sp_model)
    assert_same_logits(path, tiny_hf, tokens)


def test_meta_bf16_loads_in_requested_dtype(tmp_path, tiny_hf, tokens):
    path = write_meta(tmp_path / "meta", tiny_hf.state_dict(), 2, dtype=torch.bfloat16)
    model = edgellama.load_model(path, torch.bfloat16)
    assert model.layers[0].attention.wq.weight.dtype == torch.bfloat16
    with torch.no_grad():
        diff = (model(tokens).float() - reference_logits(tiny_hf, tokens)).abs().mean()
    assert diff < 0.1  # bf16 rounding of weights and activations, nothing structural


def test_hf_sharded_safetensors_match_transformers(tmp_path, tiny_hf, tokens):
    path = write_hf(tmp_path / "hf", tiny_hf)
    assert len(list(path.glob("model-*-of-*.safetensors"))) > 1, "the fixture must really be sharded"
    assert_same_logits(path, tiny_hf, tokens)


def test_hf_bin_matches_transformers(tmp_path, tiny_hf, tokens):
    assert_same_logits(write_hf_bin(tmp_path / "bin", tiny_hf), tiny_hf, tokens)


def test_hf_tied_embeddings(tmp_path, tiny_hf_tied, tokens):
    path = write_hf(tmp_path / "tied", tiny_hf_tied, max_shard_size="10GB")
    model = edgellama.load_model(path)
    assert model.output.weight is model.tok_embeddings.weight
    assert_same_logits(path, tiny_hf_tied, tokens)


def test_gguf_f32_matches_transformers(tmp_path, tiny_hf, tokens, sp_model):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_hf.state_dict(), sp_model)
    assert_same_logits(path, tiny_hf, tokens)


def test_gguf_q8_0_dequantizes_close(tmp_path, tiny_hf, tokens, sp_model):
    path = write_gguf(tmp_path / "q8.gguf", tiny_hf.state_dict(), sp_model, qtype="Q8_0")
    model = edgellama.load_model(path)
    ref = tiny_hf.state_dict()["model.layers.0.mlp.down_proj.weight"]
    got = model.layers[0].feed_forward.w2.weight
    assert (got - ref).abs().max() < ref.abs().max() / 100  # 8-bit blocks of 32


def test_gguf_tokenizer_equals_sentencepiece(tmp_path, tiny_hf, sp_model):
    import sentencepiece as spm

    path = write_gguf(tmp_path / "tiny.gguf", tiny_hf.state_dict(), sp_model)
    tok = edgellama.load_tokenizer(path)
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    text = "The tower is 324 metres tall, ünïcode ✓ and  double  spaces."
    assert tok.encode(text) == [1] + sp.encode(text)
    assert tok.decode(tok.encode(text)) == sp.decode(sp.encode(text))
    assert tok.bos_id == 1 and tok.eos_ids == [2]


def test_llama2_chat_format(tmp_path, tiny_hf, sp_model):
    path = write_meta(tmp_path / "meta", tiny_hf.state_dict(), 1, tokenizer=sp_model)
    tok = edgellama.load_tokenizer(path)
    assert tok.chat_prompt("Hi", system="Be brief.") == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"
    assert tok.encode(tok.chat_prompt("Hi"))[0] == tok.bos_id


def test_loading_keeps_bf16_tensors_as_file_views(tmp_path, tiny_hf):
    """Same dtype in and out: parameters are views of the mmap, not copies (the 7B memory bound)."""
    path = write_meta(tmp_path / "meta", tiny_hf.state_dict(), 1, dtype=torch.bfloat16)
    model = edgellama.load_model(path, torch.bfloat16)
    reloaded = torch.load(path / "consolidated.00.pth", mmap=True, weights_only=True)
    w = model.layers[1].feed_forward.w2.weight
    assert w.untyped_storage().nbytes() == reloaded["layers.1.feed_forward.w2.weight"].untyped_storage().nbytes()
    assert not w.untyped_storage().resizable()  # a file mapping, not an allocation of ours
