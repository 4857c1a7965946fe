"""The command line and environment that run the guest's Python under QEMU."""
from __future__ import annotations

import os

from .paths import GUEST, ArmEnv


def guest_command(env: ArmEnv, cpu: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) running `python3.11 ARGS` of the sysroot on an emulated `cpu`.
    binfmt_misc is not assumed (containers rarely mount it): QEMU is called explicitly."""
    qemu = env.qemu()
    argv = [str(qemu), "-cpu", cpu, str(env.python), *args]
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
        "QEMU_LD_PREFIX": str(env.sysroot),  # the guest's /lib and /usr: its loader, libc, Python
        "LD_LIBRARY_PATH": str(env.stubs),  # the CUDA stand-ins (torch's own libs come by RPATH)
        "PYTHONPATH": f"{GUEST}{os.pathsep}{env.site}",  # sitecustomize first, then the wheels
        "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1",
    }
    return argv, environ
