"""The text the defaults use, shipped inside the package (WikiText-2, CC BY-SA 3.0: see
data/wikitext-2/README.md): `valid.txt` calibrates, `test.txt` evaluates.

A manifest records packaged text by a reference (`edgellama:wikitext-2/valid.txt`) rather than by
its path, so an artifact made by one installation can be checked by another."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

PREFIX = "edgellama:"
CALIBRATION = "wikitext-2/valid.txt"
EVALUATION = "wikitext-2/test.txt"


def packaged(name: str) -> Path:
    return Path(str(resources.files("edgellama") / "data" / name))


def calibration_text() -> Path:
    return packaged(CALIBRATION)


def evaluation_text() -> Path:
    return packaged(EVALUATION)


def reference(path: Path) -> str:
    """How a manifest names `path`: a packaged reference when it is one of the packaged texts."""
    path = Path(path).resolve()
    for name in (CALIBRATION, EVALUATION):
        if path == packaged(name).resolve():
            return PREFIX + name
    return str(path)


def resolve(ref: str) -> Path:
    """The file a manifest's reference names."""
    return packaged(ref.removeprefix(PREFIX)) if ref.startswith(PREFIX) else Path(ref)
