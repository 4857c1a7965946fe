"""The eager twin of an artifact: its source checkpoint quantized exactly as the export did (same
spec, same calibration windows), with weights dequantized once. It is the reference that says
whether an export is faithful, as opposed to how much quantization costs (the fp32 model)."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError


def twin_for(manifest: dict):
    import edgellama
    from edgellama.algorithms import calibration_windows
    from edgellama.quant import QuantSpec, eager_twin, quantize_model

    model = edgellama.load_model(manifest["source"]["path"])
    calibration = None
    info = manifest.get("calibration")
    if info:
        from edgellama.export.artifact import sha256

        path = Path(info["file"])
        if not path.exists() or sha256(path) != info["sha256"]:
            raise InputError(f"{path}: the calibration text this artifact was made with is missing or changed; "
                             f"the eager twin cannot be rebuilt exactly")
        calibration = calibration_windows(edgellama.load_tokenizer(manifest["source"]["path"]), path,
                                          info["windows"], info["tokens_per_window"])
    return eager_twin(quantize_model(model, QuantSpec(**manifest["quantization"]), calibration=calibration))
