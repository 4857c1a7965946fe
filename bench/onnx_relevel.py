"""A copy of an ONNX artifact with other MatMulNBits accuracy levels, without exporting again.

The accuracy level is one node attribute; the weights (integers, scales, the 8-bit choice) do not
depend on it. So measuring level 1 against level 4, or a level per bit width, needs one export
(scale-search and the sensitivity pass take most of its minutes) and this rewrite of model.onnx.
The external data file is hard-linked, the manifest re-hashed, so `edgellama bench` / `parity`
read the copy as an artifact.

    python bench/onnx_relevel.py SRC DST --level4 1     # every 4-bit MatMulNBits at level 1
    python bench/onnx_relevel.py SRC DST --level4 1 --level8 4
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def relevel(src: Path, dst: Path, levels: dict[int, int]) -> dict:
    """-> {bits: number of MatMulNBits nodes set}. `levels`: bits -> accuracy_level."""
    import onnx

    from edgellama.export.artifact import write_manifest

    manifest = json.loads((src / "manifest.json").read_text())
    if manifest.get("runtime", {}).get("runtime") != "onnxruntime":
        sys.exit(f"{src}: not an ONNX artifact")
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.name in ("manifest.json", "model.onnx"):
            continue
        (os.link if p.stat().st_size > 1 << 20 else shutil.copy2)(p, dst / p.name)
    model = onnx.load(src / "model.onnx", load_external_data=False)
    counts: dict[int, int] = {}
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        attrs = {a.name: a for a in node.attribute}
        bits = attrs["bits"].i
        if bits in levels:
            attrs["accuracy_level"].i = levels[bits]
            counts[bits] = counts.get(bits, 0) + 1
    onnx.save(model, dst / "model.onnx")
    # One level for the record: the int4 level when it was set, as the recipes' `accuracy_level` means.
    level = levels.get(4, manifest["runtime"]["accuracy_level"])
    manifest["runtime"]["accuracy_level"] = level
    manifest["runtime"]["accuracy_levels_by_bits"] = {str(b): lv for b, lv in sorted(levels.items())}
    manifest["options"]["accuracy_level"] = level
    manifest.pop("files", None)
    write_manifest(dst, manifest)
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--level4", type=int, help="accuracy_level of the 4-bit MatMulNBits")
    p.add_argument("--level8", type=int, help="accuracy_level of the 8-bit MatMulNBits")
    a = p.parse_args()
    if a.dst.exists():
        sys.exit(f"{a.dst}: exists; choose a new folder")
    levels = {b: lv for b, lv in ((4, a.level4), (8, a.level8)) if lv is not None}
    print(json.dumps(relevel(a.src, a.dst, levels)))


if __name__ == "__main__":
    main()
