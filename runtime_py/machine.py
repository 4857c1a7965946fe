"""The machine a host benchmark ran on: CPU model, cores, memory, and the memory bandwidth that bounds
the decode speed of a small LLM (every decoded token reads all the weights once).

The bandwidth is measured once per machine (about a second) and cached in the user's cache folder, so
that every later benchmark reports the same figure instead of one disturbed by whatever ran that day."""
from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

COPY_BYTES = 256 * 2**20  # far past any CPU cache, small enough for a phone-class board
REPEATS = 5


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgellama" / "machine.json"


def measure_bandwidth() -> float:
    """Bytes per second one thread moves copying a buffer far larger than the caches (bytes read plus
    bytes written), best of REPEATS: the figure a decode loop can at most stream its weights at."""
    import numpy as np

    src = np.ones(COPY_BYTES // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def machine() -> dict:
    import psutil

    identity = {"cpu": cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(),
                "physical_cores": psutil.cpu_count(logical=False), "memory_bytes": psutil.virtual_memory().total}
    path = cache_file()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict) or cached.get("identity") != identity:
        cached = {"identity": identity, "memory_bandwidth_gb_s": round(measure_bandwidth() / 1e9, 2),
                  "bandwidth_measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "load_average_then": [round(x, 2) for x in os.getloadavg()]}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cached, indent=1))
        except OSError:
            pass  # a read-only home: measured again next time, nothing else changes
    return {"kind": "host", **identity, "os": platform.platform(),
            **{k: cached[k] for k in ("memory_bandwidth_gb_s", "bandwidth_measured", "load_average_then")}}
