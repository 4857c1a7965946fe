"""PyPI's aarch64 wheels of the runtimes (ExecuTorch with torch, ONNX Runtime), at the versions installed on the host (the project's pins:
the .pte format and the kernels must be the ones the artifact was exported with), unpacked with
pip --target for the guest's Python 3.11. No dependency resolution: the list is what executorch's
runtime and torch import, measured."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata

# Pinned by pyproject.toml; the host's installed versions are those pins.
RUNTIME = ("executorch", "torch", "numpy", "onnxruntime")
# Pure-Python (or small C) modules that `import torch` and executorch's runtime import.
SUPPORT = ("filelock", "flatbuffers", "fsspec", "jinja2", "markupsafe", "mpmath", "networkx", "packaging",
           "pyyaml", "ruamel.yaml", "sympy", "tabulate", "typing_extensions", "setuptools")
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64", "manylinux_2_17_aarch64")


def pins() -> list[str]:
    """name==version for every wheel, versions taken from the host's installed distributions where
    it has them (so the guest runs what the exporter ran), else the newest for Python 3.11."""
    out = []
    for name in RUNTIME + SUPPORT:
        try:
            # "+cpu": the host's local build label; PyPI's aarch64 wheel carries none
            out.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            if name in RUNTIME:
                raise RuntimeError(f"{name} is not installed on the host; run `make .venv/.installed` first") from None
            out.append(name)
    return out


def install_wheels(env, say) -> str:
    wanted = pins()
    say(f"pip install --target {env.site} (aarch64, Python 3.11): {' '.join(wanted[:len(RUNTIME)])} and "
        f"{len(wanted) - len(RUNTIME)} small ones, ~490 MB")
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--upgrade", "--target", str(env.site),
                    "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", *platforms,
                    "--disable-pip-version-check", "--no-warn-conflicts", "--progress-bar", "off", *wanted], check=True)
    return " ".join(wanted)
