"""`edgellama bench BUNDLE --device adb:SERIAL`: the same measurement on an Android phone, by the demo
app (android_demo/, its BenchmarkActivity). The bundle is pushed (`edgellama push`: only what the phone
lacks), the activity started over adb, its files/benchmark_results.json polled until it appears, and the
app's figures returned in `bench --json`'s shape, with the phone in place of the host machine."""
from __future__ import annotations

import json
import time
from pathlib import Path

from edgellama.errors import InputError

APP = "org.edgellama.demo"
ACTIVITY = f"{APP}/.BenchmarkActivity"
RESULTS = "files/benchmark_results.json"
POLL_S = 2.0


def bench_on_device(bundle: Path, device_spec: str, runtime: str | None, prompt_len: int, gen_len: int, runs: int,
                    timeout_s: float, say=lambda _msg: None) -> dict:
    from edgellama.android.adb import Device
    from edgellama.android.bundle import read_bundle
    from edgellama.android.push import push

    manifest = read_bundle(bundle)  # a bundle folder, every file verified, before the phone is touched
    entry = pick_runtime(manifest, runtime, bundle)
    device = Device(device_spec)  # adb on PATH, the phone attached and authorized
    if f"package:{APP}" not in device.shell(f"pm list packages {APP}").split():
        raise InputError(f"adb:{device.serial}: the demo app ({APP}) is not installed; build and install it "
                         f"(cd android_demo && ./gradlew installDebug, see android_demo/README.md)")
    push(bundle, device_spec, say)
    device.shell(f"run-as {APP} rm -f {RESULTS}")
    extras = f"--es bundle {manifest['name']} --ei prompt_len {prompt_len} --ei gen_len {gen_len} --ei runs {runs}"
    started = device.shell(f"am start -W -S -n {ACTIVITY} {extras} --es runtime {entry['type']}")
    if "Error" in started:
        raise InputError(f"adb:{device.serial}: could not start {ACTIVITY} ({started.strip().splitlines()[-1]}); "
                         f"reinstall the demo app")
    say(f"benchmark started on adb:{device.serial}; waiting for {RESULTS} (at most {timeout_s:.0f} s)")
    report = wait_for_results(device, timeout_s)
    if "error" in report:
        raise InputError(f"adb:{device.serial}: the demo app reports: {report['error']}; fix the bundle or the "
                         f"options and run again")
    return device_result(report, manifest, entry, bundle, prompt_len, gen_len, runs)


def pick_runtime(manifest: dict, runtime: str | None, bundle: Path) -> dict:
    kinds = [e["type"] for e in manifest["runtimes"]]
    if runtime is None:
        return manifest["runtimes"][0]
    if runtime not in kinds:
        raise InputError(f"--runtime {runtime}: {bundle} holds {', '.join(kinds)}; pass one of those")
    return manifest["runtimes"][kinds.index(runtime)]


def wait_for_results(device, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        text = device.shell(f"run-as {APP} cat {RESULTS} 2>/dev/null || true").strip()
        if text:
            try:
                return json.loads(text)
            except ValueError:
                raise InputError(f"adb:{device.serial}: {RESULTS} is not JSON ({text[:80]!r}); run the benchmark "
                                 f"again") from None
        if time.monotonic() > deadline:
            raise InputError(f"adb:{device.serial}: no {RESULTS} after {timeout_s:.0f} s; see `adb logcat` for a crash, "
                             f"or raise --timeout for a large model")
        time.sleep(POLL_S)


def device_result(report: dict, manifest: dict, entry: dict, bundle: Path, prompt_len: int, gen_len: int,
                  runs: int) -> dict:
    """The app's report in `bench --json`'s shape. The app computes its rates from ExecuTorch's stats
    (or its own clock around GenAI): decode covers every generated token after the prompt's evaluation,
    and the prompt is a repeated word of about prompt_len tokens (it has no tokenizer), so the counts
    are the app's own."""
    from .bench import spread

    folder = entry["folder"] + "/"
    runs_out = [{"prompt_tokens": r["prompt_tokens"], "generated_tokens": r["generated_tokens"],
                 "decode_tokens": r["generated_tokens"], "ttft_s": r["ttft_ms"] / 1000,
                 "prefill_tok_s": r["prefill_tok_s"], "decode_tok_s": r["decode_tok_s"],
                 "decode_s": r["generated_tokens"] / r["decode_tok_s"] if r["decode_tok_s"] else None}
                for r in report["runs"]]
    result = {"artifact": str(bundle), "runtime": entry["type"], "runner": f"demo app ({entry['type']})",
              "recipe": entry.get("recipe"), "quantization": entry["quantization"],
              "artifact_bytes": sum(f["bytes"] for f in manifest["files"] if f["path"].startswith(folder)),
              "model_bytes": None, "threads": entry["threads"], "load_s": spread([report["load_ms"] / 1000]),
              **{k: spread([r[k] for r in runs_out]) for k in ("ttft_s", "prefill_tok_s", "decode_tok_s")},
              "peak_rss_bytes": report["peak_memory_kb"] * 1024, "runs": runs_out}
    return {"format_version": 1, "machine": {"kind": "android", **report["device"]},
            "settings": {"prompt_len": prompt_len, "gen_len": gen_len, "runs": runs, "warmup": 0, "threads": 0,
                         "prompt_file": None, "prompt_passage": None, "rotations": 1, "idle_gap_s": 0.0},
            "load_average": None, "results": [result], "ratios": []}
