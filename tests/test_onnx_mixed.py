"""The default ONNX recipe (onnx-4w-a8-mixed): mixed precision chosen by measured sensitivity, written
as ONNX Runtime runs it fast (8-bit and 4-bit MatMulNBits, all at accuracy_level 4), and judged by
parity's own limits for level 4 (the weight-only eager twin does not model int8 activations)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import export_tiny, run_cli


def linears_of(node_name: str) -> list[str]:
    """The model linears behind a MatMulNBits node (q|k|v and w1|w3 are fused when they share a width)."""
    prefix, _, leaf = node_name.rpartition(".")
    fused = {"wqkv": ["wq", "wk", "wv"], "w13": ["w1", "w3"]}
    return [f"{prefix}.{x}" for x in fused[leaf]] if leaf in fused else [node_name]


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory, tiny_meta):
    """The tiny model exported for --target onnx with no --recipe: the target's default recipe."""
    return export_tiny(tmp_path_factory, tiny_meta, "tiny-onnx-default", "--target", "onnx")


def test_default_onnx_recipe_keeps_sensitive_linears_at_8bit_level_4(default_onnx):
    import onnx

    manifest = json.loads((default_onnx / "manifest.json").read_text())
    assert manifest["recipe"] == "onnx-4w-a8-mixed"
    keep = set(manifest["quantization"]["keep_8bit"])
    assert keep and manifest["quantization"]["output"] == "8w"
    proto = onnx.load(str(default_onnx / "model.onnx"), load_external_data=False)
    attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}  # noqa: E731
    nodes = {n.name: attrs(n) for n in proto.graph.node if n.op_type == "MatMulNBits"}
    assert {a["accuracy_level"] for a in nodes.values()} == {4}
    assert nodes.pop("output")["bits"] == 8
    eight = {lin for name, a in nodes.items() if a["bits"] == 8 for lin in linears_of(name)}
    four = {lin for name, a in nodes.items() if a["bits"] == 4 for lin in linears_of(name)}
    assert eight == keep and not four & keep and len(eight | four) == 7 * manifest["model"]["n_layers"]
    # the tied embedding reads the 8-bit head's table
    gather = next(n for n in proto.graph.node if n.op_type == "GatherBlockQuantized")
    assert attrs(gather)["bits"] == 8
    assert manifest["runtime"]["accuracy_level"] == 4 and manifest["runtime"]["thresholds"] == "4w-a8"


def test_default_onnx_runs_near_its_twin(default_onnx):
    """Level 4 is not the twin's arithmetic (int8 activations), so the logits differ, but the argmax
    mostly agrees (onnx-4w-a8 on this model: 0.89-0.95 teacher-forced)."""
    from edgellama.runtime.open import open_artifact
    from edgellama.runtime.session import EagerSession
    from edgellama.runtime.twin import twin_for

    session, manifest = open_artifact(default_onnx)
    twin = EagerSession(twin_for(manifest), None, manifest["runtime"]["max_context_len"])
    ids = session.tokenizer.encode("The tower is 324 metres tall , about the same height as an 81 @-@ storey "
                                   "building , and the tallest structure in Paris .")
    a, b = session.prefill(ids), twin.prefill(ids)
    assert (a.argmax(-1) == b.argmax(-1)).mean() >= 0.8 and np.abs(a - b).max() > 1e-3


def test_level_4_artifact_is_judged_by_the_4w_a8_limits(default_onnx):
    """parity reads the manifest's `thresholds` key: the twin limits applied are 4w-a8's, not 4w's
    (top-1 >= 0.99, which level 4 cannot meet)."""
    code, out, err = run_cli("parity", default_onnx, "--windows", "1", "--gen-tokens", "8", "--max-prompts", "2", "--json")
    assert code in (0, 1), err
    limits = {(x["metric"], x["bound"]): x["value"] for x in json.loads(out)["references"]["twin"]["limits"]}
    assert limits == {("top1_agreement", "min"): 0.88, ("kl_mean", "max"): 0.035, ("kl_p99", "max"): 0.2}
