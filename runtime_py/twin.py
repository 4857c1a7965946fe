"""The eager twin of an artifact: its source checkpoint quantized exactly as the export did (same
spec, same calibration windows), with weights dequantized once. It is the reference that says
whether an export is faithful, as opposed to how much quantization costs (the fp32 model)."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError


def twin_for(manifest: dict, path: str | Path | None = None):
    """`path`: where the source checkpoint is now (default: the path the manifest records)."""
    import edgellama
    from edgellama.algorithms import calibration_windows
    from edgellama.quant import QuantSpec, eager_twin, quantize_model

    source = path or manifest["source"]["path"]
    model = edgellama.load_model(source)
    calibration = None
    info = manifest.get("calibration")
    if info:
        from edgellama.export.artifact import sha256

        text = Path(info["file"])
        if not text.exists() or sha256(text) != info["sha256"]:
            raise InputError(f"{text}: the calibration text this artifact was made with is missing or changed; "
                             f"the eager twin cannot be rebuilt exactly")
        calibration = calibration_windows(edgellama.load_tokenizer(source), text,
                                          info["windows"], info["tokens_per_window"])
    return eager_twin(quantize_model(model, QuantSpec(**manifest["quantization"]), calibration=calibration))
