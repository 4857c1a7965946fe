"""Checkpoint -> Transformer, one tensor at a time.

The module is built on the `meta` device (no memory), then each parameter is read from the
lazy checkpoint in the requested dtype and assigned; a tensor that is already in that dtype
stays a view of the file mapping, so loading never holds two full copies of the weights.
`load_params` loads any subset, which is how `layerwise.quantize_checkpoint` streams a model
one decoder layer at a time."""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import InputError
from .formats import Checkpoint, open_checkpoint
from .formats.shapes import check_shape
from .model import Transformer, skeleton


def load_params(model: Transformer, ckpt: Checkpoint, names, dtype: torch.dtype = torch.float32, progress=None) -> None:
    """Read `names` from the checkpoint into `model`, checking shape and finiteness."""
    for name in names:
        t = ckpt.tensors[name](dtype)
        check_shape(ckpt, name, t.shape, model.get_parameter(name).shape)
        if not torch.isfinite(t.sum(dtype=torch.float64)):  # NaN/Inf propagate through a sum; one cheap pass
            file, source_name = ckpt.origin[name]
            raise InputError(f"{file}: tensor {source_name} holds NaN or Inf values; the checkpoint is damaged, "
                             f"re-download or re-convert it")
        parent, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent), leaf, torch.nn.Parameter(t, requires_grad=False))
        if name == "tok_embeddings.weight" and ckpt.args.tie_embeddings:
            model.output.weight = model.tok_embeddings.weight
        if progress:
            progress(name)


def layer_params(model: Transformer, i: int) -> list[str]:
    return [f"layers.{i}.{n}" for n, _ in model.layers[i].named_parameters()]


def build_model(ckpt: Checkpoint, dtype: torch.dtype = torch.float32, progress=None,
                layers: bool = True) -> Transformer:
    """The whole model in `dtype`; with `layers=False` only embeddings, final norm and head are
    loaded and the decoder layers stay on the meta device for the caller to stream."""
    model = skeleton(ckpt.args)
    names = [n for n in ckpt.tensors if layers or not n.startswith("layers.")]
    load_params(model, ckpt, names, dtype, progress)
    return model


def load_model(path: str | Path, dtype: torch.dtype = torch.float32) -> Transformer:
    """Load a Meta, Hugging Face or GGUF Llama checkpoint as an `edgellama.model.Transformer`."""
    return build_model(open_checkpoint(path), dtype)
