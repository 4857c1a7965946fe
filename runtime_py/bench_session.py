"""Timing any artifact through its edgellama Session and edgellama's generation loop: for targets whose
runtime has no LLM runner of its own here (qnn: the HTP through ONNX Runtime's QNN EP). Runs inside the
bench worker process (bench_worker.py)."""
from __future__ import annotations

import time
from pathlib import Path


class SessionBench:
    runner = "edgellama session"
    stops_at_eos = False  # generate() is given no EOS ids

    @staticmethod
    def spec(folder: Path, manifest: dict, threads: int) -> dict:
        return {"folder": str(folder), "threads": threads}

    def __init__(self, spec: dict):
        self.folder = spec["folder"]

    def load(self) -> float:
        from .open import open_artifact

        t0 = time.perf_counter()
        self.session, _ = open_artifact(self.folder, force_memory=True)  # the parent process checked memory
        return time.perf_counter() - t0

    def threads(self) -> None:
        return None  # the session's runtime does not say

    def run(self, text: str, ids: list[int], gen_len: int) -> dict:
        from .generate import generate

        self.session.reset()
        stamps = []
        t0 = time.perf_counter()
        result = generate(self.session, ids, gen_len, eos_ids=[], on_token=lambda _t: stamps.append(time.perf_counter()))
        return {"prompt_tokens": len(ids), "generated_tokens": len(result.tokens),
                "ttft_s": stamps[0] - t0 if stamps else None, "decode_s": stamps[-1] - stamps[0] if stamps else None}
