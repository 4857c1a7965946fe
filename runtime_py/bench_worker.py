"""One benchmarked artifact in a process of its own, so that its load, its threads and its peak RSS are
its own and a comparison's artifacts do not share allocator or thread-pool state.

    python -m edgellama.runtime.bench_worker '{"runner": "module:Class", ...spec}'

Replies with one JSON line when loaded ({"load_s", "threads", "peak_rss_bytes"}), then reads one request
a line ({"text", "ids", "gen_len"}) and answers each with {"run": {...}, "peak_rss_bytes"}. Any failure
is one line {"error", "input"} (input: the user's to fix, else a bug). The replies go to the stdout the
process started with; fd 1 itself is sent to /dev/null, because TextLLMRunner prints the text it makes."""
from __future__ import annotations

import importlib
import json
import os
import resource
import sys


def peak_rss_bytes() -> int:
    """This process image's peak resident memory. On Linux ru_maxrss survives fork and exec, so a worker
    started by a large parent (a script holding a torch model) would report the parent's peak; VmHWM
    belongs to the address space the exec made."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> None:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    def reply(obj: dict) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    from edgellama.errors import InputError

    try:
        spec = json.loads(sys.argv[1])
        # Not edgellama.export.targets.load: importing edgellama.export imports torch, which a peer's
        # venv (bench/llamacpp_peer.py) does not have.
        module, _, name = spec["runner"].partition(":")
        runner = getattr(importlib.import_module(module), name)(spec)
        load_s = runner.load()
        reply({"load_s": load_s, "threads": runner.threads(), "peak_rss_bytes": peak_rss_bytes()})
        for line in sys.stdin:
            req = json.loads(line)
            reply({"run": runner.run(req["text"], req["ids"], req["gen_len"]), "peak_rss_bytes": peak_rss_bytes()})
    except InputError as e:
        reply({"error": str(e), "input": True})
    except Exception as e:  # noqa: BLE001  reported to the parent, which raises it as an internal error
        reply({"error": f"{type(e).__name__}: {e}", "input": False})


if __name__ == "__main__":
    main()
