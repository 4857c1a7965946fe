"""Issue 4, acceptance 1: the embedded SmolLM2 exported with the default recipe generates, through
ExecuTorch's TextLLMRunner, the greedy tokens of the eager model quantized the same way.

Marked slow (the export lowers 30 layers). It FAILS, for a reason now understood: the twin's linears
compute as XNNPACK's do bit for bit (runtime_py/xnnpack_twin.py), but RMSNorm, SiLU and SDPA round
differently in the last bit, and with dynamic int8 activations a 1e-7 difference that moves one int8
code grows to ~0.1 on the logits; greedy texts part after 8-15 tokens (teacher-forced top-1 on the
.pte's own tokens: 0.985). Equality would need every float op emulated, on x86 only. Kept as the
literal requirement; `edgellama parity` holds the measured gap instead."""
from __future__ import annotations

import pytest

from conftest import run_cli
from test_export_xnnpack import eager_greedy, runner_pieces

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_pte(tmp_path_factory):
    out = tmp_path_factory.mktemp("smol") / "smollm2-8da4w"
    code, _, err = run_cli("export", "--recipe", "xnnpack-8da4w", "--out", out)
    assert code == 0, err
    return out


@pytest.mark.parametrize("prompt", ["The capital of France is", "Once upon a time, in a small village by the sea,", None])
def test_runner_greedy_64_equals_eager_twin(smollm2_pte, prompt):
    from edgellama.runtime.open import open_artifact

    session, manifest = open_artifact(smollm2_pte)
    tok = session.tokenizer
    text = tok.chat_prompt("What is the capital of France?") if prompt is None else prompt
    expected = eager_greedy(smollm2_pte, tok.encode(text), 64, eos_ids=manifest["runtime"]["get_eos_ids"])
    assert "".join(runner_pieces(smollm2_pte, text, 64)) == tok.decode(expected)
