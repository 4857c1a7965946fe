"""`edgellama bench` on the tiny model's .pte (TextLLMRunner) and ONNX (onnxruntime-genai) exports: the
documented keys, exact counts, rates that follow from their counts and times; `--compare`'s rotations
and ratios; bad input as one line with exit 2 before any worker starts."""
from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli

RESULT_KEYS = {"artifact", "runtime", "runner", "recipe", "quantization", "artifact_bytes", "model_bytes", "threads",
               "load_s", "ttft_s", "prefill_tok_s", "decode_tok_s", "peak_rss_bytes", "runs"}
RUN_KEYS = {"prompt_tokens", "generated_tokens", "decode_tokens", "ttft_s", "decode_s", "prefill_tok_s",
            "decode_tok_s", "rotation"}
# the tiny exports: 32 tokens per forward call, 160 positions; 40 prompt tokens take two prefill chunks
SMALL = ("--prompt-len", "40", "--gen-len", "12", "--threads", "1")


@pytest.fixture(scope="module", autouse=True)
def machine_cache(tmp_path_factory):
    """The measured memory bandwidth is cached per user; the tests keep theirs out of the home folder."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old


def bench_json(*args) -> dict:
    code, out, err = run_cli("bench", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def check_result(r: dict, prompt_len: int, gen_len: int, runs: int, artifact) -> None:
    assert set(r) == RESULT_KEYS
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert r["artifact_bytes"] == sum(f["bytes"] for f in manifest["files"].values())
    assert r["threads"] == 1
    assert len(r["runs"]) == runs
    for run in r["runs"]:
        assert set(run) == RUN_KEYS
        assert run["prompt_tokens"] == prompt_len and run["generated_tokens"] == gen_len
        assert run["decode_tokens"] == gen_len - 1  # the first new token comes out of the prompt's pass
        assert run["decode_tok_s"] == pytest.approx(run["decode_tokens"] / run["decode_s"])
        assert run["prefill_tok_s"] == pytest.approx(run["prompt_tokens"] / run["ttft_s"])
    for key in ("ttft_s", "prefill_tok_s", "decode_tok_s"):
        values = sorted(run[key] for run in r["runs"])
        assert r[key]["min"] == values[0] and r[key]["max"] == values[-1]
        assert values[0] <= r[key]["median"] <= values[-1]
    assert r["load_s"]["median"] > 0 and r["peak_rss_bytes"] > 50 * 2**20


@pytest.mark.parametrize("which,runner", [("pte", "TextLLMRunner"), ("onnx", "onnxruntime-genai")])
def test_bench_json_counts_and_rates(tiny_pte, tiny_onnx, tmp_path, which, runner):
    artifact = {"pte": tiny_pte, "onnx": tiny_onnx}[which]
    out = tmp_path / "bench.json"
    record = bench_json(artifact, *SMALL, "--runs", "3", "--out", out)
    assert set(record) == {"format_version", "machine", "settings", "load_average", "results", "ratios"}
    assert json.loads(out.read_text()) == record
    m = record["machine"]
    assert m["kind"] == "host" and m["cores"] == os.cpu_count() and m["memory_bandwidth_gb_s"] > 0
    assert record["settings"]["prompt_len"] == 40 and record["ratios"] == []
    (r,) = record["results"]
    assert r["runner"] == runner
    check_result(r, 40, 12, 3, artifact)


def test_compare_rotates_the_load_order(tiny_pte, tiny_onnx):
    record = bench_json("--compare", tiny_pte, tiny_onnx, *SMALL, "--runs", "2")
    assert record["settings"]["rotations"] == 2 and record["settings"]["idle_gap_s"] > 0
    pte, onnx = record["results"]
    for r, artifact in ((pte, tiny_pte), (onnx, tiny_onnx)):
        check_result(r, 40, 12, 4, artifact)  # 2 runs in each of the 2 load orders
        assert [run["rotation"] for run in r["runs"]] == [1, 1, 2, 2]
        assert len(r["runs"]) == 4
    (ratio,) = record["ratios"]
    assert ratio["to"] == str(tiny_pte) and ratio["artifact"] == str(tiny_onnx)
    assert ratio["decode_tok_s"] == pytest.approx(onnx["decode_tok_s"]["median"] / pte["decode_tok_s"]["median"])


def test_the_table_names_the_machine(tiny_onnx):
    code, out, err = run_cli("bench", tiny_onnx, *SMALL, "--runs", "1", "--warmup", "0")
    assert code == 0, err
    assert "decode tok/s" in out and "memory bandwidth" in out and "cores" in out


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (("--prompt-len", "150", "--gen-len", "20"), "--prompt-len + --gen-len = 170 positions exceed the context"),
    (("--out", "."), "--out .: is a folder"),
    (("--runtime", "onnxruntime"), "--runtime: only with --device"),
])
def test_bad_options_are_one_line(tiny_pte, args, message):
    assert message in one_line_error(*run_cli("bench", tiny_pte, *args)[::2])


def test_short_prompt_file_is_one_line(tiny_pte, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("A few words only.\n")
    line = one_line_error(*run_cli("bench", tiny_pte, "--prompt-file", short, "--prompt-len", "40", "--gen-len", "12")[::2])
    assert "--prompt-file" in line and "fewer than --prompt-len 40" in line


def test_several_artifacts_need_compare(tiny_pte, tiny_onnx):
    assert "add --compare" in one_line_error(*run_cli("bench", tiny_pte, tiny_onnx)[::2])


def test_a_worker_runs_in_the_interpreter_its_spec_names(tiny_onnx, tmp_path):
    """A peer whose runtime lives in a venv of its own (llama.cpp) names that venv's python in its spec."""
    import sys

    from edgellama.runtime.bench import Settings, artifact_subject, measure

    marker = tmp_path / "started"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" > {marker}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    subject = artifact_subject(tiny_onnx, 1, 52, force_memory=False)
    subject.spec["python"] = str(python)
    (r,) = measure([subject], Settings(40, 12, 1, 0, 1, None))["results"]
    assert "edgellama.runtime.bench_worker" in marker.read_text()
    assert r["runs"][0]["generated_tokens"] == 12
