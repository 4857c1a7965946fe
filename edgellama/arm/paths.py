"""Where the emulated aarch64 runtime lives and what a ready one holds. Torch-free."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgellama.errors import InputError

PYTHON = "usr/bin/python3.11"  # Debian bookworm's Python, the version the aarch64 wheels are chosen for
GUEST = Path(__file__).resolve().parent / "guest"  # files run by the aarch64 Python (hooks, worker)


def default_root() -> Path:
    """EDGELLAMA_ARM_ENV, else `.cache/arm64` of the checkout this package runs from (the Makefile
    builds it there; an installed wheel has no checkout, so it needs the variable)."""
    given = os.environ.get("EDGELLAMA_ARM_ENV")
    return Path(given) if given else Path(__file__).resolve().parents[2] / ".cache" / "arm64"


@dataclass(frozen=True)
class ArmEnv:
    root: Path

    @property
    def sysroot(self) -> Path:  # arm64 .debs unpacked: the guest's /lib, /usr (QEMU_LD_PREFIX)
        return self.root / "sysroot"

    @property
    def site(self) -> Path:  # the aarch64 wheels (pip --target)
        return self.root / "site"

    @property
    def stubs(self) -> Path:  # generated aarch64 stand-ins for the CUDA libraries torch links
        return self.root / "stubs"

    @property
    def stamps(self) -> Path:  # one file per finished build step
        return self.root / "stamps"

    @property
    def python(self) -> Path:
        return self.sysroot / PYTHON

    def qemu(self) -> Path | None:
        from .tools import qemu_binary

        return qemu_binary()

    def missing(self) -> str | None:
        """What is absent for running, or None when the environment is ready."""
        from .build_env import STEPS

        for step in STEPS:
            if not (self.stamps / step.name).is_file():
                return f"build step {step.name!r} has not run"
        if self.qemu() is None:
            return "qemu-aarch64-static is not installed"
        return None

    def require(self) -> "ArmEnv":
        why = self.missing()
        if why:
            raise InputError(f"--arch arm64: the emulated aarch64 runtime in {self.root} is not ready ({why}); "
                             f"build it once with `make arm-env` (about 1 GB, from the package registries)")
        return self


def arm_env() -> ArmEnv:
    return ArmEnv(default_root())
