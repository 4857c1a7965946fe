"""Host tools from Debian: qemu-user-static (runs aarch64 Linux programs on x86) and the aarch64
cross assembler and linker (binutils-aarch64-linux-gnu, for the stub libraries). Installed with
apt-get as the machine's own tools, like any other Debian package the project needs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PACKAGES = {"qemu-aarch64-static": "qemu-user-static", "aarch64-linux-gnu-as": "binutils-aarch64-linux-gnu",
            "aarch64-linux-gnu-ld": "binutils-aarch64-linux-gnu"}


def qemu_binary() -> Path | None:
    found = shutil.which("qemu-aarch64-static")
    return Path(found) if found else None


def qemu_version() -> str:
    out = subprocess.run([str(qemu_binary()), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def missing_tools() -> list[str]:
    return [tool for tool in PACKAGES if shutil.which(tool) is None]


def install_tools(env, say) -> str:
    missing = missing_tools()
    if missing:
        packages = sorted({PACKAGES[t] for t in missing})
        say(f"apt-get install {' '.join(packages)}")
        # binfmt-support is only recommended, and binfmt_misc is not mounted in containers anyway:
        # QEMU is always called explicitly, so recommends are skipped.
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], check=True)
    still = missing_tools()
    if still:
        raise RuntimeError(f"{', '.join(still)} still missing after apt-get install")
    return qemu_version()
