"""One benchmarked artifact in a process of its own, so that its load, its threads and its peak RSS are
its own and a comparison's artifacts do not share allocator or thread-pool state.

    python -m edgellama.runtime.bench_worker '{"runner": "module:Class", ...spec}'

Replies with one JSON line when loaded ({"load_s", "threads", "peak_rss_bytes"}), then reads one request
a line ({"text", "ids", "gen_len"}) and answers each with {"run": {...}, "peak_rss_bytes"}. Any failure
is one line {"error", "input"} (input: the user's to fix, else a bug). The replies go to the stdout the
process started with; fd 1 itself is sent to /dev/null, because TextLLMRunner prints the text it makes."""
from __future__ import annotations

import json
import os
import resource
import sys


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> None:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    def reply(obj: dict) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    from edgellama.errors import InputError
    from edgellama.export.targets import load

    try:
        spec = json.loads(sys.argv[1])
        runner = load(spec["runner"])(spec)
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
