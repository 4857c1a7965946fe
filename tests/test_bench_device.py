"""`edgellama bench BUNDLE --device adb:SERIAL` against test_push's stand-in `adb`, with stand-ins for the
three phone commands it runs in `adb shell`: `pm` (is the demo app installed), `am start` (the app's
BenchmarkActivity, which here writes tests/data/benchmark_results.json: the shape the app's
BenchmarkReport writes, its numbers made up, as no phone was at hand) and `run-as` (the app's files).
The happy path prints that file's figures; no adb, no device, app missing and timeout are one line, exit 2."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_push import FAKE_ADB, one_line, write_bundle

RECORDED = Path(__file__).parent / "data" / "benchmark_results.json"

PHONE_COMMANDS = {
    "pm": """#!/bin/sh
[ -n "$FAKE_APP_MISSING" ] || echo "package:org.edgellama.demo"
""",
    "am": """#!/bin/sh
echo "Starting: Intent { cmp=org.edgellama.demo/.BenchmarkActivity }"
echo "$@" > "$FAKE_ADB_ROOT/am-args"
[ -n "$FAKE_APP_HANG" ] || cp "$FAKE_RECORDED" "$FAKE_ADB_ROOT/app/files/benchmark_results.json"
echo "Status: ok"
""",
    "run-as": """#!/bin/sh
shift
cd "$FAKE_ADB_ROOT/app" && exec "$@"
""",
}


@pytest.fixture()
def phone(tmp_path):
    bin_dir, root = tmp_path / "bin", tmp_path / "device"
    bin_dir.mkdir()
    (root / "data" / "local" / "tmp").mkdir(parents=True)
    (root / "app" / "files").mkdir(parents=True)
    for name, text in {"adb": FAKE_ADB.format(python=sys.executable), **PHONE_COMMANDS}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_ADB_ROOT": str(root), "FAKE_RECORDED": str(RECORDED)}
    return write_bundle(tmp_path / "tiny"), root, env


def bench(bundle: Path, env: dict, *args: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgellama.cli", "bench", str(bundle), "--device", "adb:emulator-5554",
                           "--runs", "3", *args], capture_output=True, text=True, env={**env, **extra}, timeout=120)


def test_happy_path_prints_the_apps_figures(phone):
    bundle, root, env = phone
    done = bench(bundle, env, "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    recorded = json.loads(RECORDED.read_text())
    assert record["machine"] == {"kind": "android", **recorded["device"]}
    (r,) = record["results"]
    assert r["runtime"] == "executorch" and len(r["runs"]) == 3
    assert r["decode_tok_s"]["median"] == recorded["median"]["decode_tok_s"]
    assert r["prefill_tok_s"]["median"] == recorded["median"]["prefill_tok_s"]
    assert r["ttft_s"]["median"] == pytest.approx(recorded["median"]["ttft_ms"] / 1000)
    assert r["peak_rss_bytes"] == recorded["peak_memory_kb"] * 1024
    assert r["load_s"]["median"] == pytest.approx(recorded["load_ms"] / 1000)
    # the bundle was pushed, and the activity started with the options
    assert (root / "data/local/tmp/edgellama/tiny/manifest.json").is_file()
    args = (root / "am-args").read_text().split()
    assert "--ei" in args and args[args.index("gen_len") + 1] == "128" and args[args.index("runs") + 1] == "3"


def test_the_table_names_the_phone(phone):
    bundle, root, env = phone
    done = bench(bundle, env)
    assert done.returncode == 0, done.stderr
    assert "Pixel 8" in done.stdout and "Google Tensor G3" in done.stdout


@pytest.mark.parametrize("case,extra,message", [
    ("no adb", {"PATH": "/nonexistent"}, "adb: not found on PATH"),
    ("no device", {"FAKE_ADB_DEVICES": ""}, "--device adb:emulator-5554: no device attached"),
    ("app missing", {"FAKE_APP_MISSING": "1"}, "the demo app (org.edgellama.demo) is not installed"),
    ("timeout", {"FAKE_APP_HANG": "1"}, "no files/benchmark_results.json after 3 s"),
])
def test_failures_are_one_line(phone, case, extra, message):
    bundle, root, env = phone
    assert message in one_line(bench(bundle, env, "--timeout", "3", **extra)), case


def test_an_artifact_folder_is_not_a_bundle(phone, tmp_path):
    bundle, root, env = phone
    assert "pass a bundle folder" in one_line(bench(tmp_path, env))


def test_the_recorded_file_has_the_apps_fields():
    """The recorded file names exactly the fields the app's Java code puts into benchmark_results.json."""
    java = Path(__file__).parents[1] / "android_demo" / "app" / "src" / "main" / "java" / "org" / "edgellama" / "demo"
    puts = {name: set(re.findall(r'\.put\("([a-z_]+)"', (java / name).read_text()))
            for name in ("core/BenchmarkReport.java", "core/GenerationStats.java", "BenchmarkActivity.java")}
    recorded = json.loads(RECORDED.read_text())
    medians = {"load_ms", "ttft_ms", "prefill_tok_s", "decode_tok_s"}
    # BenchmarkReport writes the top level and the medians; BenchmarkActivity adds load_ms and the device
    assert set(recorded) | medians == puts["core/BenchmarkReport.java"] | {"load_ms"}
    assert set(recorded["median"]) == medians
    assert all(set(run) == puts["core/GenerationStats.java"] for run in recorded["runs"])
    assert set(recorded["device"]) | {"load_ms", "error"} == puts["BenchmarkActivity.java"]
