"""Wall time and peak RSS of `edgellama export` (issue 4 targets: SmolLM2 <= 5 min; a 7B-shaped
checkpoint <= 45 min and <= 12 GiB), each export in a fresh process.

Usage: python bench/export_cost.py [--model smollm2|llama2-7b] [--recipe xnnpack-8da4w] [--group-size N]
       [--quant-algo rtn] [--size-budget 1.0] [--contexts device] [--parts 4] [--keep DIR] [--fixed-choice]

Peak RSS is the export process's (ru_maxrss); its RSS is also sampled every SAMPLE seconds from /proc and
the largest sample kept per stage, to show which stage sets the peak. --fixed-choice: mixed precision's
8-bit linears chosen without measuring (bench/fixed_choice.py), for the default recipe's artifact size
and lowering memory without its hours of sensitivity pass; the result's name says so."""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import synthetic_meta, write_results  # noqa: E402

SAMPLE = 5.0  # seconds between RSS samples
STAGE = re.compile(r"^\s*(?P<seconds>[\d.]+) s  (?!still )(?P<name>.+?)  \[\d+ s\]$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2", help="smollm2 (embedded default) or a CONFIGS name, e.g. llama2-7b")
    ap.add_argument("--recipe", default="xnnpack-8da4w")
    ap.add_argument("--group-size", type=int, default=None)
    ap.add_argument("--quant-algo", default=None, help="override the recipe's algorithm, e.g. rtn")
    ap.add_argument("--size-budget", type=float, default=None, help="override the recipe's (1.0: no mixed precision)")
    ap.add_argument("--contexts", default=None, help="qnn: both | simulator | device")
    ap.add_argument("--parts", default=None, help="qnn: auto or a number of parts")
    ap.add_argument("--keep", type=Path, default=None, help="write the artifact here and keep it (default: a temp folder)")
    ap.add_argument("--fixed-choice", action="store_true", help="mixed precision without the sensitivity pass (bench/fixed_choice.py)")
    a = ap.parse_args()
    model_args = [] if a.model == "smollm2" else ["--model", str(synthetic_meta(a.model, "bf16"))]
    extra = ["--group-size", str(a.group_size)] if a.group_size else []
    extra += ["--quant-algo", a.quant_algo] if a.quant_algo else []
    extra += ["--size-budget", str(a.size_budget)] if a.size_budget else []
    extra += ["--contexts", a.contexts] if a.contexts else []
    extra += ["--parts", a.parts] if a.parts else []
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1] / ".cache") as tmp:
        out = a.keep or Path(tmp) / "artifact"
        t0 = time.perf_counter()
        cli = [str(Path(__file__).with_name("fixed_choice.py"))] if a.fixed_choice else ["-m", "edgellama.cli"]
        proc = subprocess.Popen([sys.executable, *cli, "export", "--recipe", a.recipe, *model_args,
                                 *extra, "--out", str(out), "--json", *(["--force"] if a.keep else [])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stages, stage_peaks, rss = [], {}, RssSampler(proc.pid)
        for line in proc.stderr:  # the export's stage lines, echoed and kept for "where the time went"
            sys.stderr.write(line)
            done = STAGE.match(line)
            if done:
                stages.append((done["name"], float(done["seconds"])))
                kind = stage_kind(done["name"])
                stage_peaks[kind] = max(stage_peaks.get(kind, 0), rss.take())
        stdout = proc.stdout.read()
        seconds = time.perf_counter() - t0
        if proc.wait():
            sys.exit(f"export failed with exit code {proc.returncode} (its error is above)")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        manifest = json.loads(stdout)
    runtime = manifest["runtime"]
    # .pte, or .onnx + data; qnn: what the device loads, the context models and binaries
    contexts = [c for p in runtime.get("parts", []) for c in [p["contexts"].get("device") or p["contexts"]["simulator"]]]
    model_files = [n for c in contexts for n in (c["prompt"], c["token"], *c["binaries"])]
    size = sum(f["bytes"] for n, f in manifest["files"].items() if n in model_files or (not model_files and n.startswith("model")))
    deleg = manifest["runtime"].get("delegation", {})
    where = {}  # stage kind ("layer N" counted once as "layer *") -> seconds
    for name, secs in stages:
        kind = stage_kind(name)
        where[kind] = where.get(kind, 0.0) + secs
    record = {"model": a.model, "recipe": a.recipe, "options": manifest["options"], "seconds": seconds,
              "stages": stages, "where_the_time_went": where, "fixed_choice": a.fixed_choice,
              "peak_rss_sampled_bytes_by_stage": stage_peaks,
              "peak_rss_bytes": peak, "model_file_bytes": size, "delegation": deleg,
              "parts": [{"layers": p["layers"], **{name: {"bytes": c["bytes"], "compile_seconds": c["compile_seconds"]}
                                                   for name, c in p["contexts"].items()}}
                        for p in runtime.get("parts", [])]}
    name = f"export_cost-{a.model}-{a.recipe}" + (f"-g{a.group_size}" if a.group_size else "") + (f"-{a.quant_algo}" if a.quant_algo else "") \
        + (f"-budget{a.size_budget:g}" if a.size_budget else "") + (f"-{a.contexts}" if a.contexts else "") \
        + (f"-parts{a.parts}" if a.parts else "") + ("-fixedchoice" if a.fixed_choice else "")
    common = [a.model, a.recipe, f"{seconds / 60:.1f}", f"{peak / 2**30:.2f}", f"{size / 2**20:.1f}"]
    header = ["model", "recipe", "export min", "peak RSS GiB", "model MiB"]
    if record["parts"]:  # qnn: the part plan, and per part the binary the device loads and its compile time
        chosen = [p.get("device") or p["simulator"] for p in record["parts"]]
        row = common + [" / ".join(f"{p['layers'][0]}-{p['layers'][1] - 1}" for p in record["parts"]),
                        " / ".join(f"{c['bytes'] / 2**20:.0f}" for c in chosen),
                        " / ".join(f"{c['compile_seconds']:.0f}" for c in chosen)]
        header += ["layers per part", "context binary MiB per part", "compile s per part"]
    else:
        row = common + [deleg.get("delegate_calls", "-"), deleg.get("delegated_linears", "-"),
                        ", ".join(deleg.get("undelegated_matmuls", [])) or "none"]
        header += ["XNNPACK partitions", "linears delegated", "matmuls left outside"]
    note = "Where the time went (stages as `edgellama export` prints them): " + "; ".join(
        f"{kind} {secs / 60:.1f} min" for kind, secs in sorted(where.items(), key=lambda kv: -kv[1]) if secs >= 30)
    top = sorted(stage_peaks.items(), key=lambda kv: -kv[1])[:3]
    note += ". Largest RSS samples (every 5 s) by stage: " + "; ".join(f"{kind} {b / 2**30:.2f} GiB" for kind, b in top)
    if a.fixed_choice:
        note += (". The 8-bit linears were chosen without measuring (bench/fixed_choice.py): the default recipe's"
                 " size and lowering, not its sensitivity pass or its choice")
    md = write_results(name, record, [row], header, note)
    print(md.read_text())


def stage_kind(name: str) -> str:
    """A stage line's name with its numbers as * and no time-left estimate: "quantizing layer * of *"."""
    return re.sub(r"\d+", "*", re.sub(r" \(~.* left\)$", "", name))


class RssSampler:
    """The process's resident set sampled every SAMPLE seconds; `take()` returns the largest sample
    since the last call (the stage that just ended)."""

    def __init__(self, pid: int):
        self.status, self.largest, self.lock = Path(f"/proc/{pid}/status"), 0, threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                kib = int(re.search(r"VmRSS:\s+(\d+)", self.status.read_text())[1])
            except (OSError, TypeError):
                return  # the process has ended
            with self.lock:
                self.largest = max(self.largest, kib * 1024)
            time.sleep(SAMPLE)

    def take(self) -> int:
        with self.lock:
            largest, self.largest = self.largest, 0
        return largest


if __name__ == "__main__":
    main()
