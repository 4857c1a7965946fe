"""Mixed precision by measured sensitivity: which linears to keep at 8-bit.

A linear's sensitivity is KL(float model || float model with only that linear at int4), averaged
over the tokens of one calibration window. All linears are measured in a single pass over the
layers, so the model can be streamed: every linear of layer i starts a perturbation of the hidden
state, which then travels beside the float state through the later layers. That is linears x
layers^2 / 2 layer steps (3,500 at Llama 2 7B: most of the default recipe's time), so on CPUs with
int8 dot-product units (AVX512-VNNI, AMX) each perturbation travels linearized: as the tangent of the
float model at the float state (forward-mode derivative, written out in tangent.py), whose matmuls
take int8 operands there (~4.6x faster than fp32, ~1.9x bf16). Rounding is then relative to the
perturbation, not to the hidden state as it would be for a low-precision copy of the perturbed state.
Between layers the tangents wait in bf16, half the memory of fp32. At the output the tangent is
added to the float state, the change it makes to the normed state goes through the (linear) head in
int8 too, and the KL is taken in fp32. Elsewhere (`linearized=False`) the perturbed states themselves
travel in fp32: without VNNI torch's int8 matmul is slower than fp32 (AVX2, Zen 3: 2048x4096 @
4096x11008 in 44 s against 1.5 s), and fp32 tangents would cost what the states cost.

The most sensitive linears per extra byte are then promoted to 8-bit until the size budget is spent.
Linearized KLs are within 0.96-1.06x of the exact ones on SmolLM2 (5th-95th percentile,
bench/results/sensitivity_variants-smollm2-int8-starts.md), enough to rank but not to settle the
linears near the cut, so those (`near_cut`) are measured again exactly in a second, short pass
(`layerwise.remeasure`): on SmolLM2 the 12 nearest already give the exact pass's choice."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .schemes import weight_bytes
from .tangent import Int8Weight, LayerTangent

TOKENS = 256  # one window: enough to rank the linears (v_proj first on SmolLM2), cheap to carry
WINDOW = 0  # which calibration window it reads
BATCH = 8  # perturbations advanced per layer call
TANGENT_DTYPE = torch.bfloat16  # between layers


def int8_units() -> bool:
    """x86 CPUs with AVX512-VNNI or AMX; other CPUs take the exact pass (see the module docstring)."""
    return torch.cpu._is_vnni_supported() or torch.cpu._is_amx_tile_supported()


LINEARIZED = int8_units()
REMEASURED = 16  # linears nearest the cut measured again exactly (see the module docstring)


class Sensitivity:
    def __init__(self, embedded: torch.Tensor, linearized: bool = LINEARIZED):
        self.hidden = embedded  # [1, T, dim], the float model's hidden state
        self.linearized = linearized
        self.names: list[str] = []
        self.perturbed: list[torch.Tensor] = []  # per measured linear: [1, T, dim] state, or its bf16 tangent
        self.inputs: list[torch.Tensor] = []  # the float state entering each layer, for `layerwise.remeasure`

    @torch.no_grad()
    def step(self, layer: nn.Module, int4_weights: dict[str, torch.Tensor], *rope) -> None:
        """Advance through one float layer; `int4_weights` maps the layer's linears (their module
        path inside `layer`, and the full name) to their dequantized int4 weights."""
        advance = self._linearized if self.linearized else self._exact
        hidden, starts = advance(layer, {path: weight for (path, _), weight in int4_weights.items()}, rope)
        self.perturbed += starts
        self.names += [name for _, name in int4_weights]
        self.inputs.append(self.hidden)
        self.hidden = hidden

    def _linearized(self, layer: nn.Module, weights: dict[str, torch.Tensor], rope: tuple):
        """Tangents through the layer's derivative at the float state (tangent.py), which also gives the
        float forward and, in one batch, the tangents the layer's own int4 linears start."""
        tangent = LayerTangent(layer, self.hidden, *rope)
        self._carry(lambda tangents: tangent(tangents.float()).to(TANGENT_DTYPE))
        return tangent.output, [start.to(TANGENT_DTYPE) for start in tangent.starts(weights).split(1)]

    def _exact(self, layer: nn.Module, weights: dict[str, torch.Tensor], rope: tuple):
        """fp32 states through the float layer; each of the layer's linears starts one: the layer's
        output with that linear at int4 (from the middle for the feed-forward's: the attention half
        is unchanged)."""
        self._carry(lambda states: layer(states, *rope))
        middle = layer.attend(self.hidden, *rope)
        starts = [with_weight(layer.feed, layer.get_submodule(path), weight, middle) if path.startswith("feed_forward.")
                  else with_weight(layer, layer.get_submodule(path), weight, self.hidden, *rope)
                  for path, weight in weights.items()]
        return layer.feed(middle), starts

    def _carry(self, through) -> None:
        for i in range(0, len(self.perturbed), BATCH):
            self.perturbed[i:i + BATCH] = through(torch.cat(self.perturbed[i:i + BATCH])).split(1)

    @torch.no_grad()
    def finish(self, norm: nn.Module, output: nn.Module) -> dict[str, float]:
        normed = norm(self.hidden)
        logits = output(normed).float()
        reference = F.log_softmax(logits, -1)
        p = reference.exp()
        if self.linearized:  # the head is linear: only the change of the normed state goes through it, in int8
            head = Int8Weight(output.weight)
        kl = {}
        for name, perturbed in zip(self.names, self.perturbed):
            if self.linearized:
                change = norm(self.hidden + perturbed.float()) - normed
                perturbed_logits = logits + head(change)
            else:
                perturbed_logits = output(norm(perturbed)).float()
            kl[name] = float((p * (reference - F.log_softmax(perturbed_logits, -1))).sum(-1).mean())
        self.perturbed = []  # measured: free them before anything else runs
        return kl


def with_weight(f, linear: nn.Linear, weight: torch.Tensor, *args) -> torch.Tensor:
    """`f(*args)` with `linear` using `weight` for this one call."""
    original = linear.weight
    linear.weight = nn.Parameter(weight, requires_grad=False)
    try:
        return f(*args)
    finally:
        linear.weight = original


def choose_8bit(sensitivity: dict[str, float], shapes: list[tuple[str, int, int]], group_size: int,
                budget: float) -> list[str]:
    """Greedy knapsack: promote linears from int4 (groups of `group_size`) to int8 per-channel in
    order of KL per extra byte while the linears' total stays within `budget` x all-int4."""
    chosen, _, _ = _greedy(sensitivity, shapes, group_size, budget)
    return sorted(chosen, key=[n for n, _, _ in shapes].index)


def near_cut(sensitivity: dict[str, float], shapes: list[tuple[str, int, int]], group_size: int,
             budget: float, count: int = REMEASURED) -> list[str]:
    """The `count` linears whose KL per extra byte is nearest (as a ratio) the cut, the first linear
    `choose_8bit` leaves out; none when the budget takes every linear."""
    chosen, order, per_byte = _greedy(sensitivity, shapes, group_size, budget)
    taken = set(chosen)
    cut = next((n for n in order if n not in taken), None)
    if cut is None:
        return []
    log_cut = math.log(max(per_byte[cut], 1e-30))  # KLs of ~0 may round below zero
    return sorted(per_byte, key=lambda n: abs(math.log(max(per_byte[n], 1e-30)) - log_cut))[:count]


def _greedy(sensitivity, shapes, group_size, budget) -> tuple[list[str], list[str], dict[str, float]]:
    """The names `choose_8bit` promotes (in the order taken), every linear in the order considered
    (most KL per extra byte first), and that KL per extra byte."""
    size4 = {n: weight_bytes(o, k, 4, group_size) for n, o, k in shapes}
    extra = {n: weight_bytes(o, k, 8, 0) - size4[n] for n, o, k in shapes}
    per_byte = {n: sensitivity[n] / extra[n] for n in sensitivity}
    room = (budget - 1.0) * sum(size4.values())
    order = sorted(per_byte, key=lambda n: -per_byte[n])
    chosen = []
    for name in order:
        if extra[name] <= room:
            chosen.append(name)
            room -= extra[name]
    return chosen, order, per_byte
