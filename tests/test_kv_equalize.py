"""Key-channel equalization (edgellama/kv_equalize.py): exact in arithmetic, evens out the key
channels, and touches no integer of the quantized weights."""
from __future__ import annotations

import copy

import pytest
import torch

import edgellama
from checkpoints import write_meta
from edgellama.kv_equalize import equalize_keys, pair_ranges
from edgellama.layerwise import quantize_model
from edgellama.quant import QuantSpec


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory, tiny_hf):
    """The tiny model, 4-bit, with one RoPE pair of layer 0's keys 30x the rest (as real LLMs have)."""
    model = edgellama.load_model(write_meta(tmp_path_factory.mktemp("eq"), tiny_hf.state_dict(), 1))
    hd = model.args.head_dim
    with torch.no_grad():
        model.layers[0].attention.wk.weight[[3, 3 + hd // 2]] *= 30
    return quantize_model(model, QuantSpec(scheme="4w", group_size=32))


def test_equalization_keeps_the_logits_and_the_integers(outlier_model):
    windows = [torch.randint(3, 384, (48,), generator=torch.Generator().manual_seed(n)).tolist() for n in range(2)]
    tokens = torch.tensor([windows[0]])
    model = copy.deepcopy(outlier_model)
    with torch.no_grad():
        before = model(tokens)
        ints = [layer.attention.wk.weight.qdata.clone() for layer in model.layers]
        spread = equalize_keys(model, windows)
        after = model(tokens)
    assert torch.allclose(after, before, atol=1e-4 * before.abs().max().item())
    assert all(torch.equal(layer.attention.wk.weight.qdata, q) for layer, q in zip(model.layers, ints))
    assert spread["key_spread_before"] > 3 and spread["key_spread_after"] < 1.5


def test_layer_zero_keys_are_even_after(outlier_model):
    windows = [torch.randint(3, 384, (48,), generator=torch.Generator().manual_seed(5)).tolist()]
    model = copy.deepcopy(outlier_model)
    keys_before = pair_ranges(model, windows)[0][0]
    equalize_keys(model, windows)
    keys_after = pair_ranges(model, windows)[0][0]
    assert keys_before.amax() / keys_before.median() > 10  # the planted outlier
    assert keys_after.amax() / keys_after.median() < 1.5
