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


def check_vocab(tokenizer, model_vocab: int, where: Path) -> None:
    """A token id past the model's embedding rows is not an error inside the runtimes: ExecuTorch's
    embedding_byte aborts the process natively. So the sizes are compared before anything runs."""
    if tokenizer.vocab_size > model_vocab:
        raise InputError(f"{where}: the tokenizer has {tokenizer.vocab_size} tokens but the model's vocabulary is "
                         f"{model_vocab}; this tokenizer does not belong to this model — export the artifact again")


def check_artifact_memory(folder: Path, manifest: dict, force: bool) -> None:
    """Model file(s) plus the KV cache of the exported context, before either is allocated."""
    from edgellama.export.artifact import model_files
    from edgellama.memory import check_memory, kv_cache_bytes, manifest_shape

    shape = manifest_shape(manifest)
    context = manifest["options"].get("max_context_len")
    files = sum((folder / n).stat().st_size for n in model_files(manifest) if (folder / n).is_file())
    parts = {"model files": files}
    if shape is not None and isinstance(context, int):
        parts[f"KV cache of {context} positions"] = kv_cache_bytes(shape, context)
    check_memory(parts, force, "re-export with a smaller --max-context-len")


def check_arch(manifest: dict, arch: str | None, cpu: str | None):
    """`--arch` / `--cpu` against the artifact, before any model loads -> the Arch (None: this machine).
    Its `prepare` refuses an unknown CPU profile or an environment not built yet."""
    from edgellama.export.targets import ARCHES, TARGETS, by_runtime, load

    if arch is None:
        if cpu is not None:
            raise InputError(f"--cpu {cpu}: picks an emulated CPU, so it needs --arch ({', '.join(ARCHES)})")
        return None
    if arch not in ARCHES:
        raise InputError(f"--arch {arch}: unknown; use one of {', '.join(ARCHES)} (or leave it out for this machine)")
    target = by_runtime(manifest["runtime"].get("runtime"))
    if target is None or arch not in target.arches:
        runs = [t.name for t in TARGETS.values() if arch in t.arches]
        raise InputError(f"--arch {arch}: runs {', '.join(runs)} artifacts only, and this one is "
                         f"{manifest['runtime'].get('runtime')}; leave --arch out to check it on this machine")
    load(ARCHES[arch].prepare)(cpu)
    return ARCHES[arch]


def open_artifact(folder: str | Path, manifest: dict | None = None, force_memory: bool = False,
                  arch: str | None = None, cpu: str | None = None, say=lambda _msg: None):
    """An exported artifact folder -> (Session, manifest). The manifest's hashes are checked first
    (pass `manifest` from `read_artifact_manifest` when they have just been checked). `arch`: run it
    on that architecture's kernels instead of this machine's (export/targets.py ARCHES; check it with
    `check_arch` first)."""
    folder = Path(folder)
    manifest = manifest or read_artifact_manifest(folder)
    check_artifact_memory(folder, manifest, force_memory)
    tokenizer = artifact_tokenizer(folder, manifest)
    meta = manifest["runtime"]
    tokenizer_file = folder / manifest["tokenizer"]["file"]
    declared = meta.get("get_vocab_size", meta.get("vocab_size"))
    if isinstance(declared, int):  # before loading; the loaded model's own count is checked again below
        check_vocab(tokenizer, declared, tokenizer_file)
    from edgellama.export.targets import by_runtime, load

    runtime = meta.get("runtime")
    target = by_runtime(runtime)
    if target is None:
        raise InputError(f"{folder / 'manifest.json'}: runtime {runtime!r} is not supported by this edgellama version")
    if arch is None:
        session = load(target.session)(folder, manifest, tokenizer)
    else:
        session = load(target.arches[arch])(folder, manifest, tokenizer, cpu=cpu, say=say)
    check_vocab(tokenizer, session.info.vocab_size, tokenizer_file)
    return session, manifest


def unloadable(path: Path, runtime: str, err: Exception) -> InputError:
    """A model file whose hash matches its manifest but which the runtime cannot load (a manifest
    re-hashed after the file was damaged)."""
    detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    return InputError(f"{path}: {runtime} cannot load it ({detail}); the file is truncated or corrupt — "
                      f"export the artifact again")
