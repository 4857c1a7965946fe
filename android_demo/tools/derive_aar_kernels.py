"""Write edgellama/data/executorch-android/kernels.txt: the operators the stock ExecuTorch Android AAR
(org.pytorch:executorch-android, the version pinned in app/build.gradle = the executorch wheel in
pyproject.toml) has kernels for. Run by hand after changing the executorch pin:

    .venv/bin/python android_demo/tools/derive_aar_kernels.py

Where the set comes from. The AAR's libexecutorch.so links (pytorch/executorch,
extension/android/CMakeLists.txt, built by scripts/build_android_library.sh with
EXECUTORCH_BUILD_EXTENSION_LLM=ON): optimized_native_cpu_ops_lib (the optimized kernels merged over
the whole portable set, kernels/portable/functions.yaml, so every portable op is there),
quantized_ops_lib (kernels/quantized/quantized.yaml), the LLM custom_ops library
(extension/llm/custom_ops: llama::*) and the core runtime's prim ops (executorch_prim::*,
aten::sym_size/sym_numel). The executorch wheel's Python runtime (portable_lib) is built from the same
sources at the same version; after importing the custom-op and quantized-kernel libraries, its kernel
registry holds the same libraries' operators, so this script lists that registry. Dropped: the
`preprocess::` ops (llava image preprocessing, not linked into the AAR)."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "edgellama" / "data" / "executorch-android" / "kernels.txt"
NOT_IN_AAR = ("preprocess::",)


def main() -> None:
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  registers llama::*
    import executorch.kernels.quantized  # noqa: F401  registers quantized_decomposed::*
    from executorch.extension.pybindings.portable_lib import _get_operator_names

    names = sorted(n for n in set(_get_operator_names()) if not n.startswith(NOT_IN_AAR))
    version = importlib.metadata.version("executorch")
    header = [f"# Kernels of the stock ExecuTorch Android AAR, executorch {version}: one 'namespace::op.overload' a line.",
              "# Written by android_demo/tools/derive_aar_kernels.py; its docstring says where the set comes from.",
              "# A .pte whose operators outside the delegates are not all here is refused by `edgellama bundle`."]
    OUT.write_text("\n".join(header + names) + "\n")
    print(f"{OUT}: {len(names)} operators")


if __name__ == "__main__":
    main()
