"""Streamed exports (issue 16, items 1 and 5): quantized layers parked in a spill file and rebuilt one
at a time for the ONNX writer give the same weights and the same files as the in-memory path, and
the export's peak memory grows with one layer's size, not with the number of layers."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

import edgellama
import edgellama.sensitivity
from checkpoints import random_meta, write_meta
from conftest import export_tiny
from edgellama.layerwise import quantize_checkpoint, quantize_model
from edgellama.quant import QuantSpec
from edgellama.spill import Spill
from test_quant import calibration_ids, quantized_state


@pytest.mark.parametrize("mapped", [False, True])
def test_spill_gives_back_the_integers_and_scales_it_was_given(tmp_path, mapped):
    g = torch.Generator().manual_seed(0)
    parked = {"int4": (torch.randint(-8, 8, (6, 64), generator=g, dtype=torch.int8), torch.rand(6, 2), 4),
              "int4 odd width": (torch.randint(-8, 8, (3, 5), generator=g, dtype=torch.int8), torch.rand(3, 1), 4),
              "int8": (torch.randint(-128, 128, (5, 7), generator=g, dtype=torch.int8), torch.rand(5, 1), 8)}
    spill = Spill(tmp_path, mapped)
    for name, entry in parked.items():
        spill.put(name, *entry)
    spill.put("int8", *parked["int8"])  # a second put (a promoted linear) replaces the first
    got = {name: spill.get(name) for name in parked}
    spill.evict()  # mapped: the pages go, the values stay readable from the file
    for name, (q, scale, bits) in parked.items():
        q2, scale2, bits2 = got[name]
        assert torch.equal(q, q2) and torch.equal(scale, scale2) and bits == bits2, name
    assert list(tmp_path.iterdir()) == []  # unnamed: nothing to clean up, nothing lands in an artifact
    spill.close()


@pytest.fixture(scope="module")
def tiny_meta1(tmp_path_factory, tiny_hf):
    return write_meta(tmp_path_factory.mktemp("s"), tiny_hf.state_dict(), 1)


@pytest.mark.parametrize("algo,budget,keep,linearized", [
    ("scale-search", 1.0, [], False), ("scale-search", 1.3, [], False), ("rtn", 1.3, [], False),
    ("rtn", 1.3, [], True),  # the linearized pass, whose cut is re-measured from the spill or the kept floats
    ("rtn", 1.0, ["layers.1.attention.wv", "layers.2.feed_forward.w2"], False)])
def test_spilled_layers_equal_the_in_memory_ones(tiny_meta1, tmp_path, monkeypatch, algo, budget, keep, linearized):
    from edgellama.formats import open_checkpoint

    monkeypatch.setattr(edgellama.sensitivity, "LINEARIZED", linearized)  # the default depends on the CPU
    spec = lambda: QuantSpec(scheme="4w", group_size=32, algo=algo, size_budget=budget, keep_8bit=list(keep))  # noqa: E731
    streamed_spec, whole_spec, said = spec(), spec(), []
    streamed = quantize_checkpoint(open_checkpoint(tiny_meta1), streamed_spec, calibration_ids(), said.append,
                                   spill_dir=tmp_path)
    whole = quantize_model(edgellama.load_model(tiny_meta1), whole_spec, calibration=calibration_ids())
    assert streamed_spec.keep_8bit == whole_spec.keep_8bit and bool(whole_spec.keep_8bit) == (budget > 1 or bool(keep))
    assert any("re-measuring" in line for line in said) == linearized
    assert "layers.0.attention.wq.weight" not in dict(streamed.named_parameters())  # nothing built yet
    assert len(list(streamed.layers)) == 3  # iterating builds (and keeps) every layer
    a, b = quantized_state(streamed), quantized_state(whole)
    assert a.keys() == b.keys()
    for name in a:
        assert all(torch.equal(x, y) for x, y in zip(a[name], b[name])), name
    streamed.layers[1] = torch.nn.Module()  # a consumer releasing a layer frees it
    assert not any(n.startswith("layers.1.") for n, _ in streamed.named_parameters())


def test_streamed_onnx_export_writes_the_same_files_as_the_in_memory_one(tmp_path_factory, tiny_meta, monkeypatch):
    """The default ONNX recipe (scale-search, linears promoted to 8-bit by sensitivity) both ways."""
    from edgellama.export.targets import TARGETS

    streamed = export_tiny(tmp_path_factory, tiny_meta, "streamed", "--target", "onnx")
    monkeypatch.setitem(TARGETS, "onnx", dataclasses.replace(TARGETS["onnx"], streams_layers=False))
    whole = export_tiny(tmp_path_factory, tiny_meta, "whole", "--target", "onnx")
    manifests = [json.loads((f / "manifest.json").read_text()) for f in (streamed, whole)]
    assert manifests[0]["quantization"] == manifests[1]["quantization"] and manifests[0]["quantization"]["keep_8bit"]
    assert manifests[0]["files"] == manifests[1]["files"]  # every file, hashed: model.onnx and its data included
    assert sorted(p.name for p in streamed.iterdir()) == sorted(p.name for p in whole.iterdir())


def test_streamed_xnnpack_export_writes_the_same_pte_as_the_in_memory_one(tmp_path_factory, tiny_meta, tiny_pte,
                                                                           monkeypatch):
    """The default recipe: tiny_pte is streamed (its layers' int8 weights mapped from the spill)."""
    from edgellama.export.targets import TARGETS

    monkeypatch.setitem(TARGETS, "xnnpack", dataclasses.replace(TARGETS["xnnpack"], streams_layers=False))
    whole = export_tiny(tmp_path_factory, tiny_meta, "whole-pte", "--recipe", "xnnpack-8da4w")
    manifests = [json.loads((f / "manifest.json").read_text()) for f in (tiny_pte, whole)]
    assert manifests[0]["quantization"] == manifests[1]["quantization"] and manifests[0]["quantization"]["keep_8bit"]
    assert manifests[0]["files"] == manifests[1]["files"]  # model.pte hashed


# Peak memory. Width 1024: a layer holds 12.6 M weights, which the quantized model before streaming kept
# one byte each (torchao's int4 layout); 2 and 8 layers of that width differ by 6 such layers.
WIDTH, LAYER_WEIGHTS = 1024, 4 * 1024 * 1024 + 3 * 1024 * 2816

MEASURE = """
import json, os, sys
import numpy, onnx_ir, torch, torchao  # noqa: imported before the baseline, as every export imports them
from edgellama import cli
import edgellama.export.onnx_graph, edgellama.layerwise  # noqa

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

if os.environ.get("WHOLE_TARGET"):  # that target exports from the whole model in memory, as before streaming
    import dataclasses
    from edgellama.export.targets import TARGETS
    name = os.environ["WHOLE_TARGET"]
    TARGETS[name] = dataclasses.replace(TARGETS[name], streams_layers=False)

def restart_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) restarts from here

if os.environ.get("PEAK_FROM"):  # the peak of the stages from this one on (e.g. lowering: "torch.export")
    import edgellama.export
    export = edgellama.export.export

    def export_watching_stages(*args, progress, **kwargs):
        def stage(name):
            if name == os.environ["PEAK_FROM"]:
                restart_peak()
            progress(name)
        return export(*args, progress=stage, **kwargs)
    edgellama.export.export = export_watching_stages

restart_peak()
base = status("VmRSS:")
sys.argv = ["edgellama", "export", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps({"base": base, "peak": status("VmHWM:")}))
"""


def export_peak(model, out, recipe: str = "onnx-4w", whole: str = "", peak_from: str = "") -> int:
    """Peak RSS above the imported runtime of one `edgellama export --recipe RECIPE --quant-algo rtn`,
    in a fresh process (torch's allocations are invisible to tracemalloc); with `peak_from`, the peak
    of that stage and the later ones only."""
    # A fixed mmap threshold: glibc's own rises to the largest freed block (up to 32 MiB), after which this
    # width's 4-11 MiB tensors come from the heap, and its fragmentation (peaks 40-90 MiB apart between runs
    # of one export, measured) would decide the peak instead of what the code holds. A 7B layer's tensors
    # (64-180 MiB) are above any threshold and always mmapped.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20), "WHOLE_TARGET": whole, "PEAK_FROM": peak_from}
    res = subprocess.run([sys.executable, "-c", MEASURE, "--model", str(model), "--recipe", recipe,
                          "--quant-algo", "rtn", "--size-budget", "1.0", "--group-size", "128", "--max-seq-len", "32",
                          "--max-context-len", "128", "--out", str(out)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    measured = json.loads(res.stdout.strip().splitlines()[-1])
    return measured["peak"] - measured["base"]


def test_export_peak_grows_with_one_layer_not_with_the_layer_count(tmp_path, sp_model):
    two = export_peak(random_meta(tmp_path / "two", WIDTH, 2, sp_model), tmp_path / "two.onnx")
    eight = export_peak(random_meta(tmp_path / "eight", WIDTH, 8, sp_model), tmp_path / "eight.onnx")
    growth = (eight - two) / LAYER_WEIGHTS
    print(f"export peak above imports: 2 layers {two / 2**20:.0f} MiB, 8 layers {eight / 2**20:.0f} MiB, "
          f"growth {growth:.2f} quantized layers")
    assert growth < 2, f"8 layers peak {growth:.2f} quantized layers above 2 layers"


def test_streamed_xnnpack_lowering_does_not_hold_the_int8_weights(tmp_path, sp_model):
    """XNNPACK's lowering needs the whole program, so a streamed export maps the layers' int8 weights from
    the spill and pages each partition's out once it is packed: the packed weights (half a byte per
    weight) stay until the .pte is written, the int8 ones (a byte per weight) are never all in memory.
    The same export with every layer in memory holds them while lowering. Measured from torch.export on:
    at these widths the quantization stage's float layers (4 bytes per weight) set the overall peak."""
    from edgellama.model import ffn_hidden_dim

    width, layers = 2 * WIDTH, 4
    model = random_meta(tmp_path / "model", width, layers, sp_model)
    int8_bytes = layers * (4 * width * width + 3 * width * ffn_hidden_dim(width, 256, None))
    streamed, whole = (export_peak(model, tmp_path / f"{how}.pte", "xnnpack-8da4w", whole="xnnpack" * (how == "whole"),
                                   peak_from="torch.export") for how in ("streamed", "whole"))
    print(f"lowering peak above imports: streamed {streamed / 2**20:.0f} MiB, whole {whole / 2**20:.0f} MiB, "
          f"int8 weights {int8_bytes / 2**20:.0f} MiB")
    assert whole - streamed > 0.6 * int8_bytes
