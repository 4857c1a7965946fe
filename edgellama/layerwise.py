"""Quantize a model one decoder layer at a time.

For each layer in order: calibration hidden states (when the algorithm or the mixed-precision
choice needs them) are run through the float layer to measure it, its linears are quantized, and
the float weights are dropped. With a checkpoint as the source (`quantize_checkpoint`) each
layer is read from disk just before it is quantized, so a 7B model is never whole in fp32: the
peak is the quantized model plus one float layer.

The calibration statistics always come from the float model (the hidden states advance through
the float layer before its weights are swapped), so streaming and in-memory quantization give
identical weights.

With `spill_dir` (a streamed export) the quantized layers are not kept either: each layer's integers
and scales go to a `Spill` file as they are made (mixed precision must see every layer before it
knows which linears are 8-bit, so nothing can be handed on during this pass), and the returned
model's `layers` is a `LazyLayers` that rebuilds layer i from the spill (norms from the checkpoint)
when the exporter first asks for it. The peak is then a few layers, not the quantized model.

Mixed precision ends with a second, shorter pass (`remeasure`): the linears near the 8-bit cut are
measured again exactly, from the first layer holding one of them, with float layers read again
(`float_layer`) and their int4 weights read back from where the first pass stored them."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .errors import InputError
from .eta import LayerClock
from .formats import Checkpoint
from .model import Transformer, TransformerBlock, rope_cos_sin
from .quant import (FLOAT_SCHEMES, NEEDS_CALIBRATION, QuantSpec, algorithm, check_group_size,
                    embedding_from_head, quantize_embedding, quantize_linear, symmetric_rtn_algo, torchao_weight, untie_output)
from .quant_math import dequantize, symmetric_rtn
from .schemes import SCHEMES, linear_shapes
from .spill import Spill

Progress = Callable[[str], None]


def quantize_checkpoint(ckpt: Checkpoint, spec: QuantSpec, calibration: list[list[int]] | None = None,
                        progress: Progress | None = None, spill_dir: Path | None = None,
                        mapped: bool = False) -> Transformer:
    """The checkpoint loaded and quantized layer by layer (see the module docstring); with `spill_dir`,
    a model whose layers are rebuilt on first use from a temporary file in that folder (`mapped`: the
    spill's mapped layout, whose layers hold views of the file; see spill.py)."""
    from .loader import build_model, layer_params, load_params

    if spec.scheme in FLOAT_SCHEMES:
        return build_model(ckpt, FLOAT_SCHEMES[spec.scheme])
    model = build_model(ckpt, torch.float32, layers=False)
    spill = Spill(spill_dir, mapped) if spill_dir else None
    quantize_model(model, spec, progress, calibration,
                   materialize=lambda i: load_params(model, ckpt, layer_params(model, i)),
                   reload=lambda name: ckpt.tensors[name + ".weight"](torch.float32), spill=spill,
                   float_layer=lambda i: assemble_layer(ckpt.args, i, lambda n: ckpt.tensors[n](torch.float32)))
    if spill:
        from .lazy_layers import LazyLayers

        dynamic = SCHEMES[spec.scheme][1]
        model.layers = LazyLayers(len(model.layers), lambda i: rebuild_layer(ckpt, spill, dynamic, i, progress), spill.evict)
    return model


def rebuild_layer(ckpt: Checkpoint, spill: Spill, dynamic: bool, i: int, progress: Progress | None) -> TransformerBlock:
    """Layer i as `quantize_model` left it: its linears from the spill, its norms from the checkpoint."""
    def weight(name: str) -> torch.Tensor:
        linear = name.removesuffix(".weight")
        if linear in spill:
            return torchao_weight(*spill.get(linear), dynamic)
        return ckpt.tensors[name](torch.float32)  # the norms: float, read as load_params read them

    layer = assemble_layer(ckpt.args, i, weight)
    if progress:
        progress(f"layer {i} read back")
    return layer


def assemble_layer(args, i: int, weight: Callable[[str], torch.Tensor]) -> TransformerBlock:
    """Decoder layer i with each parameter `weight(its full name)`."""
    with torch.device("meta"):
        layer = TransformerBlock(args).eval()
    for path, p in list(layer.named_parameters()):
        parent, _, leaf = path.rpartition(".")
        value = weight(f"layers.{i}.{path}")
        setattr(layer.get_submodule(parent), leaf,
                value if isinstance(value, nn.Parameter) else nn.Parameter(value, requires_grad=False))
    return layer


@torch.no_grad()
def quantize_model(model: Transformer, spec: QuantSpec, progress: Progress | None = None,
                   calibration: list[list[int]] | None = None,
                   materialize: Callable[[int], None] | None = None,
                   reload: Callable[[str], torch.Tensor] | None = None, spill: Spill | None = None,
                   float_layer: Callable[[int], nn.Module] | None = None) -> Transformer:
    """In place. Float schemes only cast. Integer schemes swap every transformer linear's weight
    for a torchao quantized tensor (int4 groups, or int8 per-channel for the linears in
    `spec.keep_8bit`), then the embedding and output head as the spec says. When
    `spec.size_budget` > 1 and no `keep_8bit` is given, the 8-bit linears are chosen by measured
    sensitivity and written back into `spec.keep_8bit` (so the manifest records them).
    `materialize(i)` loads layer i's float weights before it is needed and `reload(name)` returns a
    linear's float weight again (streaming); by default the model is already whole. With `spill`, each
    layer's quantized linears are written there and the layer is dropped (`model.layers[i]` becomes an
    empty module) instead of being kept. `float_layer(i)` builds float layer i again for `remeasure`;
    required with `reload`; by default (a whole model) from the float weights kept for promotion."""
    from .sensitivity import LINEARIZED, TOKENS, WINDOW, Sensitivity, choose_8bit, near_cut

    if spec.scheme not in SCHEMES:
        raise InputError(f"--quant {spec.scheme}: unknown scheme; use one of {', '.join(SCHEMES)}")
    if spec.scheme in FLOAT_SCHEMES:
        return model.to(FLOAT_SCHEMES[spec.scheme])
    bits, dynamic = SCHEMES[spec.scheme]
    shapes = linear_shapes(model.args)
    keep = set(spec.keep_8bit)
    check_group_size([s for s in shapes if s[0] not in keep], spec.group_size)
    choosing = spec.size_budget > 1.0 and not keep
    if choosing and reload and not float_layer:  # the floats are then not kept for `remeasure`
        raise ValueError("quantize_model: streaming with mixed precision needs float_layer")
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
        sensitivity = Sensitivity(model.tok_embeddings(torch.tensor([calibration[WINDOW][:TOKENS]])), LINEARIZED)
        sensitivity_rope = rope_for(model, min(TOKENS, len(calibration[0])))
    floats = {}  # name -> float weight, kept only when linears may still be promoted and cannot be reloaded

    def store(name: str, q: torch.Tensor, scale: torch.Tensor, width: int) -> None:
        if spill:
            spill.put(name, q, scale, width)
        else:
            model.get_submodule(name).weight = torchao_weight(q, scale, width, dynamic)

    clock = LayerClock(len(model.layers))
    for i, layer in enumerate(model.layers):
        if progress:
            progress(clock.start(i))
        if materialize:
            materialize(i)
        prefix = f"layers.{i}."
        importance = {}
        if calibrating:
            from .algorithms import layer_input_power

            importance, hidden = layer_input_power(layer, prefix, hidden, *rope)
        algo = algorithm(spec.algo, importance)
        chosen, kept = {}, {}  # (path, name) -> (int values, scales): int4, and 8-bit as the keep list says
        for path, linear in linears(layer):
            name = prefix + path
            if name in keep:
                kept[path, name] = symmetric_rtn(linear.weight.data, 8, 0)
            else:
                chosen[path, name] = algo(linear.weight.data, bits, spec.group_size, name)
        if sensitivity:
            sensitivity.step(layer, {key: dequantize(q, s) for key, (q, s) in chosen.items()}, *sensitivity_rope)
        for (path, name), (q, s) in chosen.items():
            if choosing and reload is None:
                floats[name] = layer.get_submodule(path).weight.data
            store(name, q, s, bits)
        for (_, name), (q, s) in kept.items():
            store(name, q, s, 8)
        if spill:
            model.layers[i] = nn.Module()  # its integers are in the spill; the float layer goes

    if sensitivity:
        if progress:
            progress(f"sensitivity: each of the {len(sensitivity.names)} linears' KL at the output")
        kl = sensitivity.finish(model.norm, model.output)
        if sensitivity.linearized:
            def int4_weight(name: str) -> torch.Tensor:
                if spill:
                    return dequantize(*spill.get(name)[:2])
                weight = model.get_submodule(name).weight
                return dequantize(weight.qdata, weight.scale)

            def kept_float(name: str) -> torch.Tensor:  # the model is whole: norms from it, linears kept aside
                linear = name.removesuffix(".weight")
                return floats[linear] if linear in floats else model.get_parameter(name)

            kl |= remeasure(near_cut(kl, shapes, spec.group_size, spec.size_budget), sensitivity.inputs,
                            float_layer or (lambda i: assemble_layer(model.args, i, kept_float)),
                            int4_weight, model, sensitivity_rope, progress)
        spec.keep_8bit = choose_8bit(kl, shapes, spec.group_size, spec.size_budget)
        if progress:
            progress(f"the {len(spec.keep_8bit)} most sensitive linears to 8-bit")
        for name in spec.keep_8bit:  # a later store replaces the int4 weight (in the model or the spill)
            store(name, *symmetric_rtn(reload(name) if reload else floats.pop(name), 8, 0), 8)
    shared = spec.embedding == "head" and model.args.tie_embeddings and spec.output != "none"
    if spec.embedding != "none" and not shared:
        quantize_embedding(model, "8w" if spec.embedding == "head" else spec.embedding)
    if spec.output != "none":
        quantize_output(model, spec, hidden)
    if shared:
        embedding_from_head(model)
    return model


def remeasure(names: list[str], inputs: list[torch.Tensor], float_layer: Callable[[int], nn.Module],
              int4_weight: Callable[[str], torch.Tensor], model: Transformer, rope: tuple,
              progress: Progress | None) -> dict[str, float]:
    """The exact sensitivity of the linears `names` (see sensitivity.py): a pass from the first layer
    holding one of them, starting from the float state `inputs[i]` the first pass saw there."""
    from .sensitivity import Sensitivity

    if not names:
        return {}
    by_layer: dict[int, list[tuple[str, str]]] = {}  # layer -> (path inside it, full name)
    for name in names:
        _, i, path = name.split(".", 2)
        by_layer.setdefault(int(i), []).append((path, name))
    first = min(by_layer)
    if progress:
        progress(f"re-measuring the {len(names)} linears nearest the 8-bit cut exactly, layers {first}-{len(inputs) - 1}")
    exact = Sensitivity(inputs[first], linearized=False)
    for i in range(first, len(inputs)):
        exact.step(float_layer(i), {key: int4_weight(key[1]) for key in by_layer.get(i, [])}, *rope)
        if progress:
            progress(f"layer {i} re-measured")
    return exact.finish(model.norm, model.output)


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
