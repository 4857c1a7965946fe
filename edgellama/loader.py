"""Checkpoint -> Transformer, one tensor at a time.

The module is built on the `meta` device (no memory), then each parameter is read from the
lazy checkpoint in the requested dtype and assigned; a tensor that is already in that dtype
stays a view of the file mapping, so loading never holds two full copies of the weights."""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import InputError
from .formats import Checkpoint, open_checkpoint
from .model import Transformer


def build_model(ckpt: Checkpoint, dtype: torch.dtype = torch.float32, progress=None) -> Transformer:
    with torch.device("meta"):
        model = Transformer(ckpt.args)
    expected = {n: p.shape for n, p in model.named_parameters(remove_duplicate=False)}
    state = {}
    for name, load in ckpt.tensors.items():
        t = load(dtype)
        file, source_name = ckpt.origin[name]
        if tuple(t.shape) != tuple(expected[name]):
            raise InputError(f"{file}: tensor {source_name} has shape {tuple(t.shape)} but the config implies "
                             f"{tuple(expected[name])}; the weights and the config disagree — use the config that came with them")
        if not torch.isfinite(t.sum(dtype=torch.float64)):  # NaN/Inf propagate through a sum; one cheap pass
            raise InputError(f"{file}: tensor {source_name} holds NaN or Inf values; the checkpoint is damaged, "
                             f"re-download or re-convert it")
        state[name] = torch.nn.Parameter(t, requires_grad=False)
        if progress:
            progress(name)
    model.load_state_dict(state, strict=not ckpt.args.tie_embeddings, assign=True)
    if ckpt.args.tie_embeddings:
        model.output.weight = model.tok_embeddings.weight
    return model.eval()


def load_model(path: str | Path, dtype: torch.dtype = torch.float32) -> Transformer:
    """Load a Meta, Hugging Face or GGUF Llama checkpoint as an `edgellama.model.Transformer`."""
    return build_model(open_checkpoint(path), dtype)
