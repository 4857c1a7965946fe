"""ExecuTorch's own C++ LLM runner (TextLLMRunner, the runner behind Android's LlmModule) on an
artifact folder. It prints the generated text to stdout itself and hands back text pieces and stats."""
from __future__ import annotations

import json
from pathlib import Path


def run_textllmrunner(folder: str | Path, prompt: str, max_new_tokens: int, temperature: float = 0.0):
    """-> (text pieces, one per generated token; the runner's stats as a dict)."""
    from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner

    from edgellama.export.artifact import read_manifest

    from .executorch_session import register_kernels

    register_kernels()
    folder = Path(folder)
    manifest = read_manifest(folder)
    # The C++ runner aborts the process on a token id past the embedding, so the sizes are compared
    # first (the same check open_artifact makes).
    from .open import artifact_tokenizer, check_vocab

    check_vocab(artifact_tokenizer(folder, manifest), manifest["runtime"]["get_vocab_size"],
                folder / manifest["tokenizer"]["file"])
    runner = TextLLMRunner(str(folder / manifest["runtime"]["model_file"]), str(folder / manifest["tokenizer"]["file"]))
    pieces, stats = [], {}
    config = GenerationConfig(echo=False, max_new_tokens=max_new_tokens, temperature=temperature,
                              num_bos=1 if manifest["tokenizer"]["add_bos"] else 0, num_eos=0)
    runner.generate(prompt, config, token_callback=pieces.append,
                    stats_callback=lambda s: stats.update(json.loads(s.to_json_string())))
    return pieces, stats
