"""edgellama.export: checkpoint -> artifact folder (model file + tokenizer + manifest.json).

Every target module exposes the same functions,
    `check_options(options)` (may refuse, or adjust an option the user did not give via `options.adjust`),
    `write_model(model, tokenizer, options, folder, progress) -> dict`
which writes its model file(s) into `folder` and returns the runtime metadata for the manifest (a
target with several model files lists the extra ones under `model_files`, so the manifest must hash
them), and optionally `check_model(options, linear_shapes)` for shapes its kernels cannot take.
This driver does what all targets share: validation, loading, quantization, the tokenizer, the
manifest, and the atomic hand-over of the folder. A target marked `streams_layers` (targets.py) gets
a model whose decoder layers are rebuilt one at a time from a spill file in the staging folder."""
from __future__ import annotations

import importlib
import importlib.metadata
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

from .options import TARGETS, ExportOptions, load_recipe

PACKAGES = ("edgellama", "torch", "executorch", "torchao", "onnx", "onnxruntime", "onnxruntime-genai", "onnxruntime-qnn")

Progress = Callable[[str], None]


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def checkpoint_fingerprint(files: list[Path]) -> dict:
    from .artifact import sha256

    return {"files": [{"name": f.name, "bytes": f.stat().st_size, "sha256": sha256(f)} for f in files]}


def in_background(fn, *args) -> Future:
    """fn(*args) on a daemon thread (an export that fails does not wait for it)."""
    future = Future()

    def run():
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(e)

    threading.Thread(target=run, daemon=True).start()
    return future


def export(model_path: Path, options: ExportOptions, out: Path, force: bool = False,
           progress: Progress | None = None, notice: Progress | None = None, force_memory: bool = False) -> dict:
    """Export `model_path` with `options` into the folder `out`; returns the manifest. `progress` hears
    each stage as it starts; `notice`, each option adjusted because the model or target cannot take it."""

    from edgellama.algorithms import calibration_windows
    from edgellama.formats import open_checkpoint
    from edgellama.layerwise import quantize_checkpoint
    from edgellama.quant import FLOAT_SCHEMES, QuantSpec, algorithm, check_group_size
    from edgellama.schemes import estimate_bytes, linear_shapes
    from edgellama.tokenizer import tokenizer_for

    from .artifact import check_destination, staging, write_manifest

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    ckpt = open_checkpoint(model_path)
    options.validate(ckpt.args.max_context_len)
    target = importlib.import_module(TARGETS[options.target].exporter)
    target.check_options(options)  # first: a target may adjust the group size
    if hasattr(target, "check_model"):  # what a target's kernels cannot take of this model's shapes
        head = [("output", ckpt.args.vocab_size, ckpt.args.dim)] if options.output_quant == "4w" else []
        target.check_model(options, linear_shapes(ckpt.args) + head)
    if options.quant not in FLOAT_SCHEMES:  # a float scheme has no groups to check
        check_group_size(linear_shapes(ckpt.args), options.group_size)
    algorithm(options.quant_algo)
    tokenizer = tokenizer_for(ckpt)
    for note in options.notes:
        (notice or say)(note)
    needed = int(estimate_bytes(ckpt.args, options.quant, options.group_size) * 1.1) + (64 << 20)
    spec = QuantSpec.from_options(options.quant, options.group_size, options.quant_algo, options.embedding_quant,
                                  options.output_quant, options.size_budget)
    calibration, calibration_info = None, None
    if spec.needs_calibration:
        from edgellama import texts

        from .artifact import sha256

        calibration_file = Path(options.calibration or texts.calibration_text())
        calibration = calibration_windows(tokenizer, calibration_file)
        calibration_info = {"file": texts.reference(calibration_file), "sha256": sha256(calibration_file),
                            "windows": len(calibration), "tokens_per_window": len(calibration[0])}
    from edgellama.memory import check_memory, kv_cache_bytes, shape_of, streaming_bytes

    streams, mapped = TARGETS[options.target].streams_layers, TARGETS[options.target].spill_layout == "mapped"
    # A streamed export holds a few float layers, whatever the model's depth, and a mapped one (XNNPACK)
    # also the packed weights that lowering accumulates (about the artifact); an export of the whole
    # model in memory peaks at ~3x the artifact (7B 8da4w: 11.6 GiB peak RSS for a 3.9 GiB .pte).
    model_need = ({"layers streamed one at a time": streaming_bytes(ckpt.args)} if streams
                  else {"model while lowering": 3 * needed})
    if mapped:
        model_need["packed weights while lowering"] = needed
    check_memory({**model_need,
                  f"KV cache of {options.max_context_len} positions": kv_cache_bytes(shape_of(ckpt.args), options.max_context_len)},
                 force_memory, "lower --max-context-len")
    # the spill is about the artifact's size, twice that mapped (one int4 value per byte)
    check_destination(out, force, needed * (1 + streams + mapped), ckpt.path)

    with staging(out, force) as folder:
        say(f"loading and quantizing to {options.quant}, layer by layer")
        model = quantize_checkpoint(ckpt, spec, calibration, progress=say,
                                    spill_dir=folder if streams else None, mapped=mapped)
        # the checkpoint's sha256 (13 GB at 7B: ~20 s) on the core that lowering, mostly Python, leaves idle
        fingerprint = in_background(checkpoint_fingerprint, ckpt.files)
        metadata = target.write_model(model, tokenizer, options, folder, say)
        tokenizer_file = tokenizer.save(folder)
        say("writing manifest")
        manifest = write_manifest(folder, {
            "format_version": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "export_seconds": round(time.perf_counter() - started, 1),
            "source": {"path": str(ckpt.path), "format": ckpt.format, **fingerprint.result()},
            "recipe": options.recipe,
            "options": options.to_dict(),
            "quantization": spec.to_dict(),
            "calibration": calibration_info,
            "model": {"dim": ckpt.args.dim, "n_layers": ckpt.args.n_layers, "n_heads": ckpt.args.n_heads,
                      "n_kv_heads": ckpt.args.n_kv_heads, "vocab_size": ckpt.args.vocab_size,
                      "parameters": ckpt.args.num_params()},
            "tokenizer": {"file": tokenizer_file.name, "kind": tokenizer.kind, "bos_id": tokenizer.bos_id,
                          "eos_ids": tokenizer.eos_ids, "add_bos": tokenizer.add_bos,
                          "chat_template": tokenizer.chat_template},
            "runtime": metadata,
            "packages": package_versions(),
        })
    return manifest


__all__ = ["TARGETS", "ExportOptions", "export", "load_recipe"]
