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


def read_text(path: Path, option: str, limit: int | None = None) -> str:
    """A user's plain-text file (--text, --calibration), refused when it is not UTF-8 text: binary or
    Latin-1 bytes would be scored (or calibrated on) as replacement characters, silently."""
    from .errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{option} {path}: no such file; pass a plain-text file (e.g. WikiText-2 test.txt)")
    data = path.read_bytes()[: None if limit is None else limit * 4]
    if b"\0" in data:
        raise InputError(f"{option} {path}: holds binary data (NUL bytes), not text; pass a plain-text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 3:  # (a cut at `limit` may split the last character)
            raise InputError(f"{option} {path}: not UTF-8 text (byte {e.start}); convert it to UTF-8 "
                             f"(e.g. iconv -f latin1 -t utf-8)") from None
        text = data[: e.start].decode("utf-8")
    return text if limit is None else text[:limit]
