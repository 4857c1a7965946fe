"""Mixed precision by measured sensitivity: which linears to keep at 8-bit.

A linear's sensitivity is KL(float model || float model with only that linear at int4), averaged
over the tokens of one calibration window. All linears are measured in a single pass over the
layers, so the model can be streamed: every linear of layer i starts a perturbed copy of the
hidden state, which then travels beside the float one through the later layers. The most
sensitive linears per extra byte are then promoted to 8-bit until the size budget is spent."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .schemes import weight_bytes

TOKENS = 256  # one window: enough to rank the linears (v_proj first on SmolLM2), cheap to carry
BATCH = 8  # perturbed hidden states advanced per layer call


class Sensitivity:
    def __init__(self, embedded: torch.Tensor):
        self.hidden = embedded  # [1, T, dim], the float model's hidden state
        self.names: list[str] = []
        self.perturbed: list[torch.Tensor] = []  # [1, T, dim] per measured linear

    @torch.no_grad()
    def step(self, layer: nn.Module, int4_weights: dict[str, torch.Tensor], *rope) -> None:
        """Advance through one float layer; `int4_weights` maps the layer's linears (their module
        path inside `layer`, and the full name) to their dequantized int4 weights."""
        for i in range(0, len(self.perturbed), BATCH):
            batch = torch.cat(self.perturbed[i:i + BATCH])
            self.perturbed[i:i + BATCH] = list(layer(batch, *rope).split(1))
        for (path, full_name), weight in int4_weights.items():
            linear = layer.get_submodule(path)
            original = linear.weight
            linear.weight = nn.Parameter(weight, requires_grad=False)
            try:
                self.perturbed.append(layer(self.hidden, *rope))
            finally:
                linear.weight = original
            self.names.append(full_name)
        self.hidden = layer(self.hidden, *rope)

    @torch.no_grad()
    def finish(self, norm: nn.Module, output: nn.Module) -> dict[str, float]:
        reference = F.log_softmax(output(norm(self.hidden)).float(), -1)
        p = reference.exp()
        return {name: float((p * (reference - F.log_softmax(output(norm(h)).float(), -1))).sum(-1).mean())
                for name, h in zip(self.names, self.perturbed)}


def choose_8bit(sensitivity: dict[str, float], shapes: list[tuple[str, int, int]], group_size: int,
                budget: float) -> list[str]:
    """Greedy knapsack: promote linears from int4 (groups of `group_size`) to int8 per-channel in
    order of KL per extra byte while the linears' total stays within `budget` x all-int4."""
    size4 = {n: weight_bytes(o, k, 4, group_size) for n, o, k in shapes}
    extra = {n: weight_bytes(o, k, 8, 0) - size4[n] for n, o, k in shapes}
    room = (budget - 1.0) * sum(size4.values())
    chosen = []
    for name in sorted(sensitivity, key=lambda n: -sensitivity[n] / extra[n]):
        if extra[name] <= room:
            chosen.append(name)
            room -= extra[name]
    return sorted(chosen, key=[n for n, _, _ in shapes].index)
