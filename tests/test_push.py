"""`edgellama push` against a stand-in `adb`: a script on PATH, written here, that keeps the "device"
in a temp folder (shell commands run in sh with /data/local/tmp mapped into it). A second push copies
nothing, a push killed midway resumes, and each failure is one line with exit code 2."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKE_ADB = """#!{python}
import os, shutil, signal, subprocess, sys
root = os.environ["FAKE_ADB_ROOT"]
args = sys.argv[1:]
if args == ["devices"]:
    print("List of devices attached")
    for entry in filter(None, os.environ.get("FAKE_ADB_DEVICES", "emulator-5554:device").split(",")):
        serial, state = entry.split(":")
        print(f"{{serial}}\\t{{state}}")
    print()
    sys.exit(0)
assert args[0] == "-s", args
verb, rest = args[2], args[3:]
if verb == "shell":
    command = rest[0].replace("/data/local/tmp", root + "/data/local/tmp")
    if command.startswith("df ") and "FAKE_ADB_FREE_KB" in os.environ:
        print("Filesystem 1K-blocks Used Available Use% Mounted on")
        print(f"/dev/block/dm-5 1000000 1 {{os.environ['FAKE_ADB_FREE_KB']}} 1% /data")
        sys.exit(0)
    sys.exit(subprocess.run(["sh", "-c", command]).returncode)
if verb == "push":
    src, dst = rest[0], root + rest[1]
    count = root + "/.pushes"
    n = int(open(count).read()) + 1 if os.path.exists(count) else 1
    open(count, "w").write(str(n))
    if os.environ.get("FAKE_ADB_KILL_AT") == str(n):  # half the file lands, then the pusher dies
        open(dst, "wb").write(open(src, "rb").read()[: os.path.getsize(src) // 2])
        os.kill(os.getppid(), signal.SIGKILL)
        sys.exit(1)
    if os.environ.get("FAKE_ADB_FULL"):
        print(f"adb: error: failed to copy '{{src}}' to '{{rest[1]}}': remote couldn't write: No space left on device",
              file=sys.stderr)
        sys.exit(1)
    shutil.copyfile(src, dst)
    print(f"{{src}}: 1 file pushed")
    sys.exit(0)
sys.exit(f"fake adb: unsupported {{args}}")
"""


def write_bundle(folder: Path, name: str = "tiny") -> Path:
    """A bundle that follows the schema, with small made-up files (push reads only the manifest)."""
    files = {"executorch/model.pte": os.urandom(300_000), "executorch/tokenizer.model": os.urandom(2000),
             "executorch/manifest.json": b"{}", "onnxruntime/model.onnx": os.urandom(5000),
             "onnxruntime/model.onnx.data": os.urandom(200_000), "onnxruntime/tokenizer.json": b"{}"}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    common = {"tokenizer_file": "tokenizer.model", "quantization": {"scheme": "8da4w", "group_size": 32},
              "recipe": None, "threads": 0, "max_seq_len": 32, "max_context_len": 160}
    manifest = {
        "format_version": 1, "name": name, "created": "2026-12-01T15:00:00Z", "producer": "edgellama test",
        "model": {"name": "tiny", "source_sha256": "0" * 64, "source_format": "meta", "bos_id": 1, "eos_ids": [2],
                  "add_bos": True, "context_length": 160, "chat_template": None,
                  "chat_format": {"user": "[INST] {user} [/INST]", "system_user": "[INST] {system} {user} [/INST]"}},
        "generation": {"temperature": 0.0, "max_new_tokens": 64, "system_prompt": ""},
        "files": [{"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for rel, data in files.items()],
        "runtimes": [{"type": "executorch", "folder": "executorch", "model_file": "model.pte", "backend": "xnnpack",
                      "portable_ops": ["llama::custom_sdpa.out"], **common},
                     {"type": "onnxruntime", "folder": "onnxruntime", "model_file": "model.onnx", "backend": "cpu",
                      "data_file": "model.onnx.data", **{**common, "tokenizer_file": "tokenizer.json"}}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


@pytest.fixture()
def device(tmp_path, monkeypatch):
    """(bundle folder, the device's root folder, environment for the CLI with the stand-in adb on PATH)."""
    bin_dir, root = tmp_path / "bin", tmp_path / "device"
    bin_dir.mkdir()
    (root / "data" / "local" / "tmp").mkdir(parents=True)
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_ADB_ROOT": str(root)}
    return write_bundle(tmp_path / "tiny"), root, env


def push(bundle: Path, env: dict, serial: str = "emulator-5554", **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgellama.cli", "push", str(bundle), "--device", f"adb:{serial}", "--json"],
                          capture_output=True, text=True, env={**env, **extra}, timeout=120)


def remote(root: Path) -> Path:
    return root / "data" / "local" / "tmp" / "edgellama" / "tiny"


def on_device(root: Path) -> dict[str, str]:
    base = remote(root)
    return {p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*") if p.is_file()}


def expected(bundle: Path) -> dict[str, str]:
    return {p.relative_to(bundle).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in bundle.rglob("*") if p.is_file()}


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()  # progress lines ("pushing ...") may come before it
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    return errors[0]


def test_push_then_push_again_copies_nothing(device):
    bundle, root, env = device
    first = push(bundle, env)
    assert first.returncode == 0, first.stderr
    assert len(json.loads(first.stdout)["pushed"]) == 6
    assert on_device(root) == expected(bundle)
    assert all(p.stat().st_mode & 0o777 == 0o664 for p in remote(root).rglob("*") if p.is_file())
    second = push(bundle, env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["pushed"] == [] and json.loads(second.stdout)["skipped"] == 6


def test_killed_push_resumes(device):
    bundle, root, env = device
    killed = push(bundle, env, FAKE_ADB_KILL_AT="3")
    assert killed.returncode == -9
    held = on_device(root)
    assert "manifest.json" not in held  # not a bundle yet for the app
    assert len([p for p in held if not p.endswith(".partial")]) == 2
    (root / ".pushes").unlink()
    resumed = push(bundle, env)
    assert resumed.returncode == 0, resumed.stderr
    assert len(json.loads(resumed.stdout)["pushed"]) == 4  # the two finished files are kept
    assert on_device(root) == expected(bundle)


@pytest.mark.parametrize("case,extra,serial,message", [
    ("no device", {"FAKE_ADB_DEVICES": ""}, "emulator-5554", "--device adb:emulator-5554: no device attached"),
    ("wrong device", {"FAKE_ADB_DEVICES": "R58M123:device"}, "emulator-5554",
     "--device adb:emulator-5554: not attached (attached: R58M123)"),
    ("unauthorized", {"FAKE_ADB_DEVICES": "emulator-5554:unauthorized"}, "emulator-5554", "is unauthorized"),
    ("full before copying", {"FAKE_ADB_FREE_KB": "100"}, "emulator-5554", "device full: 0 MiB to copy, 0 MiB free"),
    ("full while copying", {"FAKE_ADB_FULL": "1"}, "emulator-5554", "device full while copying"),
])
def test_failures_are_one_line(device, case, extra, serial, message):
    bundle, root, env = device
    line = one_line(push(bundle, env, serial, **extra))
    assert message in line, case


def test_no_adb_on_path(device):
    bundle, root, env = device
    assert "adb: not found on PATH" in one_line(push(bundle, {**env, "PATH": "/nonexistent"}))


def test_corrupt_bundle_is_refused_before_the_device(device):
    bundle, root, env = device
    (bundle / "executorch" / "model.pte").write_bytes(b"changed")
    assert "model.pte: sha256 differs" in one_line(push(bundle, env))
    assert not remote(root).exists()
