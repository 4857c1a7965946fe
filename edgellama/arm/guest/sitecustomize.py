"""Imported by the guest's Python at start-up (this folder is first on its PYTHONPATH).

PyPI's aarch64 torch is the CUDA build, running here on stub CUDA libraries. Its distributed
initialisers (`torch._C._c10d_init` and friends) call into the NCCL stubs at `import torch` and crash,
so they are removed from `torch._C` as soon as it is loaded: torch then treats torch.distributed as
unavailable, which is all a .pte runtime needs."""
import importlib.abc
import sys

HIDDEN = ("_c10d_init", "_rpc_init", "_dist_autograd_init")


class _HideDistributedInit(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torch._C":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            for attr in HIDDEN:
                if hasattr(module, attr):
                    delattr(module, attr)
        spec.loader.exec_module = exec_module
        return spec


import importlib.util  # noqa: E402  (after the class, which only needs it at call time)

sys.meta_path.insert(0, _HideDistributedInit())
