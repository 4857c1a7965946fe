"""Quantize a model one decoder layer at a time.

For each layer in order: calibration hidden states (when the algorithm or the mixed-precision
choice needs them) are run through the float layer to measure it, its linears are quantized, and
the float weights are dropped. With a checkpoint as the source (`quantize_checkpoint`) each
layer is read from disk just before it is quantized, so a 7B model is never whole in fp32: the
peak is the quantized model plus one float layer.

The calibration statistics always come from the float model (the hidden states advance through
the float layer before its weights are swapped), so streaming and in-memory quantization give
identical weights."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .errors import InputError
from .formats import Checkpoint
from .model import Transformer, rope_cos_sin
from .quant import (FLOAT_SCHEMES, NEEDS_CALIBRATION, QuantSpec, algorithm, check_group_size,
                    embedding_from_head, quantize_embedding, quantize_linear, symmetric_rtn_algo, torchao_weight, untie_output)
from .quant_math import dequantize
from .schemes import SCHEMES, linear_shapes

Progress = Callable[[str], None]


def quantize_checkpoint(ckpt: Checkpoint, spec: QuantSpec, calibration: list[list[int]] | None = None,
                        progress: Progress | None = None) -> Transformer:
    """The checkpoint loaded and quantized layer by layer (see the module docstring)."""
    from .loader import build_model, layer_params, load_params

    if spec.scheme in FLOAT_SCHEMES:
        return build_model(ckpt, FLOAT_SCHEMES[spec.scheme])
    model = build_model(ckpt, torch.float32, layers=False)
    return quantize_model(model, spec, progress, calibration,
                          materialize=lambda i: load_params(model, ckpt, layer_params(model, i)),
                          reload=lambda name: ckpt.tensors[name + ".weight"](torch.float32))


@torch.no_grad()
def quantize_model(model: Transformer, spec: QuantSpec, progress: Progress | None = None,
                   calibration: list[list[int]] | None = None,
                   materialize: Callable[[int], None] | None = None,
                   reload: Callable[[str], torch.Tensor] | None = None) -> Transformer:
    """In place. Float schemes only cast. Integer schemes swap every transformer linear's weight
    for a torchao quantized tensor (int4 groups, or int8 per-channel for the linears in
    `spec.keep_8bit`), then the embedding and output head as the spec says. When
    `spec.size_budget` > 1 and no `keep_8bit` is given, the 8-bit linears are chosen by measured
    sensitivity and written back into `spec.keep_8bit` (so the manifest records them).
    `materialize(i)` loads layer i's float weights before it is needed and `reload(name)` returns a
    linear's float weight again (streaming); by default the model is already whole."""
    from .sensitivity import TOKENS, Sensitivity, choose_8bit

    if spec.scheme not in SCHEMES:
        raise InputError(f"--quant {spec.scheme}: unknown scheme; use one of {', '.join(SCHEMES)}")
    if spec.scheme in FLOAT_SCHEMES:
        return model.to(FLOAT_SCHEMES[spec.scheme])
    bits, dynamic = SCHEMES[spec.scheme]
    shapes = linear_shapes(model.args)
    keep = set(spec.keep_8bit)
    check_group_size([s for s in shapes if s[0] not in keep], spec.group_size)
    choosing = spec.size_budget > 1.0 and not keep
    calibrating = spec.algo in NEEDS_CALIBRATION
    if spec.needs_calibration and not calibration:
        what = f"--quant-algo {spec.algo}" if calibrating else f"--size-budget {spec.size_budget}"
        raise InputError(f"{what}: needs calibration text; pass --calibration FILE")

    hidden, rope = [], ()
    if calibrating:
        hidden = [model.tok_embeddings(torch.tensor([ids])) for ids in calibration]
        rope = rope_for(model, len(calibration[0]))
    sensitivity = None
    if choosing:
        sensitivity = Sensitivity(model.tok_embeddings(torch.tensor([calibration[0][:TOKENS]])))
        sensitivity_rope = rope_for(model, min(TOKENS, len(calibration[0])))
    floats = {}  # name -> float weight, kept only when linears may still be promoted and cannot be reloaded

    for i, layer in enumerate(model.layers):
        if materialize:
            materialize(i)
        prefix = f"layers.{i}."
        importance = {}
        if calibrating:
            from .algorithms import layer_input_power

            importance = layer_input_power(layer, prefix, hidden, *rope)
            hidden = [layer(h, *rope) for h in hidden]
        algo = algorithm(spec.algo, importance)
        chosen = {}
        for path, linear in linears(layer):
            name = prefix + path
            if name in keep:
                quantize_linear(linear, 8, 0, dynamic, symmetric_rtn_algo, name)
            else:
                chosen[path, name] = algo(linear.weight.data, bits, spec.group_size, name)
        if sensitivity:
            sensitivity.step(layer, {key: dequantize(q, s) for key, (q, s) in chosen.items()}, *sensitivity_rope)
        for (path, name), (q, s) in chosen.items():
            linear = layer.get_submodule(path)
            if choosing and reload is None:
                floats[name] = linear.weight.data
            linear.weight = torchao_weight(q, s, bits, dynamic)
        if progress:
            progress(f"layer {i}")

    if sensitivity:
        spec.keep_8bit = choose_8bit(sensitivity.finish(model.norm, model.output), shapes, spec.group_size,
                                     spec.size_budget)
        for name in spec.keep_8bit:
            linear = model.get_submodule(name)
            linear.weight = nn.Parameter(reload(name) if reload else floats.pop(name), requires_grad=False)
            quantize_linear(linear, 8, 0, dynamic, symmetric_rtn_algo, name)
        if progress:
            progress(f"{len(spec.keep_8bit)} sensitive linears kept at 8-bit")
    shared = spec.embedding == "head" and model.args.tie_embeddings and spec.output != "none"
    if spec.embedding != "none" and not shared:
        quantize_embedding(model, "8w" if spec.embedding == "head" else spec.embedding)
    if spec.output != "none":
        quantize_output(model, spec, hidden)
    if shared:
        embedding_from_head(model)
    return model


def quantize_output(model: Transformer, spec: QuantSpec, hidden: list[torch.Tensor]) -> None:
    """The output head: 8-bit per-channel, or 4-bit in the spec's groups with the spec's algorithm
    (scale-search weighs by the calibration hidden states after the last layer, normed)."""
    untie_output(model)
    bits, dynamic = SCHEMES[spec.output]
    if bits == 8:
        quantize_linear(model.output, 8, 0, dynamic, symmetric_rtn_algo, "output")
        return
    importance = {}
    if hidden:
        x = torch.cat([model.norm(h).reshape(-1, h.shape[-1]).float() for h in hidden])
        importance = {"output": (x * x).mean(0)}
    quantize_linear(model.output, 4, spec.group_size, dynamic, algorithm(spec.algo, importance), "output")


def linears(layer: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(path, m) for path, m in layer.named_modules() if isinstance(m, nn.Linear)]


def rope_for(model: Transformer, length: int) -> tuple:
    positions = torch.arange(length)
    return (*rope_cos_sin(positions, model.args.head_dim, model.args.rope_theta), positions)
