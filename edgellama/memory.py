"""Memory estimates made before a model or a KV cache is allocated: a request that cannot fit is
refused with the numbers instead of being OOM-killed minutes later (rc 137 after 95 s at 22 GB for
`generate --max-context-len 100000000`). Torch-free; psutil reads the available memory."""
from __future__ import annotations

from .errors import InputError
from .model import ModelArgs

GiB = 2**30
# What the process holds beyond weights and cache (Python, torch, runtime buffers, activations):
# measured ~0.45 GiB peak RSS for SmolLM2 `run`, so a round margin.
OVERHEAD = GiB // 2


def kv_cache_bytes(args: ModelArgs, positions: int, dtype_bytes: int = 4) -> int:
    """Keys and values of every layer for `positions` positions."""
    return 2 * args.n_layers * positions * args.n_kv_heads * args.head_dim * dtype_bytes


def model_bytes(args: ModelArgs, dtype_bytes: int = 4) -> int:
    return args.num_params() * dtype_bytes


def available_bytes() -> int:
    import psutil

    return psutil.virtual_memory().available


def check_memory(parts: dict[str, int], force: bool, fix: str) -> None:
    """Refuse when the parts (name -> bytes) plus OVERHEAD exceed the memory available now."""
    need = sum(parts.values()) + OVERHEAD
    have = available_bytes()
    if need <= have or force:
        return
    detail = " + ".join(f"{name} {b / GiB:.2f} GiB" for name, b in parts.items())
    raise InputError(f"not enough memory: needs about {need / GiB:.1f} GiB ({detail} + {OVERHEAD / GiB:.1f} GiB runtime) "
                     f"but {have / GiB:.1f} GiB is available; {fix}, or pass --force-memory to try anyway")


def manifest_args(manifest: dict) -> ModelArgs | None:
    """The model's shape as an artifact's manifest records it (None if the manifest lacks it)."""
    model = manifest.get("model")
    keys = ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), int) and model[k] > 0 for k in keys):
        return None
    return ModelArgs(**{k: model[k] for k in keys})
