"""The eager twin of an artifact: its source checkpoint quantized exactly as the export did (same
spec, same calibration windows), with weights dequantized once. It is the reference that says
whether an export is faithful, as opposed to how much quantization costs (the fp32 model).
For ExecuTorch artifacts the dynamically quantized linears compute as XNNPACK does, bit for bit
(`xnnpack_twin`)."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError


def twin_for(manifest: dict, path: str | Path | None = None):
    """`path`: where the source checkpoint is now (default: the path the manifest records)."""
    import edgellama
    from edgellama.algorithms import calibration_windows
    from edgellama.formats import open_checkpoint
    from edgellama.layerwise import quantize_checkpoint
    from edgellama.quant import QuantSpec, eager_twin

    source = path or manifest["source"]["path"]
    calibration = None
    info = manifest.get("calibration")
    if info:
        from edgellama import texts
        from edgellama.export.artifact import sha256

        text = texts.resolve(info["file"])
        if not text.exists() or sha256(text) != info["sha256"]:
            raise InputError(f"{text}: the calibration text this artifact was made with is missing or changed; "
                             f"the eager twin cannot be rebuilt exactly")
        calibration = calibration_windows(edgellama.load_tokenizer(source), text,
                                          info["windows"], info["tokens_per_window"])
    try:
        spec = QuantSpec(**manifest["quantization"])  # keep_8bit as recorded: no sensitivity pass again
    except TypeError:  # the manifest is the one file no hash covers: a hand-edited section lands here
        raise InputError(f"{source}: the artifact's manifest.json has a quantization section edgellama did not "
                         f"write ({sorted(manifest['quantization'])}); export the artifact again") from None
    model = quantize_checkpoint(open_checkpoint(source), spec, calibration)
    if manifest["runtime"].get("runtime") == "executorch":
        from .xnnpack_twin import xnnpack_twin

        return xnnpack_twin(model)
    return eager_twin(model)
