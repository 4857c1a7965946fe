"""Open any artifact folder (or a checkpoint, for the eager reference) as a Session."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError


def artifact_tokenizer(folder: Path, manifest: dict):
    from edgellama.formats import TokenizerSource
    from edgellama.tokenizer import load_tokenizer_source

    info = manifest["tokenizer"]
    path = Path(folder) / info["file"]
    kind = "hf" if path.suffix == ".json" else "sentencepiece"
    config = {"add_bos_token": info["add_bos"], "chat_template": info.get("chat_template")}
    if kind == "hf":
        config.update({"bos_token_id": info["bos_id"], "eos_token_id": info["eos_ids"]})
    tok = load_tokenizer_source(TokenizerSource(kind, path, config))
    tok.eos_ids = list(info["eos_ids"])
    return tok


def read_artifact_manifest(folder: str | Path) -> dict:
    """The manifest of an artifact folder, after checking every file's sha256 against it."""
    from edgellama.export.artifact import read_manifest

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; pass the --out folder of `edgellama export`")
    return read_manifest(folder)


def open_artifact(folder: str | Path, manifest: dict | None = None):
    """An exported artifact folder -> (Session, manifest). The manifest's hashes are checked first
    (pass `manifest` from `read_artifact_manifest` when they have just been checked)."""
    folder = Path(folder)
    manifest = manifest or read_artifact_manifest(folder)
    tokenizer = artifact_tokenizer(folder, manifest)
    from edgellama.export.targets import by_runtime, load

    runtime = manifest["runtime"]["runtime"]
    target = by_runtime(runtime)
    if target is None:
        raise InputError(f"{folder / 'manifest.json'}: runtime {runtime!r} is not supported by this edgellama version")
    return load(target.session)(folder, manifest, tokenizer), manifest
