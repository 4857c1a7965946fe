"""Memory estimates made before a model or a KV cache is allocated: a request that cannot fit is
refused with the numbers instead of being OOM-killed minutes later (rc 137 after 95 s at 22 GB for
`generate --max-context-len 100000000`). Torch-free (the ONNX runtime path is); psutil reads the
available memory."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

GiB = 2**30
# What the process holds beyond weights and cache (Python, torch, runtime buffers, activations):
# measured ~0.45 GiB peak RSS for SmolLM2 `run`, so a round margin.
OVERHEAD = GiB // 2


@dataclass
class Shape:
    """What the estimates need of a model (ModelArgs has these too, but imports torch)."""
    n_layers: int
    n_kv_heads: int
    head_dim: int
    parameters: int


def shape_of(args) -> Shape:
    """From an edgellama.model.ModelArgs."""
    return Shape(args.n_layers, args.n_kv_heads, args.head_dim, args.num_params())


def manifest_shape(manifest: dict) -> Shape | None:
    """The model's shape as an artifact's manifest records it (None if the manifest lacks it)."""
    model = manifest.get("model")
    keys = ("dim", "n_layers", "n_heads", "n_kv_heads", "parameters")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), int) and model[k] > 0 for k in keys):
        return None
    return Shape(model["n_layers"], model["n_kv_heads"], model["dim"] // model["n_heads"], model["parameters"])


def kv_cache_bytes(shape: Shape, positions: int, dtype_bytes: int = 4) -> int:
    """Keys and values of every layer for `positions` positions."""
    return 2 * shape.n_layers * positions * shape.n_kv_heads * shape.head_dim * dtype_bytes


def model_bytes(shape: Shape, dtype_bytes: int = 4) -> int:
    return shape.parameters * dtype_bytes


def streaming_bytes(args, dtype_bytes: int = 4) -> int:
    """The most a streamed export (a target with `streams_layers`) holds of the model: two float decoder
    layers (one being quantized or rebuilt, one being written) and the float embedding and head. 13B
    shapes: 3.6 GiB by this count; 4.36 GiB peak RSS measured for the whole ONNX export."""
    from .schemes import linear_shapes

    layer = sum(rows * cols for name, rows, cols in linear_shapes(args) if name.startswith("layers.0."))
    return dtype_bytes * (2 * layer + 2 * args.vocab_size * args.dim)


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
