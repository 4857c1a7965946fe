"""Checks on output paths (`export --out`, `parity --report`), made before any long work so that a
read-only filesystem or a path under a file is refused in a second, not after the whole run."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import InputError


def check_can_create(path: Path, option: str) -> None:
    """`path` (a folder, existing or not) can be created or written into: the nearest existing
    ancestor must be a folder where we can actually create something (probed: os.access says yes to
    root on a read-only mount's 0555 folder and no to nothing else useful)."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: is a file, not a folder; choose another {option}")
    ancestor = path.parent  # where the folder (or an export's staging folder beside it) is made
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} {path}: {ancestor} is a file, so nothing can be created under it; "
                         f"choose another {option}")
    try:
        Path(tempfile.mkdtemp(prefix=".edgellama-probe-", dir=ancestor)).rmdir()
    except OSError as e:
        raise InputError(f"{option} {path}: cannot write in {ancestor} ({e.strerror}); choose another {option}") from None
