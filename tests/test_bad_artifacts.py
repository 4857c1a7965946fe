"""Issue 15: a damaged or tampered artifact is refused with one line naming the file, exit 2, before
any model runs: malformed manifests, manifests that list fewer files than the runtime loads, model
files damaged behind a re-hashed manifest, a tokenizer larger than the model's vocabulary."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import run_cli
from test_bad_input import assert_input_error


def copy_of(artifact, tmp_path):
    dst = tmp_path / artifact.name
    shutil.copytree(artifact, dst)
    return dst


def manifest_of(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def rehash(folder) -> None:
    """What a tamperer does after changing a file: make the manifest consistent again."""
    from edgellama.export.artifact import sha256

    m = manifest_of(folder)
    m["files"] = {n: {"bytes": (folder / n).stat().st_size, "sha256": sha256(folder / n)} for n in m["files"]}
    (folder / "manifest.json").write_text(json.dumps(m))


def run_art(folder, *extra):
    return run_cli("run", folder, "--prompt", "The tower is", "-n", "2", *extra)


def flip_byte(path, at: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("content, words", [
    ("{not json", ["not valid JSON"]),
    ("", ["not valid JSON"]),
    ("[]", ["JSON list"]),
    ("{}", ["no 'runtime' section"]),
])
def test_malformed_manifest(tiny_pte, tmp_path, content, words):
    art = copy_of(tiny_pte, tmp_path)
    (art / "manifest.json").write_text(content)
    assert_input_error(run_art(art), "manifest.json", "export it again", *words)


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.pop("files"), ["lists no files"]),
    (lambda m: m.update(files={}), ["lists no files"]),
    (lambda m: m["files"].pop("model.pte"), ["'model.pte'", "does not list it"]),
    (lambda m: m["files"].pop(m["tokenizer"]["file"]), ["'tokenizer.model'", "does not list it"]),
    (lambda m: m["files"]["model.pte"].pop("sha256"), ["model.pte has no sha256"]),
    (lambda m: m["files"].update({"../x": m["files"]["model.pte"]}), ["'../x'", "not a file inside"]),
    # a target with several model files (e.g. one per graph) names them in runtime.model_files
    (lambda m: m["runtime"].update(model_files=["graph_1.bin"]), ["'graph_1.bin'", "does not list it"]),
])
def test_manifest_listing_fewer_files_is_refused(tiny_pte, tmp_path, edit, words):
    """The integrity bypass of issue 15: drop "files" and flip a byte in model.pte."""
    art = copy_of(tiny_pte, tmp_path)
    flip_byte(art / "model.pte")
    m = manifest_of(art)
    edit(m)
    (art / "manifest.json").write_text(json.dumps(m))
    assert_input_error(run_art(art), "manifest.json", *words)
    assert_input_error(run_cli("parity", art), "manifest.json", *words)


def test_onnx_data_file_must_be_listed(tiny_onnx, tmp_path):
    art = copy_of(tiny_onnx, tmp_path)
    m = manifest_of(art)
    del m["files"]["model.onnx.data"]
    (art / "manifest.json").write_text(json.dumps(m))
    assert_input_error(run_art(art), "manifest.json", "'model.onnx.data'", "does not list it")


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_damaged_pte_behind_a_rehashed_manifest(tiny_pte, tmp_path, damage):
    art = copy_of(tiny_pte, tmp_path)
    data = (art / "model.pte").read_bytes()
    (art / "model.pte").write_bytes(data[: len(data) // 2] if damage == "truncate" else b"")
    rehash(art)
    assert_input_error(run_art(art), "model.pte", "ExecuTorch cannot load it", "export the artifact again")


@pytest.mark.parametrize("name, damage", [("model.onnx.data", "truncate"), ("model.onnx", "garbage")])
def test_damaged_onnx_behind_a_rehashed_manifest(tiny_onnx, tmp_path, name, damage):
    art = copy_of(tiny_onnx, tmp_path)
    data = (art / name).read_bytes()
    (art / name).write_bytes(data[: len(data) // 3] if damage == "truncate" else bytes(range(256)) * 8)
    rehash(art)
    assert_input_error(run_art(art), "model.onnx", "ONNX Runtime cannot load it", "export the artifact again")


def test_tokenizer_larger_than_the_models_vocabulary(tiny_pte, tmp_path):
    """Was a native abort (rc 134) in ExecuTorch's embedding_byte."""
    import sentencepiece as spm

    from conftest import training_text

    spm.SentencePieceTrainer.train(sentence_iterator=iter(training_text()), model_prefix=str(tmp_path / "big"),
                                   vocab_size=500, model_type="bpe", byte_fallback=True, minloglevel=2)
    art = copy_of(tiny_pte, tmp_path)
    shutil.copy(tmp_path / "big.model", art / "tokenizer.model")
    rehash(art)
    assert_input_error(run_art(art), "tokenizer.model", "500 tokens", "vocabulary is 384")
    # ... even when the manifest lies about the vocabulary: the .pte's own get_vocab_size decides
    m = manifest_of(art)
    m["runtime"]["get_vocab_size"] = 1000
    (art / "manifest.json").write_text(json.dumps(m))
    assert_input_error(run_art(art), "tokenizer.model", "500 tokens", "vocabulary is 384")


@pytest.mark.parametrize("fixture", ["tiny_pte", "tiny_onnx"])
def test_prompt_longer_than_the_artifacts_context(request, fixture):
    art = request.getfixturevalue(fixture)
    assert_input_error(run_cli("run", art, "--prompt", "word " * 300, "-n", "1"),
                       "--prompt", "context of 160 positions", "--max-context-len")


def test_parity_report_naming_a_file_is_refused_before_the_run(tiny_pte, tmp_path, monkeypatch):
    import edgellama.runtime.open as opening

    def no_loading(*_a, **_k):
        raise AssertionError("a model was loaded before --report was checked")
    monkeypatch.setattr(opening, "open_artifact", no_loading)
    (tmp_path / "report.txt").write_text("mine")
    assert_input_error(run_cli("parity", tiny_pte, "--report", tmp_path / "report.txt"), "--report", "is a file")
    assert_input_error(run_cli("parity", tiny_pte, "--report", tmp_path / "report.txt" / "sub"), "--report",
                       "is a file, so nothing can be created under it")
    assert (tmp_path / "report.txt").read_text() == "mine"


def test_artifact_that_cannot_fit_in_memory_is_refused_before_loading(tiny_pte, tmp_path):
    """The manifest's context decides the KV cache; a huge one is refused with the numbers
    (the .pte itself is not consulted: the check comes before anything is loaded)."""
    art = copy_of(tiny_pte, tmp_path)
    m = manifest_of(art)
    m["options"]["max_context_len"] = 10**9
    (art / "manifest.json").write_text(json.dumps(m))
    assert_input_error(run_art(art), "not enough memory", "KV cache of 1000000000 positions", "--force-memory")
    assert_input_error(run_cli("parity", art), "not enough memory", "--force-memory")


def test_parity_against_a_reference_of_other_dimensions_is_refused(tiny_pte, tmp_path, sp_model):
    """Was a FAIL (exit 1), which says "the artifact is worse", not "wrong reference"."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from checkpoints import write_hf

    cfg = LlamaConfig(vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    other = write_hf(tmp_path / "other", LlamaForCausalLM(cfg).eval(), tokenizer=sp_model)
    assert_input_error(run_cli("parity", tiny_pte, "--reference", other), "other", "dim 64", "dim 96", "--reference")
