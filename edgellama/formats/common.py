"""What every checkpoint format hands to the loader: model arguments, one lazy loader per tensor
(named as `edgellama.model` names its parameters, q/k already in the HF RoPE layout), and
where the tokenizer lives."""
from __future__ import annotations

import ctypes
import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import InputError
from ..model import ModelArgs

TensorLoader = Callable[[torch.dtype], torch.Tensor]  # returns the tensor in that dtype


@dataclass
class Checkpoint:
    format: str  # "meta" | "hf" | "gguf"
    path: Path
    files: list[Path]
    args: ModelArgs
    tensors: dict[str, TensorLoader]
    # where each tensor comes from, for error messages: our name -> (file, name in that file)
    origin: dict[str, tuple[Path, str]]
    # each tensor's shape as the loader will return it, read from the file headers (no weights)
    shapes: dict[str, tuple[int, ...]]
    source_dtypes: set[str]
    tokenizer: "TokenizerSource"


@dataclass
class TokenizerSource:
    kind: str  # "sentencepiece" | "hf" | "gguf" | "none"
    path: Path | None = None
    config: dict = field(default_factory=dict)  # bos/eos/chat template where the format carries them


def layer_names(n_layers: int) -> list[str]:
    """Our parameter names, in load order."""
    names = ["tok_embeddings.weight"]
    for i in range(n_layers):
        p = f"layers.{i}."
        names += [p + s for s in (
            "attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "attention.wo.weight",
            "feed_forward.w1.weight", "feed_forward.w2.weight", "feed_forward.w3.weight",
            "attention_norm.weight", "ffn_norm.weight")]
    return names + ["norm.weight", "output.weight"]


def permute_meta_to_hf(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Meta (and llama.cpp) store q/k rows with RoPE pairs interleaved; HF (and this module)
    rotate halves. This is the permutation HF's conversion script applies."""
    rows, cols = w.shape
    return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def corrupt(path: Path, err: Exception) -> InputError:
    return InputError(f"{path}: cannot read it ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                      f"the file is truncated or corrupt: copy or convert it again")


_libc = ctypes.CDLL(None, use_errno=True)
_MADV_DONTNEED = 4


def release_pages(address: int, nbytes: int) -> None:
    """Drop the resident pages of a file mapping we have finished copying from.

    Pages of a file mapping count in RSS until unmapped; without this, converting a 7B checkpoint
    would keep the source bytes resident beside the converted copy. Only call it on memory that
    is a view of an mmap (torch.load(mmap=True), GGUF memmap) and that nothing reads again.
    """
    first = (address + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
    last = (address + nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if last > first:
        _libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)


def to_dtype(t: torch.Tensor, dtype: torch.dtype, sources: list[torch.Tensor]) -> torch.Tensor:
    """Convert `t` (built from file-mapped `sources`) to `dtype`; when that made a copy, the
    sources' pages are released so only the converted tensor stays resident."""
    out = t.to(dtype)
    for s in sources:
        if out.untyped_storage().data_ptr() != s.untyped_storage().data_ptr():
            release_pages(s.untyped_storage().data_ptr(), s.untyped_storage().nbytes())
    return out
