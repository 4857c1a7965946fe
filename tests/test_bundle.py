"""`edgellama bundle` on the tiny model's .pte and ONNX exports: the manifest follows
edgellama/android/bundle.schema.json; a flipped byte in any bundled file, artifacts of two models, and a
.pte that needs an operator the stock ExecuTorch Android AAR has no kernel for are refused (exit 2,
one line, nothing left behind)."""
from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli

SCHEMA = Path(__file__).resolve().parents[1] / "edgellama" / "android" / "bundle.schema.json"


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_bundle_manifest_follows_the_schema(tiny_bundle):
    import jsonschema

    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(manifest)
    assert manifest["name"] == "tiny"
    assert [r["type"] for r in manifest["runtimes"]] == ["executorch", "onnxruntime"]
    for f in manifest["files"]:
        data = (tiny_bundle / f["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(tiny_bundle).as_posix() for p in tiny_bundle.rglob("*") if p.is_file()}
    assert on_disk - listed == {"manifest.json"}
    pte = manifest["runtimes"][0]
    assert f"{pte['folder']}/{pte['model_file']}" in listed and f"{pte['folder']}/{pte['tokenizer_file']}" in listed
    # The tiny model's attention runs on ExecuTorch's LLM custom ops, outside the XNNPACK delegate.
    assert "llama::custom_sdpa.out" in pte["portable_ops"] and "llama::update_cache.out" in pte["portable_ops"]
    model = manifest["model"]
    assert model["context_length"] == 160 and model["eos_ids"] == [2] and model["bos_id"] == 1
    # Llama 2 [INST] format (the tiny model has no template), one placeholder each.
    assert model["chat_format"] == {"user": "[INST] {user} [/INST]",
                                    "system_user": "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"}


def test_bundle_as_zip_holds_one_folder(tmp_path, tiny_pte):
    code, _, err = run_cli("bundle", tiny_pte, "--out", tmp_path / "pte-only.zip", "--name", "tiny-pte")
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "pte-only.zip") as z:
        names = z.namelist()
        manifest = json.loads(z.read("tiny-pte/manifest.json"))
    assert all(n.startswith("tiny-pte/") for n in names)
    assert {f"tiny-pte/{f['path']}" for f in manifest["files"]} | {"tiny-pte/manifest.json"} == set(names)
    assert leftovers(tmp_path) == []


def flipped_copy(artifact: Path, name: str, dest: Path) -> Path:
    copy = dest / artifact.name
    shutil.copytree(artifact, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize("which,name", [("pte", "model.pte"), ("pte", "tokenizer.model"), ("onnx", "model.onnx"),
                                        ("onnx", "model.onnx.data"), ("onnx", "genai_config.json"),
                                        ("onnx", "tokenizer.json")])
def test_flipped_byte_is_refused(tmp_path, tiny_pte, tiny_onnx, which, name):
    good = {"pte": tiny_pte, "onnx": tiny_onnx}
    bad = flipped_copy(good[which], name, tmp_path)
    others = [a for k, a in good.items() if k != which]
    out = tmp_path / "out"
    line = one_line_error(*run_cli("bundle", bad, *others, "--out", out)[::2])
    assert f"{bad / name}: sha256 differs" in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_operator_outside_the_stock_aar_is_refused(tmp_path, tiny_pte):
    """A .pte whose program calls aten::i0 (no kernel in the AAR: not a core ATen op, let through with
    an exception list) in place of the tiny model's: bundle names the operator."""
    import torch
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    from edgellama.export.artifact import write_manifest

    class NeedsI0(torch.nn.Module):
        def forward(self, x):
            return torch.special.i0(x)

    program = to_edge_transform_and_lower(
        torch.export.export(NeedsI0(), (torch.randn(4),)),
        compile_config=EdgeCompileConfig(_core_aten_ops_exception_list=[torch.ops.aten.i0.default])).to_executorch()
    artifact = tmp_path / "needs-i0"
    shutil.copytree(tiny_pte, artifact)
    (artifact / "model.pte").write_bytes(program.buffer)
    manifest = json.loads((artifact / "manifest.json").read_text())
    write_manifest(artifact, {k: v for k, v in manifest.items() if k != "files"})  # hashes match again
    out = tmp_path / "out"
    line = one_line_error(*run_cli("bundle", artifact, "--out", out)[::2])
    assert "model.pte: runs aten::i0.out outside the XNNPACK delegate" in line and "stock ExecuTorch Android AAR" in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_artifacts_of_two_models_are_refused(tmp_path, tiny_pte, tiny_onnx):
    other = tmp_path / "other-model"
    shutil.copytree(tiny_onnx, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["source"]["files"][0]["sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    line = one_line_error(*run_cli("bundle", tiny_pte, other, "--out", tmp_path / "out")[::2])
    assert f"{other}: exported from another checkpoint" in line


def test_parity_summary_is_carried(tmp_path, tiny_pte):
    metrics = {"top1_agreement": 0.99, "kl_mean": 0.001, "ppl_ratio": 1.01, "kl_p99": 0.01}
    report = tmp_path / "parity.json"
    report.write_text(json.dumps({"artifact": str(tiny_pte), "verdict": "PASS", "created": "2026-12-01 15:00 UTC",
                                  "references": {"twin": {"metrics": metrics}, "fp32": {"metrics": metrics}}}))
    code, out, err = run_cli("bundle", tiny_pte, "--out", tmp_path / "b", "--parity", report, "--json")
    assert code == 0, err
    parity = json.loads(out)["runtimes"][0]["parity"]
    assert parity["verdict"] == "PASS" and parity["references"]["twin"] == {k: metrics[k] for k in ("top1_agreement", "kl_mean", "ppl_ratio")}
    line = one_line_error(*run_cli("bundle", tiny_pte, "--out", tmp_path / "c", "--parity", tmp_path / "nope.json")[::2])
    assert "nope.json: not a parity.json" in line


def test_damaged_artifact_manifest_is_refused(tmp_path, tiny_pte):
    copy = tmp_path / "damaged"
    shutil.copytree(tiny_pte, copy)
    (copy / "manifest.json").write_text((copy / "manifest.json").read_text()[:-40])
    line = one_line_error(*run_cli("bundle", copy, "--out", tmp_path / "out")[::2])
    assert f"{copy / 'manifest.json'}: not valid JSON" in line


def test_existing_out_and_bad_name_are_refused(tmp_path, tiny_pte):
    (tmp_path / "taken").mkdir()
    assert "already exists" in one_line_error(*run_cli("bundle", tiny_pte, "--out", tmp_path / "taken")[::2])
    assert "--name a b" in one_line_error(*run_cli("bundle", tiny_pte, "--out", tmp_path / "x", "--name", "a b")[::2])
