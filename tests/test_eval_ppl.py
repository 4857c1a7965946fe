"""`edgellama eval-ppl`: llama.cpp-style perplexity of the fp32 or a quantized model."""
from __future__ import annotations

import json

import pytest

import edgellama
from checkpoints import write_meta
from conftest import run_cli
from edgellama.texts import evaluation_text
from test_bad_input import assert_input_error

TEXT = evaluation_text()


@pytest.fixture(scope="module")
def meta(tmp_path_factory, tiny_hf, sp_model):
    return write_meta(tmp_path_factory.mktemp("ppl"), tiny_hf.state_dict(), 2, tokenizer=sp_model)


def eval_json(*args):
    code, out, err = run_cli("eval-ppl", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_fp32_perplexity_equals_scoring_the_windows_directly(meta):
    from edgellama.evaluate import perplexity, text_windows

    record = eval_json("--model", meta, "--text", TEXT, "--ctx", "64", "--windows", "4")
    windows = text_windows(edgellama.load_tokenizer(meta), TEXT.read_text(), 64, 4)
    direct = perplexity(edgellama.load_model(meta), windows)
    assert record["windows"] == 4 and record["scored_tokens"] == direct.tokens == 4 * 32
    assert record["ppl"] == pytest.approx(direct.ppl, rel=1e-6)


def test_quantized_perplexity_reports_agreement_and_differs_from_fp32(meta):
    fp32 = eval_json("--model", meta, "--text", TEXT, "--ctx", "64", "--windows", "4")
    q = eval_json("--model", meta, "--text", TEXT, "--ctx", "64", "--windows", "4", "--quant", "8da4w",
                  "--quant-algo", "rtn", "--compare-fp32")
    assert q["quantization"]["scheme"] == "8da4w" and q["ppl"] != fp32["ppl"]
    assert 0.0 < q["top1_agreement_fp32"] <= 1.0


def test_bad_inputs_name_the_option(meta, tmp_path):
    assert_input_error(run_cli("eval-ppl", "--model", meta, "--text", tmp_path / "none.txt"), "none.txt", "--text")
    short = tmp_path / "short.txt"
    short.write_text("too short")
    assert_input_error(run_cli("eval-ppl", "--model", meta, "--text", short), "short.txt", "--ctx")
    assert_input_error(run_cli("eval-ppl", "--model", meta, "--text", TEXT, "--quant", "3w"), "--quant", "8da4w")
    assert_input_error(run_cli("eval-ppl", "--model", meta, "--text", TEXT, "--quant", "8da4w", "--group-size", "256"),
                       "--group-size 256", "use")


def test_default_texts_ship_in_the_package():
    """The calibration and evaluation text the defaults use are package data (with their licence),
    found through the package, so a pip-installed edgellama or a lone clone has them."""
    from edgellama import texts

    for path in (texts.calibration_text(), texts.evaluation_text()):
        assert path.is_file() and path.stat().st_size > 1_000_000, path
    assert "CC BY-SA 3.0" in (texts.calibration_text().parent / "README.md").read_text()
    assert texts.resolve(texts.reference(texts.calibration_text())) == texts.calibration_text()
    assert texts.reference(texts.calibration_text()) == "edgellama:wikitext-2/valid.txt"
