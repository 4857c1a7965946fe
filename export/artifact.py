"""The artifact folder: model file(s) + tokenizer + manifest.json, written atomically.

An export writes into a hidden temporary folder beside the destination and renames it into place
only when every file and the manifest are written, so an interrupted export never leaves a folder
that looks complete."""
from __future__ import annotations

import errno
import hashlib
import json
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from edgellama.errors import InputError

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_destination(out: Path, force: bool, needed_bytes: int) -> None:
    if out.exists() and not force:
        raise InputError(f"{out}: already exists; choose another --out or pass --force to replace it")
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    if free < needed_bytes:
        raise InputError(f"{parent}: {free / 2**20:.0f} MiB free but the export needs about {needed_bytes / 2**20:.0f} MiB; "
                         f"free some space or choose another --out")


@contextmanager
def staging(out: Path, force: bool):
    """Yields a temporary folder; on success it replaces `out`, on any failure it is removed."""
    out = out.resolve()
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.exists() and force:
            shutil.rmtree(out)
        tmp.rename(out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise InputError(f"{out.parent}: no space left on the device while writing the export; "
                             f"nothing was kept — free some space or choose another --out") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_manifest(folder: Path, manifest: dict) -> dict:
    files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {**manifest, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: Path, verify: bool = True) -> dict:
    """The manifest, after checking every listed file's hash (a mismatch is an error)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise InputError(f"{path}: missing; this folder is not an edgellama artifact (export it with `edgellama export`)")
    manifest = json.loads(path.read_text())
    if verify:
        for name, info in manifest.get("files", {}).items():
            f = Path(folder) / name
            if not f.exists():
                raise InputError(f"{f}: listed in {MANIFEST} but missing; export the artifact again")
            if sha256(f) != info["sha256"]:
                raise InputError(f"{f}: sha256 differs from {MANIFEST}; the file was modified or corrupted — export it again")
    return manifest
