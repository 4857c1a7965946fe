"""A checkpoint's config must describe its weights. Each format reads its tensors' shapes from the
file headers (safetensors header, the memory-mapped .pth tensors, GGUF tensor info), so
`open_checkpoint` compares them all before anything is loaded; the loader runs the same comparison
on each tensor it loads."""
from __future__ import annotations

from ..errors import InputError
from ..model import skeleton
from .common import Checkpoint

# What stated the shapes, and the fix, per format.
_CONFIG = {"hf": ("config.json", "use the config.json that came with these weights"),
           "meta": ("params.json", "use the params.json that came with these weights"),
           "gguf": ("the GGUF metadata", "convert the model to GGUF again")}


def check_shape(ckpt: Checkpoint, name: str, found, expected) -> None:
    if tuple(found) != tuple(expected):
        file, source_name = ckpt.origin[name]
        config, fix = _CONFIG[ckpt.format]
        raise InputError(f"{file}: tensor {source_name} has shape {tuple(found)} but {config} implies "
                         f"{tuple(expected)}; the weights and the config disagree: {fix}")


def check_shapes(ckpt: Checkpoint) -> None:
    expected = dict(skeleton(ckpt.args).named_parameters(remove_duplicate=False))
    for name, found in ckpt.shapes.items():
        check_shape(ckpt, name, found, expected[name].shape)
