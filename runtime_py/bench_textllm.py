"""Timing a .pte through ExecuTorch's TextLLMRunner, the C++ runner Android's LlmModule wraps: the speed an
app embedding the .pte gets. Runs inside the bench worker process (bench_worker.py)."""
from __future__ import annotations

import time
from pathlib import Path


class TextLLMBench:
    runner = "TextLLMRunner"
    # GenerationConfig has no ignore-EOS setting (executorch 1.5.1): a run can end early, so the bench
    # picks a prompt passage the greedy model does not stop in (bench.py).
    stops_at_eos = True

    @staticmethod
    def spec(folder: Path, manifest: dict, threads: int) -> dict:
        return {"model_file": str(Path(folder) / manifest["runtime"]["model_file"]),
                "tokenizer_file": str(Path(folder) / manifest["tokenizer"]["file"]),
                "num_bos": 1 if manifest["tokenizer"]["add_bos"] else 0, "threads": threads}

    def __init__(self, spec: dict):
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        from .executorch_session import register_kernels

        if spec["threads"]:
            _unsafe_reset_threadpool(spec["threads"])
        register_kernels()
        self.spec = spec

    def load(self) -> float:
        """Seconds to construct the runner and load the program. The runner loads lazily on its first
        generate, which reports the load's own span in its stats; a one-token generation triggers it."""
        from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner

        t0 = time.perf_counter()
        self.runner = TextLLMRunner(self.spec["model_file"], self.spec["tokenizer_file"])
        built = time.perf_counter() - t0
        stats = {}
        self.runner.generate("a", GenerationConfig(echo=False, max_new_tokens=1, temperature=0.0, num_bos=0),
                             stats_callback=lambda s: stats.update(model_load_ms=s.model_load_end_ms - s.model_load_start_ms))
        return built + stats["model_load_ms"] / 1000

    def threads(self) -> int:
        from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count

        return _threadpool_get_thread_count()

    def run(self, text: str, ids: list[int], gen_len: int) -> dict:
        """One greedy generation from an empty cache. Times come from our clock at each token the
        runner hands back (it hands each one over as soon as it is sampled)."""
        from executorch.extension.llm.runner import GenerationConfig

        self.runner.reset()
        stamps, stats = [], {}
        config = GenerationConfig(echo=False, max_new_tokens=gen_len, temperature=0.0, num_bos=self.spec["num_bos"],
                                  num_eos=0)
        t0 = time.perf_counter()
        self.runner.generate(text, config, token_callback=lambda _piece: stamps.append(time.perf_counter()),
                             stats_callback=lambda s: stats.update(prompt_tokens=s.num_prompt_tokens,
                                                                   generated_tokens=s.num_generated_tokens))
        # The runner's stats count the tokens of its decode loop, not the first one that prefill makes.
        if len(stamps) == gen_len and stats["generated_tokens"] != gen_len - 1:
            raise RuntimeError(f"TextLLMRunner handed back {len(stamps)} tokens but counted {stats['generated_tokens']} "
                               f"after the first")
        return {"prompt_tokens": stats["prompt_tokens"], "generated_tokens": len(stamps),
                "ttft_s": stamps[0] - t0 if stamps else None, "decode_s": stamps[-1] - stamps[0] if stamps else None}
