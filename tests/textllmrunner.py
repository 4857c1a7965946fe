"""Run an artifact through ExecuTorch's C++ LLM runner (TextLLMRunner, as Android's LlmModule does)
and print the generated text pieces, one per token, as a JSON list on the last line.
usage: python textllmrunner.py ARTIFACT_DIR PROMPT STEPS"""
import json
import sys

import executorch.kernels.quantized  # noqa: F401  (quantized embedding kernels)
from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (llama::update_cache, custom_sdpa)
from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner

folder, prompt, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
manifest = json.load(open(f"{folder}/manifest.json"))
runner = TextLLMRunner(f"{folder}/model.pte", f"{folder}/{manifest['tokenizer']['file']}")
pieces = []
config = GenerationConfig(echo=False, max_new_tokens=steps, temperature=0.0,
                          num_bos=1 if manifest["tokenizer"]["add_bos"] else 0, num_eos=0)
runner.generate(prompt, config, token_callback=pieces.append)
print()
print(json.dumps(pieces))
