"""ExecuTorch export of a tiny Llama 2 (Meta format, 2 shards, sentencepiece): the .pte runs in
ExecuTorch's own LLM runner and generates the eager quantized model's greedy tokens."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

RUNNER = Path(__file__).with_name("textllmrunner.py")


def runner_pieces(artifact: Path, prompt: str, steps: int) -> list[str]:
    """Text pieces from executorch.extension.llm.runner.TextLLMRunner, one per generated token,
    in a fresh process (the C++ runner prints to stdout itself)."""
    res = subprocess.run([sys.executable, str(RUNNER), str(artifact), prompt, str(steps)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def eager_greedy(artifact: Path, prompt_ids: list[int], steps: int, eos_ids=()) -> list[int]:
    from edgellama.runtime.generate import generate
    from edgellama.runtime.session import EagerSession
    from edgellama.runtime.twin import twin_for

    manifest = json.loads((artifact / "manifest.json").read_text())
    model = twin_for(manifest)
    session = EagerSession(model, None, manifest["runtime"]["get_max_context_len"])
    return generate(session, prompt_ids, steps, eos_ids=list(eos_ids)).tokens


def sentencepiece_pieces(tok, token: int) -> set[str]:
    """What the runner's sentencepiece decoder may print for one token: the piece with '▁' as a
    space; a byte-fallback piece <0xNN> as that byte when it is ASCII (seen: <0x0A> -> newline),
    else as its <0xNN> text."""
    piece = tok.id_to_piece(token).replace("\u2581", " ")
    if tok.sp.is_byte(token) and int(piece[3:5], 16) < 0x80:
        return {piece, chr(int(piece[3:5], 16))}
    return {piece}


def assert_same_tokens(tok, pieces: list[str], expected: list[int], after: int):
    """The runner emits one text piece per token, so positions align. Every ordinary token's piece
    must match; control tokens (BOS/EOS/UNK, which a random model may emit) are rendered by the C++
    decoder in its own way and carry no text, so only their position is checked. After BOS the
    runner drops the piece's leading space."""
    assert len(pieces) == len(expected)
    prev = after
    for i, (piece, token) in enumerate(zip(pieces, expected)):
        if not tok.sp.is_control(token) and not tok.sp.is_unknown(token):
            wanted = {w.lstrip(" ") if prev == tok.bos_id else w for w in sentencepiece_pieces(tok, token)}
            assert piece in wanted, (i, token, piece, wanted)
        prev = token


def pte_greedy(artifact: Path, prompt_ids: list[int], steps: int) -> list[int]:
    from edgellama.runtime.generate import generate
    from edgellama.runtime.open import open_artifact

    session, _ = open_artifact(artifact)
    return generate(session, prompt_ids, steps, eos_ids=[]).tokens


@pytest.mark.parametrize("prompt", ["The tower is", "In 1998 , the team", None])
def test_textllmrunner_generates_the_pte_greedy_tokens(tiny_pte, prompt):
    """ExecuTorch's C++ runner and our Python session run the same kernels: same 64 tokens."""
    from edgellama.runtime.open import open_artifact

    tok = open_artifact(tiny_pte)[0].tokenizer
    text = tok.chat_prompt("Tell me about the river.") if prompt is None else prompt
    ids = tok.encode(text)
    assert_same_tokens(tok, runner_pieces(tiny_pte, text, 64), pte_greedy(tiny_pte, ids, 64), after=ids[-1])


def test_pte_logits_match_eager_twin(tiny_pte):
    """The .pte against the eager model quantized with the same spec, teacher-forced over a prompt
    (the default .pte returns the last position's logits only, so the rows come one step at a
    time, as parity reads them), then decode steps. The twin's
    dynamically quantized linears compute as XNNPACK's kernels do, bit for bit on x86
    (runtime/xnnpack_twin.py), but the float ops between them (RMSNorm, SiLU, SDPA) round
    differently in the last bit, and a 1e-7 difference that moves one int8 activation code shows
    up as ~0.1 on the logits from there on (measured: 17 of 100 rows differ by more than 1e-4,
    up to 0.14; the first 13 rows agree to 2e-6)."""
    import numpy as np

    from edgellama.runtime.open import open_artifact
    from edgellama.runtime.parity import prefill_rows
    from edgellama.runtime.session import EagerSession
    from edgellama.runtime.twin import twin_for

    session, manifest = open_artifact(tiny_pte)
    eager = EagerSession(twin_for(manifest), None, 160)
    ids = session.tokenizer.encode("The tower is 324 metres tall , about the same height as an 81 @-@ storey "
                                   "building , and the tallest structure in Paris . Its base is square , measuring "
                                   "125 metres on each side .")[:100]
    a, b = prefill_rows(session, ids), prefill_rows(eager, ids)
    assert len(ids) > 64 and a.shape == b.shape
    per_row = np.abs(a - b).max(-1)
    assert per_row[:8].max() < 1e-5 and np.median(per_row) < 1e-5
    assert (a.argmax(-1) == b.argmax(-1)).mean() >= 0.95
    steps = np.array([np.abs(session.decode(t) - eager.decode(t)).max() for t in (5, 17, 300, 42, 99)])
    assert steps.max() < 0.5


def test_last_position_logits_only_by_default(tiny_pte, tiny_meta, tmp_path):
    """The default .pte returns the last position's logits (the head runs on one row per forward
    call); `--logits all` returns every row, and its last row is the same."""
    import numpy as np

    from edgellama.runtime.open import open_artifact

    out = tmp_path / "tiny-all"
    code, _, err = run_cli("export", "--model", tiny_meta, "--recipe", "xnnpack-8da4w", "--max-seq-len", "32",
                           "--max-context-len", "160", "--logits", "all", "--out", out)
    assert code == 0, err
    last, manifest = open_artifact(tiny_pte)
    every, every_manifest = open_artifact(out)
    assert manifest["options"]["logits"] == "last"
    # picking the last row adds no partition (a bmm with a one-hot row, which XNNPACK takes)
    calls = [m["runtime"]["delegation"]["delegate_calls"] for m in (manifest, every_manifest)]
    assert calls[0] == calls[1]
    ids = last.tokenizer.encode("The tower is 324 metres tall , about the same height as an 81 @-@ storey building")
    assert len(ids) > 32  # more than one chunk: one row per chunk
    rows_last, rows_every = last.prefill(ids), every.prefill(ids)
    assert rows_last.shape == (-(-len(ids) // 32), 384) and rows_every.shape == (len(ids), 384)
    assert np.abs(rows_last[-1] - rows_every[-1]).max() < 1e-5
    assert np.abs(last.decode(7) - every.decode(7)).max() < 1e-5


def test_runner_metadata(tiny_pte, sp_model):
    from edgellama.runtime.open import open_artifact

    session, manifest = open_artifact(tiny_pte)
    assert session.constant("get_max_seq_len") == [32]
    assert session.constant("get_max_context_len") == [160]
    assert session.constant("get_eos_ids") == [[2]] or session.constant("get_eos_ids") == [2]
    assert session.constant("get_bos_id") == [1]
    assert session.constant("get_vocab_size") == [384]
    assert session.constant("get_n_layers") == [3]
    assert session.constant("use_kv_cache") == [True] or session.constant("use_kv_cache") == [1]
    assert (tiny_pte / "tokenizer.model").read_bytes() == sp_model.read_bytes()
    assert manifest["quantization"]["scheme"] == "8da4w" and manifest["recipe"] == "xnnpack-8da4w"
    assert manifest["quantization"]["algo"] == "scale-search" and manifest["calibration"]["windows"] >= 1
    assert set(manifest["files"]) == {"model.pte", "tokenizer.model"}
    assert manifest["packages"]["executorch"] == "1.5.1"


def test_every_transformer_linear_is_delegated(tiny_pte):
    manifest = json.loads((tiny_pte / "manifest.json").read_text())
    delegation = manifest["runtime"]["delegation"]
    assert delegation["undelegated_matmuls"] == []
    # every layer's q,k,v,o,w1,w2,w3, the head, the RoPE rotations written as linears, and the bmm
    # that picks the last row for the head
    assert delegation["delegated_linears"] == 3 * 7 + 1 + 3 * 2 + 1


def test_manifest_hash_mismatch_is_refused(tiny_pte, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_pte, copy)
    data = bytearray((copy / "model.pte").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.pte").write_bytes(bytes(data))
    code, _, err = run_cli("run", copy, "--prompt", "hi", "-n", "2")
    assert code == 2 and "model.pte" in err and "sha256" in err


def test_small_recipe_int4_head_runs_in_the_runner(tiny_meta, tmp_path):
    """xnnpack-8da4w-small (int4 output head, no 8-bit linears): the head is delegated as an int4
    linear, and the C++ runner generates the Python session's greedy tokens."""
    from edgellama.runtime.open import open_artifact

    out = tmp_path / "tiny-small"
    code, _, err = run_cli("export", "--model", tiny_meta, "--recipe", "xnnpack-8da4w-small", "--max-seq-len", "32",
                           "--max-context-len", "160", "--out", out)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["quantization"]["output"] == "8da4w" and manifest["quantization"]["keep_8bit"] == []
    assert manifest["runtime"]["delegation"]["delegated_linears"] == 3 * 7 + 1 + 3 * 2 + 1  # (+ last-row bmm)
    tok = open_artifact(out)[0].tokenizer
    ids = tok.encode("The tower is")
    assert_same_tokens(tok, runner_pieces(out, "The tower is", 32), pte_greedy(out, ids, 32), after=ids[-1])
