"""One entry builder per runtime type: an artifact's manifest -> the fields of its entry in the
bundle's `runtimes` list that only that runtime has. Adding a runtime (QNN, ...) is one more function
in BUILDERS and one more `type` value, with an if/then for its own fields, in bundle.schema.json."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from edgellama.errors import InputError

from .pte_ops import check_stock_aar, operators_outside_delegates


def executorch_entry(folder: Path, manifest: dict) -> dict:
    rt = manifest["runtime"]
    model = folder / rt["model_file"]
    ops = operators_outside_delegates(model)
    check_stock_aar(model, ops)
    # threads 0: LlmModule has no thread setting; its pool already takes the performance cores - 1.
    return {"backend": rt["backend"], "max_seq_len": rt["get_max_seq_len"],
            "max_context_len": rt["get_max_context_len"], "threads": 0, "portable_ops": ops}


def onnxruntime_entry(folder: Path, manifest: dict) -> dict:
    rt = manifest["runtime"]
    return {"backend": rt["provider"], "max_seq_len": rt["max_seq_len"], "max_context_len": rt["max_context_len"],
            "threads": 0, "data_file": rt["data_file"]}


BUILDERS: dict[str, Callable[[Path, dict], dict]] = {"executorch": executorch_entry, "onnxruntime": onnxruntime_entry}


def runtime_entry(folder: Path, manifest: dict, subfolder: str) -> dict:
    kind = manifest["runtime"]["runtime"]
    if kind not in BUILDERS:
        raise InputError(f"{folder / 'manifest.json'}: runtime {kind!r} cannot be bundled yet (bundled: "
                         f"{', '.join(BUILDERS)}); bundle the other artifacts without it")
    return {"type": kind, "folder": subfolder, "model_file": manifest["runtime"]["model_file"],
            "tokenizer_file": manifest["tokenizer"]["file"], "quantization": manifest["quantization"],
            "recipe": manifest.get("recipe"), **BUILDERS[kind](folder, manifest)}
