"""`make demo`: the main job on the embedded default model, end to end, with the figures that matter."""
from __future__ import annotations

import sys

from . import cli


def main() -> None:
    steps = [
        ["inspect"],
        ["generate", "--chat", "--prompt", "What is the capital of France? Answer in one sentence.",
         "--max-new-tokens", "48"],
    ]
    for argv in steps:
        print(f"\n$ edgellama {' '.join(repr(a) if ' ' in a else a for a in argv)}", flush=True)
        sys.argv = ["edgellama", *argv]
        try:
            cli.app(standalone_mode=False)
        except SystemExit as e:
            if e.code:
                raise


if __name__ == "__main__":
    main()
