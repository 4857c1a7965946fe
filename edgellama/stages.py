"""Progress lines for long commands: each finished stage with its duration and the total so far, and
a "still ..." line every HEARTBEAT seconds while a stage runs, so that a stage of minutes (XNNPACK
lowering of SmolLM2: ~3.5 min) never looks like a hang, on a terminal or in a log file."""
from __future__ import annotations

import threading
import time

HEARTBEAT = 20.0  # seconds


class StageClock:
    def __init__(self, print_line, heartbeat: float = HEARTBEAT):
        self.print_line, self.heartbeat = print_line, heartbeat
        self.start = self.t = time.perf_counter()
        self.name = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()

    def __call__(self, name: str | None) -> None:
        """Stage `name` starts (None: the last one ended); the one before it is printed as finished."""
        with self.lock:
            now = time.perf_counter()
            if self.name:
                self.print_line(f"{now - self.t:7.1f} s  {self.name}  [{now - self.start:.0f} s]")
            self.name, self.t = name, now

    def _tick(self) -> None:
        while not self.stop.wait(self.heartbeat):
            with self.lock:
                now = time.perf_counter()
                if self.name and now - self.t >= self.heartbeat:
                    self.print_line(f"{now - self.t:7.1f} s  still {self.name}  [{now - self.start:.0f} s]")
