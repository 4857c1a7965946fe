"""The physical floor of decoding: every decoded token reads every weight once, except an embedding table
that is not also the output head (a token reads one row of it). So at most
bandwidth / (weight bytes read per token) tokens per second; the KV cache and activations are left out,
so the true bound is a little lower.

The bandwidth is read bandwidth at the run's thread count, measured around the timing (read_bandwidth):
on a shared box it moves with the load as the decode speeds do. runtime_py/machine.py's cached one-thread
copy figure is reported beside it.

Weight bytes read per token, per kind of artifact:
- GGUF: every tensor's bytes; `token_embd` left out only when the file has its own `output` tensor;
- ONNX: every initializer's bytes, less those consumed only by Gather ops (the embedding lookup);
- .pte: the files' bytes less the 8-bit per-row embedding table (vocab x dim int8 + one fp32 scale a row),
  the scheme both our .pte and export_llm's use (its weights sit inside XNNPACK blobs, not read here)."""
from __future__ import annotations

import time
from pathlib import Path

GATHERS = {"Gather", "GatherBlockQuantized"}


def gguf_bytes(path: Path) -> int:
    import gguf

    tensors = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(str(path)).tensors}
    total = sum(tensors.values())
    return total - tensors["token_embd.weight"] if "output.weight" in tensors else total


def onnx_bytes(model_file: Path) -> int:
    import onnx

    model = onnx.load(str(model_file), load_external_data=False)
    users: dict[str, set] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.op_type)
    total = 0
    for init in model.graph.initializer:
        if users.get(init.name) and users[init.name] <= GATHERS:
            continue
        external = {e.key: e.value for e in init.external_data}
        total += int(external["length"]) if "length" in external else len(init.raw_data)
    return total


def pte_bytes(pte: Path, vocab: int, dim: int) -> int:
    return pte.stat().st_size - vocab * (dim + 4)


def floor_tok_s(weight_bytes: int, bandwidth_gb_s: float) -> float:
    return bandwidth_gb_s * 1e9 / weight_bytes


def read_bandwidth(threads: int, nbytes: int = 256 * 2**20, repeats: int = 7) -> float:
    """Bytes per second `threads` threads read summing a buffer far larger than the caches, best of
    `repeats`: how fast a decode step can at most stream its weights."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.ones(nbytes // 4)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            x.sum()
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return nbytes / best
