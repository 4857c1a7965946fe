"""edgellama.export: checkpoint -> artifact folder (model file + tokenizer + manifest.json).

Every target module exposes the same function,
    `write_model(model, tokenizer, options, folder, progress) -> dict`
which writes its model file(s) into `folder` and returns the runtime metadata for the manifest.
This driver does what all targets share: validation, loading, quantization, the tokenizer, the
manifest, and the atomic hand-over of the folder."""
from __future__ import annotations

import importlib
import importlib.metadata
import time
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


def export(model_path: Path, options: ExportOptions, out: Path, force: bool = False,
           progress: Progress | None = None) -> dict:
    """Export `model_path` with `options` into the folder `out`; returns the manifest."""

    from edgellama.algorithms import calibration_windows
    from edgellama.formats import open_checkpoint
    from edgellama.layerwise import quantize_checkpoint
    from edgellama.quant import FLOAT_SCHEMES, QuantSpec, algorithm, check_group_size
    from edgellama.schemes import estimate_bytes, head_scheme, linear_shapes
    from edgellama.tokenizer import tokenizer_for

    from .artifact import check_destination, staging, write_manifest

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    ckpt = open_checkpoint(model_path)
    options.validate(ckpt.args.max_context_len)
    check_group_size(linear_shapes(ckpt.args), options.group_size)
    algorithm(options.quant_algo)
    tokenizer = tokenizer_for(ckpt)
    target = importlib.import_module(TARGETS[options.target].exporter)
    target.check_options(options)
    needed = int(estimate_bytes(ckpt.args, options.quant, options.group_size) * 1.1) + (64 << 20)
    integer = options.quant not in FLOAT_SCHEMES
    spec = QuantSpec(scheme=options.quant, group_size=options.group_size, algo=options.quant_algo,
                     embedding=options.embedding_quant if integer else "none",
                     output=head_scheme(options.quant, options.output_quant),
                     size_budget=options.size_budget if integer else 1.0)
    calibration, calibration_info = None, None
    if spec.needs_calibration:
        from edgellama import texts

        from .artifact import sha256

        calibration_file = Path(options.calibration or texts.calibration_text())
        calibration = calibration_windows(tokenizer, calibration_file)
        calibration_info = {"file": texts.reference(calibration_file), "sha256": sha256(calibration_file),
                            "windows": len(calibration), "tokens_per_window": len(calibration[0])}
    check_destination(out, force, needed, ckpt.path)

    with staging(out, force) as folder:
        say(f"loading and quantizing to {options.quant}, layer by layer")
        model = quantize_checkpoint(ckpt, spec, calibration, progress=say)
        metadata = target.write_model(model, tokenizer, options, folder, say)
        tokenizer_file = tokenizer.save(folder)
        say("writing manifest")
        manifest = write_manifest(folder, {
            "format_version": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "export_seconds": round(time.perf_counter() - started, 1),
            "source": {"path": str(ckpt.path), "format": ckpt.format, **checkpoint_fingerprint(ckpt.files)},
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
