"""The two references `edgellama parity` compares an artifact with, as eager Sessions:
- "fp32": the unquantized checkpoint (how much the quantization costs);
- "twin": the checkpoint quantized with the artifact's own recipe (whether the export is faithful).
With `parity --arch`, a third: HOST, the same artifact run on this machine's kernels (what the
architecture alone changes). Torch is imported here, not in parity.py."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError

HOST = "x86"  # the reference name of the artifact run on this (x86_64) machine, next to an emulated run


def is_export_source(manifest: dict, path: Path) -> bool:
    """True when `path` holds the very files the artifact was exported from (names and sha256)."""
    from edgellama.export import checkpoint_fingerprint
    from edgellama.formats import open_checkpoint

    recorded = {(f["name"], f["sha256"]) for f in manifest["source"]["files"]}
    now = checkpoint_fingerprint(open_checkpoint(path).files)["files"]
    return {(f["name"], f["sha256"]) for f in now} == recorded


def check_reference_memory(manifest: dict, context: int, force: bool) -> None:
    """The fp32 model and its same-recipe twin (fp32 weights, dequantized) with a KV cache each."""
    from edgellama.memory import check_memory, kv_cache_bytes, manifest_shape, model_bytes

    shape = manifest_shape(manifest)
    if shape is not None:
        check_memory({"fp32 reference and twin": 2 * model_bytes(shape),
                      f"2 KV caches of {context} positions": 2 * kv_cache_bytes(shape, context)},
                     force, "lower --window-len and --gen-tokens")


def reference_sessions(artifact: Path, manifest: dict, reference: Path | None, context: int,
                       say=lambda _msg: None) -> tuple[dict, dict]:
    """-> ({"fp32": Session, "twin": Session}, {"fp32": path, "twin": path}).

    The fp32 reference is `reference` (default: the manifest's source path). The twin must be
    rebuilt from the exact source files, so it comes from whichever of the two still matches the
    manifest's sha256s; when neither does, fidelity cannot be judged and that is an input error."""
    import edgellama

    from .session import EagerSession
    from .twin import twin_for

    source = Path(manifest["source"]["path"])
    fp32_path = Path(reference) if reference else source
    if reference and not fp32_path.exists():
        raise InputError(f"--reference {fp32_path}: no such file or folder; pass the checkpoint the artifact was exported from")
    if not reference and not source.exists():
        raise InputError(f"{source}: the checkpoint this artifact was exported from is gone; pass its new location with --reference")
    from edgellama.formats import open_checkpoint

    recorded = manifest.get("model") or {}
    args = open_checkpoint(fp32_path).args
    differs = [k for k in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size")
               if k in recorded and getattr(args, k) != recorded[k]]
    if differs:  # not a worse model but another one: comparing would only ever say FAIL (exit 1)
        k = differs[0]
        raise InputError(f"{fp32_path}: {k} {getattr(args, k)} but the artifact's model has {k} {recorded[k]}; "
                         f"pass the checkpoint the artifact was exported from with --reference")
    say("checking the source checkpoint's sha256")
    candidates = [p for p in dict.fromkeys([fp32_path, source]) if p.exists()]
    twin_path = next((p for p in candidates if is_export_source(manifest, p)), None)
    if twin_path is None:
        raise InputError(f"{fp32_path}: its files' sha256 differ from the export's source recorded in manifest.json, "
                         f"so the same-recipe twin cannot be rebuilt; pass the original checkpoint with --reference")
    say(f"loading the fp32 reference {fp32_path}")
    sessions = {"fp32": EagerSession(edgellama.load_model(fp32_path), None, context)}
    scheme = manifest["quantization"]["scheme"]
    from edgellama.export.targets import by_runtime, load

    target = by_runtime(manifest["runtime"]["runtime"])
    if target is not None and target.twin:  # the target's own twin (qnn: its QDQ graphs on the CPU EP)
        say(f"opening the {target.name} twin")
        sessions["twin"] = load(target.twin)(Path(artifact), manifest)
        return sessions, {"fp32": str(fp32_path), "twin": f"{artifact} (QDQ graphs, CPU EP)"}
    if scheme == "fp32" and twin_path == fp32_path:
        sessions["twin"] = sessions["fp32"]  # an fp32 recipe's twin is the fp32 model itself
    else:
        say(f"building the same-recipe twin ({scheme}) from {twin_path}")
        sessions["twin"] = EagerSession(twin_for(manifest, twin_path), None, context)
    return sessions, {"fp32": str(fp32_path), "twin": str(twin_path)}
