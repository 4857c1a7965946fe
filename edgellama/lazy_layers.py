"""`model.layers` for a streamed export: each decoder layer is built when first indexed and held until
the consumer replaces it, so a writer that walks the layers in order and drops each one once written
(`model.layers[i] = nn.Module()`, as the ONNX and qnn writers already do) holds about one layer.

It behaves as an `nn.ModuleList` for indexing, assignment, `len` and iteration; layers not yet built
are not submodules (so `parameters()` sees only the built ones), which is why a target that needs the
whole model at once (torch.export) builds them all, their weights mapped from the spill file rather
than read (targets.Target.spill), and calls `evict` as it goes."""
from __future__ import annotations

from typing import Callable, Iterator

from torch import nn


class LazyLayers(nn.Module):
    def __init__(self, count: int, build: Callable[[int], nn.Module], evict: Callable[[], None] = lambda: None):
        super().__init__()
        self._count, self._build = count, build
        self.evict = evict  # drops what the built layers' file-mapped weights have paged in (spill.Spill.evict)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> nn.Module:
        i = self._index(i)
        if str(i) not in self._modules:
            self._modules[str(i)] = self._build(i)
        return self._modules[str(i)]

    def __setitem__(self, i: int, module: nn.Module) -> None:
        self._modules[str(self._index(i))] = module

    def __iter__(self) -> Iterator[nn.Module]:
        return (self[i] for i in range(self._count))

    def _index(self, i: int) -> int:
        if not -self._count <= i < self._count:
            raise IndexError(f"layer {i} of {self._count}")
        return i % self._count
