"""`make arm-env`: build the emulated aarch64 runtime into .cache/arm64, one checked step at a time.

Each step writes a stamp (what it made) when it succeeds, and a step whose stamp exists is skipped,
so an interrupted build resumes where it stopped; a failed step is retried on the next run.
`--redo STEP` forgets a step and everything after it."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from .paths import ArmEnv, arm_env


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    run: Callable  # (env, say) -> text for the stamp


def check_runtime(env: ArmEnv, say) -> str:
    """The guest imports ExecuTorch (with torch) and ONNX Runtime (about 20 s under QEMU)."""
    from .launch import guest_command
    from .paths import GUEST
    from .profiles import qemu_cpu

    argv, environ = guest_command(env, qemu_cpu(None), str(GUEST / "worker.py"), "--check")
    done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-5:]
        print("\n".join(tail), file=sys.stderr)
        raise RuntimeError(f"the guest could not import the runtime: {tail[-1] if tail else f'exit {done.returncode}'}")
    return done.stderr.strip().splitlines()[-1]


def _tools(env, say):
    from .tools import install_tools
    return install_tools(env, say)


def _sysroot(env, say):
    from .sysroot import build_sysroot
    return build_sysroot(env, say)


def _wheels(env, say):
    from .wheels import install_wheels
    return install_wheels(env, say)


def _stubs(env, say):
    from .stubs import build_stubs
    return build_stubs(env, say)


STEPS = (
    Step("tools", "host tools: qemu-user-static, binutils-aarch64-linux-gnu (apt)", _tools),
    Step("sysroot", "arm64 Debian sysroot with Python 3.11 (apt download, dpkg -x)", _sysroot),
    Step("wheels", "aarch64 wheels at the project's pins (pip --target)", _wheels),
    Step("stubs", "stub libraries for the CUDA pieces of the aarch64 torch wheel", _stubs),
    Step("check", "the guest imports the runtimes: ExecuTorch (with torch), ONNX Runtime", check_runtime),
)


def build(env: ArmEnv, redo: str | None = None) -> None:
    env.stamps.mkdir(parents=True, exist_ok=True)
    if redo:
        names = [s.name for s in STEPS]
        for step in STEPS[names.index(redo):]:
            (env.stamps / step.name).unlink(missing_ok=True)
    for n, step in enumerate(STEPS, 1):
        stamp = env.stamps / step.name
        head = f"[{n}/{len(STEPS)}] {step.name}: {step.what}"
        if stamp.is_file():
            print(f"{head} — done before, skipped", flush=True)
            continue
        print(head, flush=True)
        started = time.perf_counter()
        made = step.run(env, lambda msg: print(f"      {msg}", flush=True))
        stamp.write_text(made + "\n")
        print(f"      ok in {time.perf_counter() - started:.0f} s", flush=True)
    print(f"aarch64 runtime ready in {env.root}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgellama.arm.build_env", description=__doc__.splitlines()[0])
    parser.add_argument("--redo", choices=[s.name for s in STEPS], help="rebuild from this step on")
    args = parser.parse_args(argv)
    env = arm_env()
    try:
        build(env, args.redo)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
        print(f"arm-env: failed ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}); "
              f"fix that and run `make arm-env` again: finished steps are kept", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
