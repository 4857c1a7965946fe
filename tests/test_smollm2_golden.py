"""Issue 15, item 8: the regression guard for the default export. TextLLMRunner's greedy output on the
SmolLM2 default export, frozen in tests/golden/ with the hash of the recipe it belongs to.

The runner hands out one text piece per generated token, not ids; the ids are those of edgellama's
own greedy loop on the same .pte (ExecuTorchSession), and the test checks that they decode to exactly
the runner's pieces, so both runtimes are held to the recording. Re-record (after a deliberate
change of the export or recipe) with:  .venv/bin/python tests/test_smollm2_golden.py --record"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "smollm2-xnnpack-8da4w.json"
RECIPE = "xnnpack-8da4w"
PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,"]
STEPS = 32


def recipe_sha256() -> str:
    from edgellama.export.options import RECIPES

    return hashlib.sha256((RECIPES / f"{RECIPE}.toml").read_bytes()).hexdigest()


def measure(artifact: Path) -> dict:
    from edgellama.runtime.generate import generate
    from edgellama.runtime.open import open_artifact
    from test_export_xnnpack import runner_pieces

    session, manifest = open_artifact(artifact)
    out = []
    for prompt in PROMPTS:
        session.reset()
        ids = generate(session, session.tokenizer.encode(prompt), STEPS, eos_ids=manifest["runtime"]["get_eos_ids"]).tokens
        out.append({"prompt": prompt, "token_ids": ids, "runner_pieces": runner_pieces(artifact, prompt, STEPS)})
    return {"recipe": RECIPE, "recipe_sha256": recipe_sha256(), "max_new_tokens": STEPS,
            "model_sha256": manifest["files"][manifest["runtime"]["model_file"]]["sha256"], "prompts": out}


@pytest.mark.slow
def test_runner_greedy_tokens_equal_the_golden_recording(smollm2_pte):
    golden = json.loads(GOLDEN.read_text())
    assert golden["recipe_sha256"] == recipe_sha256(), (
        f"{RECIPE}.toml changed since {GOLDEN.name} was recorded; re-record it (see this module's docstring)")
    now = measure(smollm2_pte)
    for want, got in zip(golden["prompts"], now["prompts"]):
        assert got["runner_pieces"] == want["runner_pieces"], want["prompt"]
        assert got["token_ids"] == want["token_ids"], want["prompt"]


@pytest.mark.slow
def test_golden_ids_are_the_runners_tokens(smollm2_pte):
    """The recorded ids decode, one by one, to the pieces TextLLMRunner printed (with the export's
    tokenizer: the fixture makes the export when this test runs alone)."""
    from tokenizers import Tokenizer

    golden = json.loads(GOLDEN.read_text())
    tok = Tokenizer.from_file(str(smollm2_pte / "tokenizer.json"))
    for p in golden["prompts"]:
        assert len(p["token_ids"]) == len(p["runner_pieces"]) > 0
        assert "".join(p["runner_pieces"]) == tok.decode(p["token_ids"])


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import SMOLLM2_PTE

    GOLDEN.write_text(json.dumps(measure(SMOLLM2_PTE), indent=1) + "\n")
    print(f"recorded {GOLDEN}")
