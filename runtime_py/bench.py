"""`edgellama bench` on this host: load time, time to first token, prefill and decode tok/s, peak RSS.

Each artifact runs in a worker process of its own (bench_worker.py) through the runner its target names
(export/targets.py `bench`): a .pte through TextLLMRunner, ONNX through onnxruntime-genai, other targets
through their session. Several artifacts (`--compare`) are measured interleaved and counterbalanced, so
that a ratio between them can be trusted on a shared machine:

- every artifact is loaded first once: one rotation of the load order per artifact, fresh workers each,
  `runs` measured generations per artifact per rotation;
- within a rotation the order of the artifacts flips every run, so none always goes first;
- an idle gap precedes each timed generation of a comparison (IDLE_GAP_S).

Every run decodes exactly `gen_len` tokens after exactly `prompt_len` prompt tokens (checked)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgellama.errors import InputError

# After a generation the other workers' thread pools spin-wait for a while (XNNPACK, ONNX Runtime);
# a pause lets them go idle before the next timed generation.
IDLE_GAP_S = 0.5
MAX_PASSAGES = 8  # prompt passages tried before giving up on a model that stops at EOS
SESSION_BENCH = "edgellama.runtime.bench_session:SessionBench"


@dataclass
class Subject:
    """One artifact to measure: what its worker needs, and what the report says about it."""
    name: str
    spec: dict  # the worker's argument: {"runner": "module:Class", ...}
    tokenizer: object
    about: dict  # artifact, runtime, runner, recipe, quantization, artifact_bytes, model_bytes
    runs: list = field(default_factory=list)
    loads: list = field(default_factory=list)
    threads: int | None = None
    peak_rss_bytes: int = 0


def artifact_subject(folder: Path, threads: int, context_needed: int, force_memory: bool) -> Subject:
    """An artifact folder, checked (hashes, vocabulary, memory, context) before any worker starts."""
    from edgellama.export.artifact import model_files
    from edgellama.export.targets import by_runtime, load

    from .open import artifact_tokenizer, check_artifact_memory, check_vocab, read_artifact_manifest

    folder = Path(folder)
    manifest = read_artifact_manifest(folder)
    target = by_runtime(manifest["runtime"].get("runtime"))
    if target is None:
        raise InputError(f"{folder / 'manifest.json'}: runtime {manifest['runtime'].get('runtime')!r} is not "
                         f"supported by this edgellama version")
    context = manifest["options"].get("max_context_len")
    if isinstance(context, int) and context_needed > context:
        raise InputError(f"--prompt-len + --gen-len = {context_needed} positions exceed the context of {folder} "
                         f"({context}); lower them or re-export with a larger --max-context-len")
    check_artifact_memory(folder, manifest, force_memory)
    tokenizer = artifact_tokenizer(folder, manifest)
    declared = manifest["runtime"].get("get_vocab_size", manifest["runtime"].get("vocab_size"))
    if isinstance(declared, int):  # TextLLMRunner aborts the process on an id past the embedding
        check_vocab(tokenizer, declared, folder / manifest["tokenizer"]["file"])
    ref = target.bench or SESSION_BENCH
    runner = load(ref)
    files = manifest["files"]
    about = {"artifact": str(folder), "runtime": manifest["runtime"]["runtime"], "runner": runner.runner,
             "recipe": manifest.get("recipe"), "quantization": manifest["quantization"],
             "artifact_bytes": sum(f["bytes"] for f in files.values()),
             "model_bytes": sum(files[n]["bytes"] for n in model_files(manifest) if n in files)}
    return Subject(folder.name, {"runner": ref, **runner.spec(folder, manifest, threads)}, tokenizer, about)


class Worker:
    """The parent's end of one bench_worker process."""

    def __init__(self, subject: Subject):
        self.subject = subject
        self.log = tempfile.TemporaryFile(mode="w+")  # the runtimes' own stderr, shown if the worker dies
        # A peer runtime that cannot share edgellama's environment (bench/llamacpp_peer.py) names the
        # interpreter of its own venv, where edgellama is installed too.
        python = subject.spec.get("python", sys.executable)
        self.proc = subprocess.Popen([python, "-m", "edgellama.runtime.bench_worker", json.dumps(subject.spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        try:
            ready = self._read()
        except Exception:
            self.close()
            raise
        subject.loads.append(ready["load_s"])
        subject.threads = ready["threads"]
        self._note_rss(ready)

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = " | ".join(self.log.read().strip().splitlines()[-3:])
            raise RuntimeError(f"bench worker for {self.subject.about['artifact']} exited ({self.proc.wait()}): {tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise (InputError if reply["input"] else RuntimeError)(reply["error"])
        return reply

    def _note_rss(self, reply: dict) -> None:
        self.subject.peak_rss_bytes = max(self.subject.peak_rss_bytes, reply["peak_rss_bytes"])

    def run(self, text: str, ids: list[int], gen_len: int) -> dict:
        self.proc.stdin.write(json.dumps({"text": text, "ids": ids, "gen_len": gen_len}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        self._note_rss(reply)
        return reply["run"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def rates(raw: dict) -> dict:
    """A run's counts and times -> the reported record. The first new token comes out of the prompt's
    forward pass, so decode covers the generated tokens after it."""
    decode_tokens = raw["generated_tokens"] - 1
    return {**raw, "decode_tokens": decode_tokens, "prefill_tok_s": raw["prompt_tokens"] / raw["ttft_s"],
            "decode_tok_s": decode_tokens / raw["decode_s"]}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@dataclass
class Settings:
    prompt_len: int
    gen_len: int
    runs: int
    warmup: int
    threads: int
    prompt_file: Path | None


def measure(subjects: list[Subject], s: Settings, on_progress: Callable[[str], None] = lambda _m: None) -> dict:
    """Runs every subject as the module docstring says; returns the `bench --json` object."""
    from .bench_prompt import exact_prompt, paragraphs
    from .machine import machine

    paras = paragraphs(s.prompt_file)
    option = f"--prompt-file {s.prompt_file}" if s.prompt_file else "the packaged prompt text"
    skip = 0
    prompts = {id(x): exact_prompt(x.tokenizer, paras, s.prompt_len, skip, option) for x in subjects}
    load_average_start = os.getloadavg()
    compare = len(subjects) > 1
    for rotation in range(len(subjects)):
        order = subjects[rotation:] + subjects[:rotation]
        workers = {}
        try:
            for x in order:  # one at a time, so that each load is timed alone
                on_progress(f"loading {x.name}")
                workers[id(x)] = Worker(x)
            tries = MAX_PASSAGES if rotation == 0 else 1  # later rotations reuse the passage found
            for attempt in range(tries):
                stopped = warm_up(order, workers, prompts, s, on_progress)
                if stopped is None:
                    break
                if attempt + 1 == tries:
                    raise InputError(f"--gen-len {s.gen_len}: {stopped.about['artifact']} stops at EOS within it after "
                                     f"each of {tries} passage(s) of {option} ({stopped.about['runner']} cannot "
                                     f"ignore EOS); lower --gen-len or pass another --prompt-file")
                skip += 1
                prompts = {id(x): exact_prompt(x.tokenizer, paras, s.prompt_len, skip, option) for x in subjects}
            for r in range(s.runs):
                for x in (order if r % 2 == 0 else order[::-1]):
                    if compare:
                        time.sleep(IDLE_GAP_S)
                    text, ids = prompts[id(x)]
                    raw = workers[id(x)].run(text, ids, s.gen_len)
                    check_counts(x, raw, s)  # before rates: a run cut short at EOS has no decode span
                    record = rates(raw)
                    x.runs.append({**record, "rotation": rotation + 1})
                    on_progress(f"{x.name}: run {len(x.runs)}, decode {record['decode_tok_s']:.1f} tok/s")
        finally:
            for w in workers.values():
                w.close()
    results = [result(x) for x in subjects]
    first = results[0]
    ratios = [{"artifact": r["artifact"], "to": first["artifact"],
               **{k: r[k]["median"] / first[k]["median"] for k in ("decode_tok_s", "prefill_tok_s", "ttft_s")}}
              for r in results[1:]]
    return {"format_version": 1, "machine": machine(),
            "settings": {"prompt_len": s.prompt_len, "gen_len": s.gen_len, "runs": s.runs, "warmup": s.warmup,
                         "threads": s.threads, "prompt_file": str(s.prompt_file) if s.prompt_file else None,
                         "prompt_passage": skip + 1, "rotations": len(subjects),
                         "idle_gap_s": IDLE_GAP_S if compare else 0.0},
            "load_average": {"start": list(load_average_start), "end": list(os.getloadavg())},
            "results": results, "ratios": ratios}


def warm_up(order: list[Subject], workers: dict, prompts: dict, s: Settings, on_progress) -> Subject | None:
    """The warm-up generations; the first subject that stopped short of gen_len (at EOS), else None."""
    for x in order:
        for _ in range(s.warmup):
            on_progress(f"{x.name}: warm-up")
            text, ids = prompts[id(x)]
            if workers[id(x)].run(text, ids, s.gen_len)["generated_tokens"] < s.gen_len:
                return x
    return None


def check_counts(x: Subject, record: dict, s: Settings) -> None:
    if record["generated_tokens"] < s.gen_len and not s.warmup:
        raise InputError(f"--warmup 0: {x.about['artifact']} stopped at EOS after {record['generated_tokens']} of "
                         f"--gen-len {s.gen_len} tokens ({x.about['runner']} cannot ignore EOS); use --warmup 1, "
                         f"whose run picks a passage the model does not stop in")
    if (record["prompt_tokens"], record["generated_tokens"]) != (s.prompt_len, s.gen_len):
        raise RuntimeError(f"{x.about['runner']} ran {record['prompt_tokens']} prompt tokens and made "
                           f"{record['generated_tokens']}, not {s.prompt_len} and {s.gen_len}")


def result(x: Subject) -> dict:
    return {**x.about, "threads": x.threads, "load_s": spread(x.loads),
            **{k: spread([r[k] for r in x.runs]) for k in ("ttft_s", "prefill_tok_s", "decode_tok_s")},
            "peak_rss_bytes": x.peak_rss_bytes, "runs": x.runs}
