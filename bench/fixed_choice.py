"""`edgellama export` with mixed precision's 8-bit choice made without measuring: every linear's
"sensitivity" is a fixed function of its name (v/k projections and early layers first), and the
greedy choice then fills the size budget as it would with measured values. The artifact has the
default recipe's layout and size in minutes instead of hours (the sensitivity pass is ~2 h at 13B on
an AVX2 CPU), so lowering's memory can be measured at that size. The choice itself is not the one the
pass would make: never ship what this writes. Used by `bench/export_cost.py --fixed-choice`.

Usage: python bench/fixed_choice.py export [edgellama export's arguments]"""
from __future__ import annotations

import edgellama.sensitivity as sensitivity


class FixedChoice:
    linearized = False  # nothing to re-measure

    def __init__(self, embedded, linearized=False):
        self.names: list[str] = []
        self.inputs: list = []

    def step(self, layer, int4_weights, *rope) -> None:
        self.names += [full_name for _, full_name in int4_weights]

    def finish(self, norm, output) -> dict[str, float]:
        def kl(name: str) -> float:
            _, layer, path = name.split(".", 2)
            return (4.0 if path.endswith(("wv", "wk")) else 1.0) / (1 + int(layer))
        return {name: kl(name) for name in self.names}


if __name__ == "__main__":
    sensitivity.Sensitivity = FixedChoice  # quantize_model imports it when it runs
    from edgellama.cli import main

    main()
