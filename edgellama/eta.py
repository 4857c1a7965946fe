"""How long the rest of a layer-by-layer pass will take, from the layers done so far.

Choosing mixed precision, a layer takes longer than the one before it (every earlier linear's
perturbation is carried through it: sensitivity.py), so the layer times are fitted as
a + b * index and the fit is summed over the layers left. Layer 0 is left out of the fit: it also
pays one-off costs (compiling the scale search, ~20 s)."""
from __future__ import annotations

import time
from typing import Callable

FIT_FROM = 5  # layers timed (after layer 0) before the first estimate (from 3, noise read as a slope: 18 min forecast for 7)


class LayerClock:
    def __init__(self, count: int, clock: Callable[[], float] = time.perf_counter):
        self.count, self.clock = count, clock
        self.starts: list[float] = []

    def start(self, i: int) -> str:
        """Layer i starts: its progress line, with the time left once enough layers are timed."""
        self.starts.append(self.clock())
        left = self.seconds_left(i)
        return f"quantizing layer {i} of {self.count}" + (f" (~{_duration(left)} left)" if left is not None else "")

    def seconds_left(self, i: int) -> float | None:
        """Seconds for layers i .. count-1, fitted from the durations of layers 1 .. i-1."""
        times = [b - a for a, b in zip(self.starts[1:], self.starts[2:])]
        if len(times) < FIT_FROM:
            return None
        index = range(1, len(times) + 1)
        mean_j, mean_t = sum(index) / len(times), sum(times) / len(times)
        slope = sum((j - mean_j) * (t - mean_t) for j, t in zip(index, times)) / sum((j - mean_j) ** 2 for j in index)
        slope = max(slope, 0.0)  # a pass that got faster (noise) is not assumed to keep speeding up
        return sum(mean_t + slope * (j - mean_j) for j in range(i, self.count))


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{max(1, round(seconds / 60))} min"
