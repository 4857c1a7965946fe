"""`parity --arch arm64`'s checks before any model loads: a known CPU profile and a built environment."""
from __future__ import annotations

from .paths import arm_env
from .profiles import qemu_cpu


def prepare(cpu: str | None) -> None:
    qemu_cpu(cpu)  # an unknown or refused profile: input error naming the choices
    arm_env().require()  # absent: input error saying `make arm-env`
