"""`edgellama bundle`: the artifacts of one model (the .pte folder, the ONNX folder, ...) copied into
one bundle with a manifest.json that follows edgellama/android/bundle.schema.json.

    NAME/manifest.json              the bundle manifest (schema above)
    NAME/executorch/...             one sub-folder per artifact: its files and its export manifest.json
    NAME/onnxruntime/...

Every check runs before anything is written: each artifact's files against its manifest's sha256
(again while they are copied), the .pte's operators against the stock AAR, one source checkpoint.
The bundle is built under a temporary name and renamed into place (a folder, or FILE.zip holding
NAME/...)."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path

from edgellama.errors import InputError
from edgellama.export.artifact import MANIFEST, read_manifest, remove_stale_staging, sha256

from .schema import validate

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_MAX_NEW_TOKENS = 128
ARTIFACT_KEYS = ("source", "quantization", "tokenizer", "runtime", "files")  # what bundling reads


def source_sha256(source: dict) -> str:
    """One hash for a checkpoint: over '<sha256> <name>' of its files, sorted by name."""
    lines = sorted(f"{f['sha256']} {f['name']}" for f in source["files"])
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def read_artifacts(paths: list[Path]) -> list[tuple[Path, dict]]:
    """(folder, manifest) of each artifact, its files' hashes checked before anything reads them
    (and again while they are copied, in case one changes in between)."""
    out = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"{path}: not an artifact folder; pass the --out folders of `edgellama export`")
        manifest = read_manifest(path)
        missing = [key for key in ARTIFACT_KEYS if key not in manifest]
        if missing:
            raise InputError(f"{path / MANIFEST}: has no {', '.join(missing)}; export the artifact again with this "
                             f"edgellama version")
        out.append((path, manifest))
    return out


def model_block(artifacts: list[tuple[Path, dict]], context_length: int) -> dict:
    """The model fields all artifacts must agree on: one source checkpoint, one tokenizer."""
    from edgellama.runtime.open import artifact_tokenizer

    from .chat_format import chat_format

    first_path, first = artifacts[0]
    tok = first["tokenizer"]
    for path, m in artifacts[1:]:
        if source_sha256(m["source"]) != source_sha256(first["source"]):
            raise InputError(f"{path}: exported from another checkpoint than {first_path}; a bundle holds the "
                             f"artifacts of one model — bundle them separately")
        for key in ("bos_id", "eos_ids", "add_bos", "chat_template"):
            if m["tokenizer"][key] != tok[key]:
                raise InputError(f"{path}: tokenizer {key} differs from {first_path}'s; export both from the same "
                                 f"checkpoint with the same tokenizer")
    return {"name": Path(first["source"]["path"]).name, "source_sha256": source_sha256(first["source"]),
            "source_format": first["source"]["format"], "bos_id": tok["bos_id"], "eos_ids": list(tok["eos_ids"]),
            "add_bos": tok["add_bos"], "context_length": context_length, "chat_template": tok["chat_template"],
            "chat_format": chat_format(artifact_tokenizer(first_path, first), first_path / MANIFEST)}


def parity_summary(report: Path) -> tuple[Path, dict]:
    """(the artifact it was run on, its summary) from a parity.json written by `parity --report`."""
    try:
        data = json.loads(Path(report).read_text())
        refs = {name: {"top1_agreement": r["metrics"]["top1_agreement"], "kl_mean": r["metrics"]["kl_mean"],
                       "ppl_ratio": r["metrics"]["ppl_ratio"]} for name, r in data["references"].items()}
        return Path(data["artifact"]).resolve(), {"verdict": data["verdict"], "created": data["created"], "references": refs}
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"--parity {report}: not a parity.json from `edgellama parity --report DIR`; pass DIR/parity.json") from None


def runtime_entries(artifacts: list[tuple[Path, dict]], parity: list[Path]) -> list[tuple[Path, dict, dict]]:
    from .runtimes import runtime_entry

    summaries = dict(parity_summary(p) for p in parity)
    entries, used = [], set()
    for path, manifest in artifacts:
        kind = manifest["runtime"]["runtime"]
        folder = kind if kind not in used else f"{kind}-{sum(1 for u in used if u.startswith(kind)) + 1}"
        used.add(folder)
        entry = runtime_entry(path, manifest, folder)
        if path.resolve() in summaries:
            entry["parity"] = summaries.pop(path.resolve())
        entries.append((path, manifest, entry))
    if summaries:
        raise InputError(f"--parity: {next(iter(summaries))} is not among the bundled artifacts; pass the parity.json "
                         f"of an artifact you bundle")
    return entries


def copy_verified(src_folder: Path, manifest: dict, dst: Path) -> list[dict]:
    """Copies the artifact's listed files and its manifest, hashing as it goes; a mismatch is refused.
    Returns their entries for the bundle's `files` (paths relative to the bundle)."""
    dst.mkdir()
    listed = []
    for name, info in manifest["files"].items():
        src = src_folder / name
        if not src.is_file():
            raise InputError(f"{src}: listed in {MANIFEST} but missing; export the artifact again")
        h = hashlib.sha256()
        with open(src, "rb") as fin, open(dst / name, "wb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                h.update(block)
                fout.write(block)
        if h.hexdigest() != info["sha256"]:
            raise InputError(f"{src}: sha256 differs from {MANIFEST}; the file was modified or corrupted — export "
                             f"the artifact again")
        listed.append({"path": f"{dst.name}/{name}", "bytes": (dst / name).stat().st_size, "sha256": info["sha256"]})
    shutil.copyfile(src_folder / MANIFEST, dst / MANIFEST)
    export_manifest = dst / MANIFEST
    listed.append({"path": f"{dst.name}/{MANIFEST}", "bytes": export_manifest.stat().st_size, "sha256": sha256(export_manifest)})
    return listed


@contextmanager
def staged(out: Path):
    """A temporary sibling of `out` (named with this pid, so a later run sweeps a killed run's
    leftovers); removed on failure."""
    remove_stale_staging(out.parent, out.name)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_zip(folder: Path, name: str, target: Path) -> None:
    # Stored, not deflated: quantized weights do not compress, and the app reads the unzipped folder.
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"{name}/{p.relative_to(folder).as_posix()}")


def check_out(out: Path) -> tuple[Path, bool]:
    out = out.resolve()
    if out.exists():
        raise InputError(f"--out {out}: already exists; choose another --out or remove it")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: {out.parent} does not exist; create it or choose another --out")
    if not os.access(out.parent, os.W_OK):
        raise InputError(f"--out {out}: {out.parent} is not writable; choose another --out")
    return out, out.suffix == ".zip"


def make_bundle(artifacts: list[Path], out: Path, name: str | None = None, parity: list[Path] = ()) -> dict:
    """Bundle `artifacts` into `out` (a folder, or a .zip); returns the bundle manifest."""
    out, as_zip = check_out(Path(out))
    name = name or (out.stem if as_zip else out.name)
    if not NAME.match(name):
        raise InputError(f"--name {name}: use letters, digits, '.', '_' or '-' (at most 64, no leading "
                         f"punctuation); it becomes the folder on the phone")
    found = read_artifacts(artifacts)
    entries = runtime_entries(found, list(parity))
    manifest = {
        "format_version": 1, "name": name, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "producer": f"edgellama {_version()}",
        "model": model_block(found, min(e["max_context_len"] for _, _, e in entries)),
        "generation": {"temperature": 0.0, "system_prompt": "",
                       "max_new_tokens": min(DEFAULT_MAX_NEW_TOKENS, min(e["max_context_len"] for _, _, e in entries) - 1)},
        "files": [], "runtimes": [e for _, _, e in entries],
    }
    try:
        write_bundle(entries, manifest, out, name, as_zip)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise InputError(f"{out.parent}: no space left on the device while writing the bundle; nothing was "
                             f"kept — free some space or choose another --out") from None
        raise
    return manifest


def write_bundle(entries: list[tuple[Path, dict, dict]], manifest: dict, out: Path, name: str, as_zip: bool) -> None:
    """Copies the artifacts under a temporary name, lists and validates, then renames into place."""
    with staged(out) as tmp:
        folder = tmp / name if as_zip else tmp
        folder.mkdir(parents=True)
        manifest["files"] = [f for path, artifact_manifest, entry in entries
                             for f in copy_verified(path, artifact_manifest, folder / entry["folder"])]
        validate(manifest, out / MANIFEST)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if as_zip:
            partial_zip = tmp.with_name(tmp.name + ".zip")
            try:
                write_zip(folder, name, partial_zip)
                partial_zip.rename(out)
            finally:
                partial_zip.unlink(missing_ok=True)
        else:
            tmp.rename(out)


def read_bundle(folder: Path) -> dict:
    """A bundle folder's manifest, after the schema and every file's sha256 are checked."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: missing; pass a bundle folder made by `edgellama bundle` (unzip a .zip bundle first)")
    try:
        manifest = json.loads(path.read_text())
    except ValueError:
        raise InputError(f"{path}: not JSON; make the bundle again with `edgellama bundle`") from None
    validate(manifest, path)
    for f in manifest["files"]:
        p = folder / f["path"]
        if not p.is_file():
            raise InputError(f"{p}: listed in {path} but missing; make the bundle again")
        if p.stat().st_size != f["bytes"] or sha256(p) != f["sha256"]:
            raise InputError(f"{p}: sha256 differs from {path}; the file was modified or corrupted — make the bundle again")
    return manifest


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("edgellama")
