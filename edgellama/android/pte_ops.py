"""Which operators a .pte runs outside its delegates, read from the .pte itself, and whether the
stock ExecuTorch Android AAR has a kernel for each.

A .pte's execution plans list every operator their instructions call by name (`Operator`: name and
overload); delegated work is a DelegateCall instead, so the operator table is exactly what the
runtime must find in its kernel registry when the method loads. The stock AAR registers the kernels
listed in edgellama/data/executorch-android/kernels.txt (how that list was made is in its header)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgellama.errors import InputError

KERNELS_FILE = ("data", "executorch-android", "kernels.txt")
HEAD_BYTES = 64  # enough for the flatbuffer header and ExecuTorch's extended header ("eh00")


def read_program(path: Path):
    """The .pte's Program (flatbuffer part only: delegate payloads and weights live in segments
    after it and are not read, so a 3 GB .pte costs a few MB here)."""
    from executorch.exir._serialize._program import _flatbuffer_to_program, _get_extended_header

    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        header = _get_extended_header(head)
        f.seek(0)
        data = f.read(header.program_size) if header is not None else f.read()
    try:
        return _flatbuffer_to_program(data)
    except Exception as e:  # flatc reports a corrupt or foreign file in many ways
        raise InputError(f"{path}: not a readable ExecuTorch program ({type(e).__name__}); export it again") from None


def operators_outside_delegates(path: Path) -> list[str]:
    """'namespace::name.overload' of every operator the .pte's methods call outside the delegates."""
    program = read_program(path)
    names = {f"{op.name}.{op.overload}" if op.overload else op.name
             for plan in program.execution_plan for op in plan.operators}
    return sorted(names)


def stock_aar_kernels() -> frozenset[str]:
    text = resources.files("edgellama").joinpath(*KERNELS_FILE).read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_stock_aar(path: Path, operators: list[str]) -> None:
    missing = [op for op in operators if op not in stock_aar_kernels()]
    if missing:
        raise InputError(f"{path}: runs {', '.join(missing)} outside the XNNPACK delegate, which the stock ExecuTorch "
                         f"Android AAR has no kernel for; export with a recipe that delegates it, or build an AAR "
                         f"that registers it")
