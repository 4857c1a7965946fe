"""The decoder layer's derivative written out (edgellama/tangent.py) against torch.func.jvp of the
float layer: exact algebra with float matmuls, a few percent off with the int8 ones it runs."""
from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, jvp

from edgellama.model import ModelArgs, TransformerBlock, rope_cos_sin
from edgellama.tangent import LINEARS, Int8Weight, LayerTangent

T = 40


def layer_and_state(n_heads, n_kv_heads):
    torch.manual_seed(0)
    args = ModelArgs(dim=128, n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads, vocab_size=256, hidden_dim=320)
    layer = TransformerBlock(args).eval()
    for p in layer.parameters():
        p.data.normal_(0, 0.08)
    for norm in (layer.attention_norm, layer.ffn_norm):
        norm.weight.data = 1 + 0.2 * torch.randn_like(norm.weight)
    positions = torch.arange(T)
    rope = (*rope_cos_sin(positions, args.head_dim, 10000.0), positions)
    return layer, torch.randn(1, T, args.dim), rope


def reference(layer, x, rope, tangents):
    return torch.cat([jvp(lambda y: layer(y, *rope), (x,), (t[None],))[1] for t in tangents]).detach()


class FloatWeight:
    def __init__(self, *weights):
        self.weight = torch.cat(weights)

    def __call__(self, x):
        return x @ self.weight.T


@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["mha", "gqa"])
def test_float_forward_is_the_layers_own(heads):
    layer, x, rope = layer_and_state(*heads)
    tangent = LayerTangent(layer, x, *rope)
    with torch.no_grad():
        assert torch.equal(tangent.middle, layer.attend(x, *rope))
        assert torch.equal(tangent.output, layer(x, *rope))


def with_float_matmuls(tangent: LayerTangent) -> LayerTangent:
    att, ffn = tangent.layer.attention, tangent.layer.feed_forward
    tangent.weights = {"qkv": FloatWeight(att.wq.weight, att.wk.weight, att.wv.weight), "o": FloatWeight(att.wo.weight),
                       "gate_up": FloatWeight(ffn.w1.weight, ffn.w3.weight), "down": FloatWeight(ffn.w2.weight)}
    return tangent


@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["mha", "gqa"])
def test_derivative_with_float_matmuls_is_jvps(heads):
    layer, x, rope = layer_and_state(*heads)
    tangents = torch.randn(3, T, x.shape[-1]) * torch.rand(3, T, 1)  # rows of unlike sizes
    tangent = with_float_matmuls(LayerTangent(layer, x, *rope))
    torch.testing.assert_close(tangent(tangents), reference(layer, x, rope, tangents), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["mha", "gqa"])
def test_starts_are_the_derivative_along_each_weight_change(heads):
    layer, x, rope = layer_and_state(*heads)
    changes = {path: 0.01 * torch.randn_like(layer.get_submodule(path).weight) for path in LINEARS}
    got = with_float_matmuls(LayerTangent(layer, x, *rope)).starts(
        {path: layer.get_submodule(path).weight + change for path, change in changes.items()})
    for i, (path, change) in enumerate(changes.items()):
        weight = layer.get_submodule(path).weight
        _, want = jvp(lambda w: functional_call(layer, {f"{path}.weight": w}, (x, *rope)), (weight,), (change,))
        torch.testing.assert_close(got[i:i + 1], want.detach(), rtol=1e-4, atol=1e-6, msg=path)


@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["mha", "gqa"])
def test_derivative_with_int8_matmuls_is_close(heads):
    layer, x, rope = layer_and_state(*heads)
    tangents = torch.randn(3, T, x.shape[-1]) * torch.rand(3, T, 1)
    got, want = LayerTangent(layer, x, *rope)(tangents), reference(layer, x, rope, tangents)
    change, want_change = got - tangents, want - tangents  # the residual path is exact: judge the rest
    assert float((change - want_change).norm() / want_change.norm()) < 0.04


def test_int8_weight_rounds_rows_and_channels():
    torch.manual_seed(0)
    w, x = torch.randn(96, 64), torch.randn(5, 7, 64) * torch.logspace(-3, 3, 7)[:, None]  # rows 1e6 apart
    got, want = Int8Weight(w[:32], w[32:])(x), x @ w.T
    assert got.shape == (5, 7, 96)
    per_row = (got - want).norm(dim=-1) / want.norm(dim=-1)
    assert float(per_row.max()) < 0.02  # one scale per row: small rows keep their precision
