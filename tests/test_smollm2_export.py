"""Issue 4, acceptance 1, as written: the embedded SmolLM2 exported with the default recipe generates,
through ExecuTorch's TextLLMRunner, the greedy tokens of the eager model quantized the same way.

It does not hold, for a reason understood and measured: the twin's linears compute as XNNPACK's do bit
for bit (runtime_py/xnnpack_twin.py), but RMSNorm, SiLU and SDPA round differently in the last bit,
and with dynamic int8 activations a 1e-7 difference that moves one int8 code grows to ~0.1 on the
logits, so greedy texts part after some tokens (see REASON). Equality would need every float op emulated,
on x86 only. Kept as an xfail(strict=True): if the gap ever closes, the xpass says so. The
regression guard is tests/test_smollm2_golden.py; `edgellama parity` holds the measured gap."""
from __future__ import annotations

import pytest

from test_export_xnnpack import eager_greedy, runner_pieces

PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,", None]
REASON = ("measured 2026-11-26 on the default SmolLM2 export: TextLLMRunner's greedy text leaves the eager "
          "twin's after 8-15 tokens (teacher-forced top-1 0.97-0.985 on the .pte's own tokens; parity vs twin "
          "top-1 0.922): RMSNorm/SiLU/SDPA round differently in the last bit and dynamic int8 activations "
          "amplify it to ~0.1 on the logits")


@pytest.mark.slow
@pytest.mark.xfail(strict=True, raises=AssertionError, reason=REASON)  # only the inequality is expected
def test_runner_greedy_64_equals_eager_twin(smollm2_pte):
    from edgellama.runtime.open import open_artifact

    session, manifest = open_artifact(smollm2_pte)
    tok = session.tokenizer
    for prompt in PROMPTS:
        text = tok.chat_prompt("What is the capital of France?") if prompt is None else prompt
        expected = eager_greedy(smollm2_pte, tok.encode(text), 64, eos_ids=manifest["runtime"]["get_eos_ids"])
        assert "".join(runner_pieces(smollm2_pte, text, 64)) == tok.decode(expected), text
