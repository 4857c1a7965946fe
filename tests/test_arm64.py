"""Issue 17: `edgellama parity --arch arm64` runs a .pte (or an ONNX artifact) in its runtime's aarch64
build under user-mode QEMU and adds a third comparison, the same artifact on this x86 machine.

The input checks (unknown or refused CPU profile, --cpu without --arch, an unknown --arch, an
environment not built) answer before anything loads, so they run in the default suite
without the emulated runtime. The rest needs it (`make arm-env`, ~1 GB) and minutes of emulation:
marked slow, and skipped, saying so, where .cache/arm64 is not built."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import run_cli
from test_parity import export_scaled_fault, failure_lines, tiny_thresholds  # noqa: F401  (a fixture)


def arm_env_missing() -> str | None:
    from edgellama.arm.paths import arm_env

    return arm_env().missing()


needs_arm_env = pytest.mark.skipif(bool(arm_env_missing()), reason=f"aarch64 runtime not built "
                                   f"({arm_env_missing()}); run `make arm-env`")


def one_error_line(code: int, err: str, progress: bool = False) -> str:
    """The one `error:` line of an exit-2 run; with `progress`, progress lines may come before it."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, (code, err)
    assert progress or lines == errors, err
    return errors[0]


# --- acceptance 4: bad input, one line, exit 2, before any model loads (no arm env needed)


@pytest.mark.parametrize("cpu, words", [("max", ("--cpu max", "refused", "SME", "max-nosme")),
                                        ("cortex-a57", ("--cpu cortex-a57", "SIGILL", "neoverse-n1")),
                                        ("pentium", ("--cpu pentium", "unknown", "neoverse-n1, max-nosme"))])
def test_unsupported_cpu_profile_is_refused(tiny_pte, cpu, words):
    code, _, err = run_cli("parity", tiny_pte, "--arch", "arm64", "--cpu", cpu)
    line = one_error_line(code, err)
    assert all(w in line for w in words), line


def test_missing_environment_says_how_to_build_it(tiny_pte, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELLAMA_ARM_ENV", str(tmp_path / "not-built"))
    code, _, err = run_cli("parity", tiny_pte, "--arch", "arm64")
    line = one_error_line(code, err)
    assert "not-built" in line and "make arm-env" in line and "--arch arm64" in line, line


@pytest.mark.parametrize("args, words", [(("--cpu", "neoverse-n1"), ("--cpu neoverse-n1", "needs --arch")),
                                         (("--arch", "riscv64"), ("--arch riscv64", "unknown", "arm64"))])
def test_arch_options_checked(tiny_pte, args, words):
    code, _, err = run_cli("parity", tiny_pte, *args)
    line = one_error_line(code, err)
    assert all(w in line for w in words), line


def test_arm_package_imports_without_torch():
    code = ("import sys, edgellama.arm.session, edgellama.arm.build_env, edgellama.arm.stubs; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- with the emulated runtime (slow)


def arm_parity(artifact, *args):
    return run_cli("parity", artifact, "--arch", "arm64", "--windows", "1", "--max-prompts", "2",
                   "--gen-tokens", "16", *args)


TITLES = ("vs fp32 (quality)", "vs same-recipe twin (fidelity)", "arm vs x86 (same artifact)")


@pytest.fixture
def wide_table(monkeypatch):
    """The terminal table at 200 columns, so that its titles are not wrapped."""
    from edgellama import cli

    monkeypatch.setattr(cli.console, "width", 200)


@pytest.mark.slow
@needs_arm_env
def test_tiny_pte_on_arm64_prints_three_comparisons(tiny_pte, tiny_thresholds, wide_table):
    code, out, err = arm_parity(tiny_pte, "--thresholds", tiny_thresholds)
    assert code == 0, out + err
    assert all(title in out for title in TITLES), out
    assert "on arm64 (QEMU -cpu neoverse-n1)" in out
    # the three columns hold numbers, and arm differs from x86 (else nothing ran on ARM kernels)
    top1 = next(line for line in out.splitlines() if "top-1 agreement" in line)
    assert top1.count("✓") == 3, top1
    maxdiff = next(line for line in out.splitlines() if "max |Δlogit|" in line)
    assert float(maxdiff.split("│")[-2]) > 0, maxdiff


@pytest.mark.slow
@needs_arm_env
def test_tiny_onnx_on_arm64_matches_x86(tiny_onnx, tiny_thresholds, wide_table):
    """Item 4: ONNX Runtime's aarch64 wheel runs the same way (no torch, no stubs). At accuracy
    level 1 MatMulNBits computes in fp32, so arm and x86 agree to float rounding."""
    code, out, err = arm_parity(tiny_onnx, "--thresholds", tiny_thresholds, "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert set(result["references"]) == {"fp32", "twin", "x86"}
    x86 = result["references"]["x86"]["metrics"]
    assert x86["top1_agreement"] == 1.0 and 0 < x86["max_abs_logit_diff"] < 1e-3, x86


@pytest.mark.slow
@needs_arm_env
def test_scaled_weight_is_caught_on_arm64(tiny_meta, tmp_path, monkeypatch, tiny_thresholds):
    """Acceptance 3: one layer's int4 scales x1.5 in the .pte fails on arm64 as on x86
    (test_parity.test_scaled_weight_is_caught), against the twin and against fp32's limits too."""
    artifact = export_scaled_fault(tiny_meta, tmp_path / "scaled", monkeypatch)
    code, out, err = arm_parity(artifact, "--thresholds", tiny_thresholds, "--json")
    assert code == 1, out + err
    lines = failure_lines(err)
    assert any(line.startswith("FAIL fidelity (vs twin): ") for line in lines), err
    result = json.loads(out)
    # the fault is in the artifact, so both runtimes carry it: arm and x86 still agree
    assert result["references"]["x86"]["metrics"]["top1_agreement"] > \
        result["references"]["twin"]["metrics"]["top1_agreement"]


@pytest.mark.slow
@needs_arm_env
def test_qemu_crash_is_one_line(tiny_pte):
    """Acceptance 4, a real crash: an Armv8.0 CPU, passed unchecked, dies with SIGILL in `import torch`."""
    code, _, err = arm_parity(tiny_pte, "--cpu", "qemu:cortex-a57")
    line = one_error_line(code, err, progress=True)
    assert "died while importing ExecuTorch and loading model.pte" in line and "SIGILL" in line, line


@pytest.mark.slow
@needs_arm_env
def test_smollm2_default_pte_on_arm64(smollm2_pte, wide_table):
    """Acceptance 1: the SmolLM2 default .pte, end to end on arm64, with the three comparisons
    (measured 2026-12-01: arm vs x86 top-1 0.942, vs twin 0.930, vs fp32 0.849; ~23 min on 2 loaded cores)."""
    code, out, err = run_cli("parity", smollm2_pte, "--arch", "arm64")
    assert code in (0, 1), err
    assert all(title in out for title in TITLES), out
    assert code == 0, out + err
