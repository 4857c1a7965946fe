"""Checkpoint formats. `open_checkpoint` looks at a path and returns a lazy `Checkpoint`."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .common import Checkpoint, TokenizerSource


def open_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at `path`, refused (InputError) when its config contradicts its tensors' shapes."""
    from .shapes import check_shapes

    ckpt = _open_format(Path(path))
    check_shapes(ckpt)
    return ckpt


def _open_format(path: Path) -> Checkpoint:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; pass a Meta/HF checkpoint folder or a .gguf file")
    if path.is_file():
        if path.suffix == ".gguf":
            from .gguf_format import open_gguf
            return open_gguf(path)
        if path.name in ("params.json", "config.json") or path.suffix in (".pth", ".safetensors", ".bin"):
            return _open_format(path.parent)
        raise InputError(f"{path}: not a checkpoint; pass a .gguf file or a folder with params.json or config.json")
    from .hf import is_hf, open_hf
    from .meta import is_meta, open_meta
    if any(path.glob("consolidated.*.pth")) or (path / "params.json").exists():
        return open_meta(path)
    if is_hf(path):
        return open_hf(path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        from .gguf_format import open_gguf
        return open_gguf(ggufs[0])
    raise InputError(f"{path}: no params.json, config.json or single .gguf found; "
                     f"pass a Meta (params.json + consolidated.*.pth), Hugging Face (config.json + weights) or GGUF checkpoint")


__all__ = ["Checkpoint", "TokenizerSource", "open_checkpoint"]
