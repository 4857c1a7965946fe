"""Timing an ONNX folder through onnxruntime-genai, the runtime the Android app and ONNX Runtime's own
LLM samples use. Runs inside the bench worker process (bench_worker.py). Torch-free."""
from __future__ import annotations

import json
import time
from pathlib import Path


class GenAIBench:
    runner = "onnxruntime-genai"
    stops_at_eos = False  # min_length = the whole length masks EOS until the last token

    @staticmethod
    def spec(folder: Path, manifest: dict, threads: int) -> dict:
        return {"folder": str(folder), "threads": threads}

    def __init__(self, spec: dict):
        import psutil

        self.folder = spec["folder"]
        # Set always, so the count reported is the one used: 0 means ONNX Runtime's own default, one
        # thread per physical core.
        self.n_threads = spec["threads"] or psutil.cpu_count(logical=False) or 1

    def load(self) -> float:
        import onnxruntime_genai as og

        t0 = time.perf_counter()
        config = og.Config(self.folder)
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": self.n_threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        return time.perf_counter() - t0

    def threads(self) -> int:
        return self.n_threads

    def run(self, text: str, ids: list[int], gen_len: int) -> dict:
        import onnxruntime_genai as og

        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=len(ids) + gen_len, min_length=len(ids) + gen_len)
        generator = og.Generator(self.model, params)
        stamps = []
        t0 = time.perf_counter()
        generator.append_tokens(ids)  # the prompt's forward pass; its last logits give the first token
        while len(stamps) < gen_len and not generator.is_done():
            generator.generate_next_token()  # after the first: one forward pass on the previous token
            stamps.append(time.perf_counter())
        generated = len(generator.get_sequence(0)) - len(ids)
        return {"prompt_tokens": len(ids), "generated_tokens": generated,
                "ttft_s": stamps[0] - t0 if stamps else None, "decode_s": stamps[-1] - stamps[0] if stamps else None}
