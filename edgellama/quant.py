"""Weight quantization as torchao tensors, so ExecuTorch's XNNPACK partitioner sees exactly the
patterns it lowers (`dequantize_affine` feeding a linear, with or without dynamic int8 activations).

We choose the integer values and scales ourselves (round-to-nearest or a better algorithm, see
`algorithms.py`) and wrap them in torchao's `IntxUnpackedToInt8Tensor`, the tensor that
`torchao.quantization.quantize_` with `Int8DynamicActivationIntxWeightConfig` /
`IntxWeightOnlyConfig` produces; for round-to-nearest the two are bit-identical (tested)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from .errors import InputError
from .model import Transformer
from .quant_math import symmetric_rtn
from .schemes import SCHEMES, head_scheme, linear_shapes

FLOAT_SCHEMES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class QuantSpec:
    scheme: str = "8da4w"  # see schemes.SCHEMES
    group_size: int = 32  # 0 = per-channel
    algo: str = "rtn"
    embedding: str = "8w"  # "8w" | "4w" | "head" (the output head's table if tied, else 8w) | "none"
    output: str = "8w"  # the output head: "8w" | "8da8w" (per-channel) | "4w" | "8da4w" (group_size) | "none"
    size_budget: float = 1.0  # > 1: keep the most sensitive linears at 8-bit within this x pure-int4 size
    keep_8bit: list[str] = field(default_factory=list)  # linears kept at 8-bit (chosen, or given)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_options(cls, scheme: str, group_size: int, algo: str, embedding: str, output_quant: str,
                     size_budget: float) -> "QuantSpec":
        """The spec for the options of `export` and `eval-ppl`: a float scheme quantizes nothing, so
        embedding, head and the mixed-precision budget only apply to integer schemes."""
        integer = scheme not in FLOAT_SCHEMES
        return cls(scheme=scheme, group_size=group_size, algo=algo, embedding=embedding if integer else "none",
                   output=head_scheme(scheme, output_quant), size_budget=size_budget if integer else 1.0)

    @property
    def needs_calibration(self) -> bool:
        """Calibration text is read by the calibrating algorithms and to choose the 8-bit linears."""
        choosing = self.size_budget > 1.0 and not self.keep_8bit
        return self.scheme not in FLOAT_SCHEMES and (self.algo in NEEDS_CALIBRATION or choosing)


def check_group_size(shapes: list[tuple[str, int, int]], group_size: int, what: str = "--group-size") -> None:
    """Every quantized layer's input dimension must split into whole groups."""
    if group_size == 0:
        return
    bad = [(n, k) for n, _, k in shapes if k % group_size]
    if bad:
        ins = sorted({k for _, _, k in shapes})
        ok = [g for g in (32, 64, 128, 256) if all(k % g == 0 for k in ins)]
        hint = f"use {' or '.join(map(str, ok))}" if ok else "use 0 (per-channel)"
        raise InputError(f"{what} {group_size}: does not divide the input dimension {bad[0][1]} of {bad[0][0]} "
                         f"({len(bad)} layer(s) affected); {hint}")


def torchao_weight(q: torch.Tensor, scale: torch.Tensor, bits: int, dynamic_activations: bool) -> nn.Parameter:
    from torchao.quantization.quantize_.workflows.intx.intx_unpacked_to_int8_tensor import (
        IntxUnpackedToInt8Tensor, IntxUnpackedToInt8TensorActivationQuantization as ActQuant)

    scale = scale.float().contiguous()
    t = IntxUnpackedToInt8Tensor(
        qdata=q.to(torch.int8).contiguous(), scale=scale, zero_point=torch.zeros_like(scale, dtype=torch.int8),
        target_dtype=getattr(torch, f"int{bits}"), block_size=(1, q.shape[1] // scale.shape[1]), dtype=torch.float32,
        activation_quantization=ActQuant.INT8_ASYM_PER_TOKEN if dynamic_activations else None)
    return nn.Parameter(t, requires_grad=False)


Algorithm = Callable[[torch.Tensor, int, int, str], tuple[torch.Tensor, torch.Tensor]]


def symmetric_rtn_algo(w, bits, g, _name):
    return symmetric_rtn(w, bits, g)


ALGORITHMS = ("rtn", "clip", "scale-search")
NEEDS_CALIBRATION = {"scale-search"}


def algorithm(name: str, importance: dict | None = None) -> Algorithm:
    """(weight, bits, group_size, layer name) -> (int values, scales)."""
    if name not in ALGORITHMS:
        raise InputError(f"--quant-algo {name}: unknown; use one of {', '.join(ALGORITHMS)}")
    if name == "rtn":
        return symmetric_rtn_algo
    from .algorithms import scale_search

    return scale_search(importance if name == "scale-search" else None)


def quantize_linear(linear: nn.Linear, bits: int, group_size: int, dynamic: bool, algo: Algorithm, name: str) -> None:
    q, scale = algo(linear.weight.data, bits, group_size, name)
    linear.weight = torchao_weight(q, scale, bits, dynamic)


def untie_output(model: Transformer) -> None:
    """Give a tied output head its own copy, so embedding and head can be quantized differently."""
    if model.output.weight is model.tok_embeddings.weight:
        model.output.weight = nn.Parameter(model.tok_embeddings.weight.detach().clone(), requires_grad=False)


def quantize_embedding(model: Transformer, scheme: str) -> None:
    """Embedding rows quantized per row (8w) or in groups of 32 (4w), via torchao's weight-only config,
    which ExecuTorch lowers to its quantized embedding kernels."""
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    untie_output(model)
    bits, granularity = (8, PerAxis(0)) if scheme == "8w" else (4, PerGroup(32))
    quantize_(model, IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{bits}"), granularity=granularity),
              filter_fn=lambda m, _fqn: isinstance(m, nn.Embedding))


def embedding_from_head(model: Transformer) -> None:
    """For a checkpoint whose embedding and output head are one matrix: the embedding looks its rows
    up in the quantized head's own integers and scales (one table in the artifact, as onnxruntime-genai's
    builder stores SmolLM2), weight-only."""
    from torchao.quantization.quantize_.workflows.intx.intx_unpacked_to_int8_tensor import IntxUnpackedToInt8Tensor

    head = model.output.weight
    model.tok_embeddings.weight = nn.Parameter(IntxUnpackedToInt8Tensor(
        qdata=head.qdata, scale=head.scale, zero_point=head.zero_point, target_dtype=head.target_dtype,
        block_size=head.block_size, dtype=head.dtype, activation_quantization=None), requires_grad=False)


class TwinLinear(nn.Module):
    """The eager twin of a torchao-quantized linear: the same arithmetic as torchao's own eager path
    (per-token int8 fake-quant of the activation when the scheme has one, then F.linear with the
    dequantized weight), with the weight dequantized once instead of on every call (5.5 s -> ms
    per SmolLM2 decode step)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight.dequantize(), requires_grad=False)
        self.dynamic = weight.activation_quantization is not None

    def forward(self, x):
        return nn.functional.linear(fake_quant_per_token_int8(x) if self.dynamic else x, self.weight)


def fake_quant_per_token_int8(x: torch.Tensor) -> torch.Tensor:
    """torchao's asymmetric per-token int8 activation quant-dequant (what its 8da linears apply),
    written as a handful of tensor ops; bit-equal to torchao 0.18's version (tested)."""
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    scale = ((hi - lo) / 255.0).clamp(min=torch.finfo(x.dtype).smallest_normal)
    zero_point = torch.clamp(-128 - torch.round(lo / scale), -128, 127)
    q = torch.clamp(torch.round(x * (1.0 / scale)) + zero_point, -128, 127)
    return (q - zero_point) * scale


def eager_twin(model: Transformer) -> Transformer:
    """In place: swap torchao-quantized linears and embeddings for float modules holding the
    dequantized weights, computing exactly what the quantized model computes, at fp32 speed."""
    from torchao.quantization.quantize_.workflows.intx.intx_unpacked_to_int8_tensor import IntxUnpackedToInt8Tensor

    for name, module in list(model.named_modules()):
        weight = getattr(module, "weight", None)
        if not isinstance(weight, IntxUnpackedToInt8Tensor):
            continue
        if isinstance(module, nn.Linear):
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, TwinLinear(weight))
        elif isinstance(module, nn.Embedding):
            module.weight = nn.Parameter(weight.dequantize(), requires_grad=False)
    return model
