"""The Android app in android_demo/, checked here without a phone: `make android-check` (aapt, javac
against the API stubs, JVM unit tests) passes on bundles `edgellama bundle` made and refuses their
flipped-byte copies; it fails on copies of the app with a wrong API call or a bad resource; and the
Python schema and the Java reader name the same manifest fields."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "android_demo"
CHECK = DEMO / "tools" / "check.sh"
JAVA_CORE = DEMO / "app" / "src" / "main" / "java" / "org" / "edgellama" / "demo" / "core"


def android_check(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(CHECK)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CHECK_OUT": str(tmp_path / "check-build"), **env})


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_android_check_on_bundles_from_edgellama(tmp_path, tiny_bundle):
    """Acceptance 1 (Java side) and 3: the JVM tests verify the bundle and refuse a flipped byte in
    the .pte, the ONNX weights and the tokenizer."""
    shutil.copytree(tiny_bundle, tmp_path / "bundles" / "good" / "tiny")
    for i, rel in enumerate(["executorch/model.pte", "onnxruntime/model.onnx.data", "executorch/tokenizer.model"]):
        case = tmp_path / "bundles" / f"flipped-{i}"
        shutil.copytree(tiny_bundle, case / "tiny")
        flip(case / "tiny" / rel)
        (case / "expected.txt").write_text(rel)
    done = android_check(tmp_path, EDGELLAMA_TEST_BUNDLES=str(tmp_path / "bundles"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^OK \(\d+ tests\)$", done.stdout, re.M), done.stdout
    assert "verified 1 bundle(s) from edgellama" in done.stdout
    assert "refused 3 bundle(s) from edgellama with a flipped byte" in done.stdout


BREAKAGES = {
    # LlmModule.generate(String, int, LlmCallback, boolean) called with its arguments swapped.
    "wrong ExecuTorch call": ("java/org/edgellama/demo/engine/ExecuTorchEngine.java",
                              "module.generate(prompt, seqLen, new Budget(callback, maxNewTokens, module), false)",
                              "module.generate(prompt, new Budget(callback, maxNewTokens, module), seqLen, false)",
                              "ExecuTorchEngine.java"),
    # onnxruntime-genai's Generator has no generate(); the loop must call generateNextToken().
    "wrong GenAI call": ("java/org/edgellama/demo/engine/OnnxGenAiEngine.java", "generator.generateNextToken();",
                         "generator.generate();", "OnnxGenAiEngine.java"),
    "missing string resource in code": ("java/org/edgellama/demo/MainActivity.java", "R.string.no_bundles",
                                        "R.string.no_such_text", "MainActivity.java"),
    "missing string resource in a layout": ("res/layout/activity_chat.xml", "@string/send", "@string/sendd",
                                            "activity_chat.xml"),
}


@pytest.mark.parametrize("case", BREAKAGES)
def test_android_check_fails_on_a_broken_copy(tmp_path, case):
    """Acceptance 3: the check catches a wrong API call (against the stubs) and a bad resource."""
    rel, old, new, named = BREAKAGES[case]
    app = tmp_path / "app"
    shutil.copytree(DEMO / "app", app, ignore=shutil.ignore_patterns("build"))
    source = app / "src" / "main" / rel
    text = source.read_text()
    assert text.count(old) == 1, f"{rel} no longer holds {old!r}; update this test"
    source.write_text(text.replace(old, new))
    done = android_check(tmp_path, APP_DIR=str(app))
    assert done.returncode != 0, case
    assert named in done.stdout + done.stderr, done.stdout + done.stderr


def schema_fields(node) -> set[str]:
    """Every property name the schema defines, at any depth (if/then branches included)."""
    names = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= schema_fields(value)
    elif isinstance(node, list):
        for value in node:
            names |= schema_fields(value)
    return names


def test_python_and_java_name_the_same_manifest_fields():
    """Acceptance 2: the schema edgellama validates against, and the constants the app reads with."""
    schema = json.loads((REPO / "edgellama" / "android" / "bundle.schema.json").read_text())
    java = (JAVA_CORE / "ManifestFields.java").read_text()
    constants = dict(re.findall(r'public static final String (\w+) = "([^"]+)";', java))
    assert schema_fields(schema) == set(constants.values())
    # ...and the readers use each of them.
    readers = (JAVA_CORE / "BundleManifest.java").read_text() + (JAVA_CORE / "RuntimeEntry.java").read_text()
    unused = [name for name in constants if not re.search(rf"\b{name}\b", readers)]
    assert unused == []
    # The Python side cannot write a field the app does not know: the top level, model, generation,
    # files and runtime entries allow no other properties (the quantization spec is the export's own).
    items = schema["properties"]
    assert schema["additionalProperties"] is False
    assert all(node["additionalProperties"] is False for node in
               (items["model"], items["generation"], items["files"]["items"], items["runtimes"]["items"]))
