"""edgellama.arm: the runtimes' aarch64 builds (ExecuTorch, ONNX Runtime) on an x86 machine, through
user-mode QEMU.

`make arm-env` (python -m edgellama.arm.build_env) builds the emulated runtime once into the git-ignored
`.cache/arm64/` of the checkout: QEMU, an arm64 Debian sysroot with Python 3.11, PyPI's aarch64 wheels at
the project's pins, and stub libraries for the CUDA pieces of the aarch64 torch wheel. The sessions in
session.py run an artifact there as a subprocess (guest/worker.py: tokens in, logits out).

Importing this package is cheap and torch-free; nothing here imports torch on the host."""
