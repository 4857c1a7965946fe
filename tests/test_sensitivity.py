"""The sensitivity pass behind mixed precision: the exact measure is the KL of the model with one
linear at int4, the default linearized measure (int8 tangents) agrees with it, and the linears near
the 8-bit cut are measured again exactly."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from edgellama.layerwise import linears, remeasure, rope_for
from edgellama.model import ModelArgs, Transformer
from edgellama.quant_math import dequantize, symmetric_rtn
from edgellama.schemes import linear_shapes
from edgellama.sensitivity import Sensitivity, choose_8bit, near_cut

TOKENS = 48


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = Transformer(ModelArgs(dim=128, n_layers=6, n_heads=4, n_kv_heads=2, vocab_size=256, hidden_dim=320)).eval()
    for p in m.parameters():
        p.data.normal_(0, 0.08)
    for layer in m.layers[::3]:  # some layers much more sensitive than others, as in real models
        layer.feed_forward.w2.weight.data *= 4
    m.output.weight.data *= 10  # peaked next-token distributions, as trained models have: KLs ~1e-4
    return m


def int4_weights(model):
    return [{(path, f"layers.{i}.{path}"): dequantize(*symmetric_rtn(lin.weight.data, 4, 32))
             for path, lin in linears(layer)} for i, layer in enumerate(model.layers)]


def measure(model, weights, linearized, keep=None):
    tokens = torch.randint(0, 256, (1, TOKENS), generator=torch.Generator().manual_seed(1))
    s = Sensitivity(model.tok_embeddings(tokens), linearized)
    for layer, w in zip(model.layers, weights):
        s.step(layer, w, *rope_for(model, TOKENS))
    if keep is not None:
        keep.append(s)
    return s.finish(model.norm, model.output), tokens


def kl(reference, logits):
    ref = F.log_softmax(reference, -1)
    return float((ref.exp() * (ref - F.log_softmax(logits, -1))).sum(-1).mean())


@torch.no_grad()
def test_exact_measure_is_the_kl_of_the_whole_model_with_one_linear_at_int4(model):
    weights = int4_weights(model)
    exact, tokens = measure(model, weights, False)
    reference = model(tokens)
    assert len(exact) == 7 * len(model.layers)
    for w in weights:
        for (path, name), int4 in w.items():
            linear = model.get_submodule(name)
            original = linear.weight
            linear.weight = torch.nn.Parameter(int4, requires_grad=False)
            try:
                assert exact[name] == pytest.approx(kl(reference, model(tokens)), rel=1e-3, abs=1e-9), name
            finally:
                linear.weight = original


def ranks(values: dict[str, float], names: list[str]) -> torch.Tensor:
    order = sorted(names, key=lambda n: values[n])
    return torch.tensor([order.index(n) for n in names], dtype=torch.float64)


@torch.no_grad()
def test_linearized_measure_agrees_with_the_exact_one(model):
    weights = int4_weights(model)
    exact, _ = measure(model, weights, False)
    linear, _ = measure(model, weights, True)
    assert sorted(linear) == sorted(exact)
    # alike where it matters: the linears whose KL is above rounding noise
    names = [n for n in exact if exact[n] > 0.05 * max(exact.values())]
    assert all(linear[n] == pytest.approx(exact[n], rel=0.15) for n in names), \
        {n: (exact[n], linear[n]) for n in names if linear[n] != pytest.approx(exact[n], rel=0.15)}
    rho = float(torch.corrcoef(torch.stack([ranks(exact, names), ranks(linear, names)]))[0, 1])
    assert rho > 0.98
    shapes = linear_shapes(model.args)
    assert choose_8bit(exact, shapes, 32, 1.15) == choose_8bit(linear, shapes, 32, 1.15)


@torch.no_grad()
def test_the_linears_near_the_cut_are_measured_again_exactly(model):
    weights = int4_weights(model)
    exact, _ = measure(model, weights, False)
    first_pass = []
    linear, _ = measure(model, weights, True, first_pass)
    shapes = linear_shapes(model.args)
    names = near_cut(linear, shapes, 32, 1.15, count=6)
    chosen = set(choose_8bit(linear, shapes, 32, 1.15))
    assert len(names) == 6 and chosen & set(names) and set(names) - chosen, "they straddle the cut"
    int4 = {name: w for layer in weights for (_, name), w in layer.items()}
    again = remeasure(names, first_pass[0].inputs, lambda i: model.layers[i], int4.__getitem__, model,
                      rope_for(model, TOKENS), None)
    assert sorted(again) == sorted(names)
    assert all(again[n] == pytest.approx(exact[n], rel=1e-4, abs=1e-9) for n in names), \
        {n: (exact[n], again[n]) for n in names}
    assert near_cut(linear, shapes, 32, 3.0) == [], "a budget that takes every linear leaves no cut"
