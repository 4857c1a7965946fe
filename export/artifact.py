"""The artifact folder: model file(s) + tokenizer + manifest.json, written atomically.

An export writes into a hidden temporary folder beside the destination and renames it into place
only when every file and the manifest are written, so an interrupted export never leaves a folder
that looks complete."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from edgellama.errors import InputError
from edgellama.paths import check_can_create

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_destination(out: Path, force: bool, needed_bytes: int, source: Path) -> None:
    """Before any long work: `out` may be created, or (with --force) replaced. --force replaces only an
    edgellama artifact (a folder whose manifest.json verifies) or an empty folder, never the source
    checkpoint, the working directory, or a folder that holds either."""
    out = out.resolve()
    if out.exists():
        if not force and not _empty_dir(out):
            raise InputError(f"{out}: already exists; choose another --out or pass --force to replace it")
        for what, path in (("the source checkpoint", Path(source).resolve()), ("the working directory", Path.cwd().resolve())):
            if path == out or out in path.parents:
                raise InputError(f"--out {out}: holds {what} ({path}); --force never replaces that — choose another --out")
        if not out.is_dir():
            raise InputError(f"--out {out}: is a file, not an artifact folder; --force replaces artifact folders only — "
                             f"choose another --out")
        if not _empty_dir(out):
            try:
                read_manifest(out)
            except InputError as e:
                raise InputError(f"--out {out}: not an edgellama artifact that verifies ({e}); --force replaces only "
                                 f"those — choose another --out, or remove the folder yourself") from None
    check_can_create(out, "--out")
    parent = out.parent
    while not parent.exists():  # nothing is created before the work succeeds
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < needed_bytes:
        raise InputError(f"{parent}: {free / 2**20:.0f} MiB free but the export needs about {needed_bytes / 2**20:.0f} MiB; "
                         f"free some space or choose another --out")


def _disk_full(folder: Path) -> bool:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize < (1 << 20)


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(parent: Path, name: str) -> None:
    """Staging folders of exports to `parent/name` whose process is gone (killed mid-export)."""
    for stale in [*parent.glob(f".{name}.partial-*"), *parent.glob(f".{name}.replaced-*")]:
        pid = stale.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def staging(out: Path, force: bool):
    """Yields a temporary folder; on success it replaces `out`, on any failure it is removed.
    Its name carries this process's id, so a later export can tell a dead export's leftovers."""
    out = out.resolve()
    remove_stale_staging(out.parent, out.name)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.parent / f".{out.name}.partial-{tag}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        old = None
        if out.exists() and (force or _empty_dir(out)):
            old = out.parent / f".{out.name}.replaced-{tag}"
            out.rename(old)  # the old artifact stays whole until the new one is in place
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        # Some writers (onnx_ir's) raise a bare OSError("... requested and 0 written") on a full disk.
        if e.errno == errno.ENOSPC or _disk_full(out.parent):
            raise InputError(f"{out.parent}: no space left on the device while writing the export; "
                             f"nothing was kept — free some space or choose another --out") from None
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise InputError(f"--out {out}: another export finished there first; choose another --out or pass --force") from None
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


def model_files(manifest: dict) -> list[str]:
    """Every file the runtime loads: the model file, its external data, any extra model files a target
    names (`runtime.model_files`, e.g. one context binary per graph), and the tokenizer. Each must be
    listed and hashed, so a manifest cannot vouch for an artifact by listing less."""
    runtime = manifest.get("runtime") if isinstance(manifest.get("runtime"), dict) else {}
    tokenizer = manifest.get("tokenizer") if isinstance(manifest.get("tokenizer"), dict) else {}
    extra = runtime.get("model_files") or []
    names = [runtime.get("model_file"), runtime.get("data_file"), *(extra if isinstance(extra, list) else [extra]),
             tokenizer.get("file")]
    return [n for n in names if n is not None]


def _damaged(path: Path, what: str) -> InputError:
    return InputError(f"{path}: {what}; the artifact is damaged — export it again")


def read_manifest(folder: Path, verify: bool = True) -> dict:
    """The manifest, after checking that it lists every file the runtime loads and that every listed
    file's hash matches (anything else is an error)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise InputError(f"{path}: missing; this folder is not an edgellama artifact (export it with `edgellama export`)")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _damaged(path, f"not valid JSON ({str(e)[:100]})") from None
    if not isinstance(manifest, dict):
        raise _damaged(path, f"holds a JSON {type(manifest).__name__}, not a manifest object")
    for key in ("runtime", "tokenizer", "options", "quantization"):
        if not isinstance(manifest.get(key), dict):
            raise _damaged(path, f"has no {key!r} section")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise _damaged(path, "lists no files with their sha256, so nothing in the folder can be verified")
    needed = model_files(manifest)
    if not manifest["runtime"].get("model_file") or not manifest["tokenizer"].get("file"):
        raise _damaged(path, "names no model file (runtime.model_file) or no tokenizer file (tokenizer.file)")
    for name in needed:
        if not isinstance(name, str) or name not in files:
            raise _damaged(path, f"the runtime loads {name!r} but \"files\" does not list it with its sha256")
    for name, info in files.items():
        if Path(name).name != name or name in (".", ".."):
            raise _damaged(path, f"lists {name!r}, which is not a file inside the artifact folder")
        if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
            raise _damaged(path, f"the entry for {name} has no sha256")
    if verify:
        for name, info in files.items():
            f = folder / name
            if not f.is_file():
                raise InputError(f"{f}: listed in {MANIFEST} but missing; export the artifact again")
            if sha256(f) != info["sha256"]:
                raise InputError(f"{f}: sha256 differs from {MANIFEST}; the file was modified or corrupted — export it again")
    return manifest


def verifies_with_recipe(folder: Path, recipe: str) -> bool:
    """`folder` is an artifact whose hashes verify and whose options are the recipe's current ones
    (so it can be reused instead of exported again)."""
    from .options import load_recipe

    try:
        options = read_manifest(folder)["options"]
    except InputError:
        return False
    return all(options.get(k) == v for k, v in load_recipe(recipe).items() if k != "recipe")
