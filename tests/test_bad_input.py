"""Every bad checkpoint gets one line naming the file and the fix, and exit code 2."""
from __future__ import annotations

import json
import os
import re

import pytest
import torch

from checkpoints import write_gguf, write_hf, write_meta
from conftest import run_cli


def load_via_cli(path):
    """`generate` loads every tensor, so it sees value errors (NaN, unreadable data) that `inspect`,
    which reads only the headers, does not."""
    return run_cli("generate", "--model", path, "--prompt", "hi", "-n", "1", "--json")


PROGRESS_LINE = re.compile(r"^\s+\d+\.\d s  ")  # an export's finished-stage lines, printed as it works


def assert_input_error(result, file_fragment: str, *words: str, after_progress: bool = False):
    """Exit 2 and one line naming the file and the fix (after the stage lines of an export that had
    begun its work, with `after_progress`)."""
    code, out, err = result
    assert code == 2, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip() and not (after_progress and PROGRESS_LINE.match(line))]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert file_fragment in lines[0], lines[0]
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def meta2(tmp_path, tiny_hf, sp_model):
    return write_meta(tmp_path / "meta", tiny_hf.state_dict(), 2, tokenizer=sp_model)


@pytest.fixture
def hf_sharded(tmp_path, tiny_hf, sp_model):
    return write_hf(tmp_path / "hf", tiny_hf, tokenizer=sp_model)


def test_missing_params_json(meta2):
    (meta2 / "params.json").unlink()
    assert_input_error(run_cli("inspect", meta2), "params.json", "missing")


def test_missing_config_json(hf_sharded):
    (hf_sharded / "config.json").unlink()
    assert_input_error(run_cli("inspect", hf_sharded), "config.json", "missing")


def edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# Issue 15: a config that contradicts the weights is refused from the file headers alone, by `inspect`
# as by every verb that loads (`generate` here), naming the file, the tensor, both shapes and the fix.
# The tiny model: dim 96, 6 heads of 16, 2 kv heads, FFN 352, vocab 384.
@pytest.mark.parametrize("verb", ["inspect", "generate"])
@pytest.mark.parametrize("changes, tensor, found, expected", [
    (dict(hidden_size=120, head_dim=20), "model.embed_tokens.weight", "(384, 96)", "(384, 120)"),
    (dict(intermediate_size=320), "model.layers.0.mlp.gate_proj.weight", "(352, 96)", "(320, 96)"),
    (dict(vocab_size=400), "model.embed_tokens.weight", "(384, 96)", "(400, 96)"),
    (dict(num_key_value_heads=3), "model.layers.0.self_attn.k_proj.weight", "(32, 96)", "(48, 96)"),
])
def test_config_json_contradicts_the_weights(hf_sharded, verb, changes, tensor, found, expected):
    edit_json(hf_sharded / "config.json", **changes)
    shard = json.loads((hf_sharded / "model.safetensors.index.json").read_text())["weight_map"][tensor]
    result = run_cli("inspect", hf_sharded) if verb == "inspect" else load_via_cli(hf_sharded)
    assert_input_error(result, shard, f"tensor {tensor} has shape {found} but config.json implies {expected}",
                       "use the config.json that came with these weights")


@pytest.mark.parametrize("layers, words", [(2, ["unexpected tensor model.layers.2."]),
                                           (4, ["no tensor model.layers.3."])])
def test_config_json_layer_count_contradicts_the_weights(hf_sharded, layers, words):
    edit_json(hf_sharded / "config.json", num_hidden_layers=layers)
    assert_input_error(run_cli("inspect", hf_sharded), str(hf_sharded), *words, "config.json")


@pytest.mark.parametrize("verb", ["inspect", "generate"])
@pytest.mark.parametrize("changes, tensor, found, expected", [
    (dict(multiple_of=64), "layers.0.feed_forward.w1.weight", "(352, 96)", "(384, 96)"),  # FFN 384, not 352
    (dict(dim=120), "tok_embeddings.weight", "(384, 96)", "(384, 120)"),  # merged from 2 ranks of 48
    (dict(vocab_size=400), "tok_embeddings.weight", "(384, 96)", "(400, 96)"),
    (dict(n_kv_heads=3), "layers.0.attention.wk.weight", "(32, 96)", "(48, 96)"),
])
def test_params_json_contradicts_the_weights(meta2, verb, changes, tensor, found, expected):
    edit_json(meta2 / "params.json", **changes)
    result = run_cli("inspect", meta2) if verb == "inspect" else load_via_cli(meta2)
    assert_input_error(result, "consolidated.00.pth", f"tensor {tensor} has shape {found} but params.json implies "
                       f"{expected}", "use the params.json that came with these weights")


def test_meta_shards_that_cannot_be_joined(meta2):
    shard = meta2 / "consolidated.01.pth"
    state = torch.load(shard, weights_only=True)
    state["layers.1.attention.wq.weight"] = torch.zeros(48, 80)  # rows are split across ranks, columns are not
    torch.save(state, shard)
    assert_input_error(run_cli("inspect", meta2), "consolidated.01.pth", "tensor layers.1.attention.wq.weight has "
                       "shape (48, 80) but consolidated.00.pth holds (48, 96)", "different checkpoints")


@pytest.mark.parametrize("metadata, tensor, found, expected", [
    (dict(hidden_dim=320), "blk.0.ffn_gate.weight", "(352, 96)", "(320, 96)"),
    (dict(dim=120), "token_embd.weight", "(384, 96)", "(384, 120)"),
    (dict(n_kv_heads=3), "blk.0.attn_k.weight", "(32, 96)", "(48, 96)"),
])
def test_gguf_metadata_contradicts_the_tensors(tmp_path, tiny_hf, sp_model, metadata, tensor, found, expected):
    path = write_gguf(tmp_path / "m.gguf", tiny_hf.state_dict(), sp_model, **metadata)
    assert_input_error(run_cli("inspect", path), "m.gguf", f"tensor {tensor} has shape {found} but the GGUF "
                       f"metadata implies {expected}", "convert the model to GGUF again")


@pytest.mark.parametrize("metadata, words", [(dict(dim=0), ["llama.embedding_length = 0", "not a positive integer"]),
                                             (dict(n_heads=5), ["head_count 5", "do not divide evenly"])])
def test_gguf_metadata_that_describes_no_model(tmp_path, tiny_hf, sp_model, metadata, words):
    path = write_gguf(tmp_path / "m.gguf", tiny_hf.state_dict(), sp_model, **metadata)
    assert_input_error(run_cli("inspect", path), "m.gguf", *words, "convert the model to GGUF again")


def test_missing_meta_shard(tmp_path, tiny_hf, sp_model):
    path = write_meta(tmp_path / "m8", tiny_hf.state_dict(), 8, tokenizer=sp_model)
    (path / "consolidated.03.pth").unlink()
    assert_input_error(run_cli("inspect", path), "consolidated.03.pth", "missing")


def test_missing_last_meta_shard(meta2):
    (meta2 / "consolidated.01.pth").unlink()
    assert_input_error(run_cli("inspect", meta2), str(meta2), "2 model-parallel shards", "found 1")


def test_extra_meta_shard(meta2):
    (meta2 / "consolidated.02.pth").write_bytes((meta2 / "consolidated.01.pth").read_bytes())
    assert_input_error(run_cli("inspect", meta2), str(meta2), "found 3")


def test_missing_hf_shard(hf_sharded):
    victim = sorted(hf_sharded.glob("model-*.safetensors"))[1]
    victim.unlink()
    assert_input_error(run_cli("inspect", hf_sharded), victim.name, "missing")


def test_extra_hf_shard(hf_sharded):
    stray = hf_sharded / "model-00099-of-00099.safetensors"
    stray.write_bytes(sorted(hf_sharded.glob("model-*.safetensors"))[0].read_bytes())
    assert_input_error(run_cli("inspect", hf_sharded), stray.name, "not listed")


def truncate(path, keep=0.6):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_safetensors(hf_sharded):
    victim = sorted(hf_sharded.glob("model-*.safetensors"))[0]
    truncate(victim)
    assert_input_error(load_via_cli(hf_sharded), victim.name, "truncated or corrupt")


def test_truncated_pth(meta2):
    truncate(meta2 / "consolidated.01.pth")
    assert_input_error(run_cli("inspect", meta2), "consolidated.01.pth", "truncated or corrupt")


def test_truncated_gguf(tmp_path, tiny_hf, sp_model):
    path = write_gguf(tmp_path / "t.gguf", tiny_hf.state_dict(), sp_model)
    truncate(path, 0.7)
    assert_input_error(run_cli("inspect", path), "t.gguf", "truncated or corrupt")


def test_unsupported_gguf_type(tmp_path, tiny_hf, sp_model):
    path = write_gguf(tmp_path / "iq.gguf", tiny_hf.state_dict(), sp_model, qtype="IQ4_NL")
    assert_input_error(run_cli("inspect", path), "iq.gguf", "IQ4_NL", "convert")


def test_incomplete_gguf(tmp_path, tiny_hf, sp_model):
    path = write_gguf(tmp_path / "x.gguf", tiny_hf.state_dict(), sp_model, skip="blk.2.ffn_up.weight")
    assert_input_error(run_cli("inspect", path), "x.gguf", "blk.2.ffn_up.weight")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path, tiny_hf, sp_model, bad):
    state = {k: v.clone() for k, v in tiny_hf.state_dict().items()}
    state["model.layers.1.mlp.up_proj.weight"][3, 5] = bad
    path = write_meta(tmp_path / "nan", state, 1, tokenizer=sp_model)
    assert_input_error(load_via_cli(path), "consolidated.00.pth", "layers.1.feed_forward.w3", "NaN or Inf")


def test_tokenizer_larger_than_embedding(tmp_path, tiny_hf, sp_model):
    import sentencepiece as spm

    from conftest import training_text

    spm.SentencePieceTrainer.train(sentence_iterator=iter(training_text()), model_prefix=str(tmp_path / "big"),
                                   vocab_size=500, model_type="bpe", byte_fallback=True, minloglevel=2)
    path = write_meta(tmp_path / "meta", tiny_hf.state_dict(), 1, tokenizer=tmp_path / "big.model")
    assert_input_error(run_cli("inspect", path), "tokenizer.model", "500 tokens", "384 rows")


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_with_code_is_refused(tmp_path, tiny_hf, sp_model):
    path = write_meta(tmp_path / "evil", tiny_hf.state_dict(), 1, tokenizer=sp_model)
    state = torch.load(path / "consolidated.00.pth", weights_only=True)
    state["payload"] = Boom()
    torch.save(state, path / "consolidated.00.pth")
    assert_input_error(run_cli("inspect", path), "consolidated.00.pth", "refusing", "pickle")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert_input_error(run_cli("inspect", tmp_path), str(tmp_path), "params.json")
    assert_input_error(run_cli("inspect", tmp_path / "nope"), "nope", "no such file")


def test_debug_flag_shows_traceback(meta2):
    (meta2 / "params.json").unlink()
    with pytest.raises(Exception, match="params.json"):
        from edgellama.errors import InputError  # noqa: F401

        run_cli("--debug", "inspect", meta2)


# Issue 15: malformed config.json / params.json give one line naming the file and the key, exit 2.
@pytest.mark.parametrize("edit, words", [
    (lambda c: c.pop("hidden_size"), ["'hidden_size'", "restore"]),
    (lambda c: c.update(num_hidden_layers="3"), ["num_hidden_layers", "not an integer"]),
    (lambda c: c.update(intermediate_size=352.0), ["intermediate_size", "not an integer"]),
    (lambda c: c.update(rope_theta="big"), ["rope_theta", "not a number"]),
    (lambda c: c.update(num_attention_heads=0), ["num_attention_heads", "positive"]),
    (lambda c: c.update(num_attention_heads=5), ["divide evenly"]),
])
def test_malformed_config_json(hf_sharded, edit, words):
    cfg = json.loads((hf_sharded / "config.json").read_text())
    edit(cfg)
    (hf_sharded / "config.json").write_text(json.dumps(cfg))
    assert_input_error(run_cli("inspect", hf_sharded), "config.json", *words)


@pytest.mark.parametrize("content, words", [
    ('{"hidden_size": 96,', ["not valid JSON"]),
    ("[1, 2, 3]", ["JSON list", "not an object"]),
    (b"\xff\xfe{}", ["not valid JSON"]),
])
def test_broken_config_json(hf_sharded, content, words):
    f = hf_sharded / "config.json"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_input_error(run_cli("inspect", hf_sharded), "config.json", *words)


def test_malformed_params_json(meta2):
    params = json.loads((meta2 / "params.json").read_text())
    params["n_layers"] = 2.5
    (meta2 / "params.json").write_text(json.dumps(params))
    assert_input_error(run_cli("inspect", meta2), "params.json", "n_layers", "not an integer")
    (meta2 / "params.json").write_text("[]")
    assert_input_error(run_cli("inspect", meta2), "params.json", "not an object")


def test_broken_shard_index(hf_sharded):
    (hf_sharded / "model.safetensors.index.json").write_text('{"metadata": {}}')
    assert_input_error(run_cli("inspect", hf_sharded), "model.safetensors.index.json", "weight_map")


def test_prompt_longer_than_the_models_context_in_generate(hf_sharded):
    # The tiny model's context (256) is under the default --max-context-len (2048).
    assert_input_error(run_cli("generate", "--model", hf_sharded, "--prompt", "word " * 400, "-n", "1"),
                       "--prompt", "context of 256 positions")


def test_kv_cache_that_cannot_fit_is_refused_with_the_numbers(hf_sharded):
    cfg = json.loads((hf_sharded / "config.json").read_text())
    cfg["max_position_embeddings"] = 100_000_000
    (hf_sharded / "config.json").write_text(json.dumps(cfg))
    result = run_cli("generate", "--model", hf_sharded, "--prompt", "hi", "-n", "1", "--max-context-len", "100000000")
    assert_input_error(result, "--force-memory", "KV cache of 100000000 positions 71.53 GiB", "available")


def test_internal_error_is_one_line_exit_3(hf_sharded, monkeypatch):
    """Anything that is not an InputError is our bug: one line, exit 3, never exit 1 (parity FAIL)."""
    import edgellama.formats

    def boom(_path):
        raise ZeroDivisionError("simulated bug")
    monkeypatch.setattr(edgellama.formats, "open_checkpoint", boom)
    code, _, err = run_cli("inspect", hf_sharded)
    assert code == 3, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "internal error: ZeroDivisionError: simulated bug" in err and "--debug" in err


@pytest.mark.parametrize("content, words", [(b"\x00\x01binary\x00" * 50, ["binary data"]),
                                            ("caf\xe9 au lait ".encode("latin-1") * 50, ["not UTF-8", "byte 3"])])
def test_text_that_is_not_utf8_is_refused_not_scored(hf_sharded, tmp_path, content, words):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    assert_input_error(run_cli("eval-ppl", "--model", hf_sharded, "--text", bad, "--ctx", "64"), "--text", "bad.txt", *words)
    assert_input_error(run_cli("export", "--model", hf_sharded, "--calibration", bad, "--max-seq-len", "32",
                               "--max-context-len", "64", "--out", tmp_path / "o"),
                       "--calibration", "bad.txt", *words)
    assert not (tmp_path / "o").exists()

