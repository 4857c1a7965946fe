"""An artifact run by its runtime's aarch64 build under QEMU, as a Session: the guest worker
(guest/worker.py) is started once per session and asked for logits over a pipe. The arithmetic is
that of the aarch64 kernels on the emulated CPU: QEMU computes what the instructions compute, so
only speed should differ from a real ARM core of the same features (not yet compared with a phone). `ArmExecuTorchSession` runs a .pte,
`ArmOnnxSession` an ONNX artifact (export/targets.py maps each target to its class)."""
from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

import numpy as np

from edgellama.errors import InputError
from edgellama.runtime.session import Session, SessionInfo

from .launch import guest_command
from .paths import GUEST, arm_env
from .profiles import qemu_cpu


def _no_core_files() -> None:
    """QEMU writes a core file of the guest into the working folder when it crashes; none wanted."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _stop(proc: subprocess.Popen, log) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


class ArmSession(Session):
    runtime = ""  # the worker's runner: "executorch" | "onnxruntime"
    runtime_name = ""  # for messages

    def __init__(self, folder: Path, manifest: dict, tokenizer=None, cpu: str | None = None,
                 say=lambda _msg: None):
        env = arm_env().require()
        self.cpu = qemu_cpu(cpu)
        meta = manifest["runtime"]
        path = Path(folder).resolve() / meta["model_file"]
        argv, environ = guest_command(env, self.cpu, str(GUEST / "worker.py"))
        self.log = tempfile.TemporaryFile(mode="w+b")  # the guest's stderr, read back when it dies
        say(f"starting {self.runtime_name}'s aarch64 runtime under QEMU (-cpu {self.cpu})")
        started = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     preexec_fn=_no_core_files)
        weakref.finalize(self, _stop, self.proc, self.log)
        self.ready = self._reply("starting Python")["ready"]
        self._send({"op": "load", "runtime": self.runtime, "path": str(path), **self.load_options(meta)})
        loaded = self._reply(f"importing {self.runtime_name} and loading {path.name}")
        if not loaded["ok"]:
            from edgellama.runtime.open import unloadable

            raise unloadable(path, f"{self.runtime_name} (aarch64)", RuntimeError(loaded["error"]))
        self.ready.update(loaded["versions"])
        say(f"aarch64 runtime up in {time.perf_counter() - started:.0f} s ({self.ready['machine']}, "
            + ", ".join(f"{k} {v}" for k, v in loaded["versions"].items() if k != "load_seconds") + ")")
        self.metadata, self.vocab = loaded["metadata"], loaded["vocab"]
        self.tokenizer = tokenizer
        self.chunk, self.info = self.describe(meta)

    def load_options(self, meta: dict) -> dict:
        return {}

    def describe(self, meta: dict) -> tuple[int, SessionInfo]:
        """-> (prefill chunk length, SessionInfo) from the manifest and the loaded artifact."""
        raise NotImplementedError

    # -- the pipe -------------------------------------------------------------------------------

    def _send(self, request: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._died("sending a request")

    def _reply(self, doing: str) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._died(doing)
        reply = json.loads(line)
        if "ready" not in reply and reply.get("ok") is None:
            raise RuntimeError(f"unexpected reply from the aarch64 worker: {line[:200]!r}")
        return reply

    def _died(self, doing: str):
        """The guest process ended without answering: one line saying how and where."""
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        self.log.seek(0)
        lines = [ln.strip() for ln in self.log.read().decode(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("qemu:")), lines[-1] if lines else "no output")
        raise InputError(f"--arch arm64: the aarch64 runtime under QEMU (-cpu {self.cpu}) died while {doing} "
                         f"({how}; last message: {last[:200]}); try --cpu neoverse-n1, or rebuild the "
                         f"environment with `make arm-env`")

    # -- Session ----------------------------------------------------------------------------------

    def forward(self, tokens: list[int]) -> np.ndarray:
        self._send({"op": "forward", "tokens": list(map(int, tokens)), "pos": self.pos})
        reply = self._reply(f"running forward at position {self.pos}")
        if not reply["ok"]:
            raise RuntimeError(f"aarch64 forward failed: {reply['error']}")
        rows, vocab = reply["shape"]
        data = self.proc.stdout.read(rows * vocab * 4)
        if len(data) < rows * vocab * 4:
            self._died(f"sending logits at position {self.pos}")
        return np.frombuffer(data, dtype="<f4").reshape(rows, vocab).astype(np.float32)

    def prefill(self, tokens):
        self._check_room(len(tokens))
        rows = []
        for i in range(0, len(tokens), self.chunk):  # as the runners do for prompts over the chunk length
            part = tokens[i:i + self.chunk]
            logits = self.forward(part)
            self.pos += len(part)
            rows.append(logits[-len(part):])
        return np.concatenate(rows)

    def reset(self):
        # custom_sdpa and GroupQueryAttention read only cache positions below the current one
        self.pos = 0

    def close(self) -> None:
        if self.proc.poll() is None:
            self._send({"op": "quit"})
            self.proc.wait(timeout=30)


class ArmExecuTorchSession(ArmSession):
    runtime, runtime_name = "executorch", "ExecuTorch"

    def describe(self, meta):
        return meta["get_max_seq_len"], SessionInfo(meta["get_max_context_len"], self.vocab, meta["get_n_layers"],
                                                    meta["get_bos_id"] if meta["get_bos_id"] >= 0 else None,
                                                    list(meta["get_eos_ids"]))

    def runtime_metadata(self) -> dict:
        return {name: (v[0] if len(v) == 1 and not name.endswith("_ids") else v)
                for name, v in sorted(self.metadata.items())}


class ArmOnnxSession(ArmSession):
    runtime, runtime_name = "onnxruntime", "ONNX Runtime"

    def load_options(self, meta):
        return {"cache": [meta["n_layers"], meta["n_kv_heads"], meta["max_context_len"], meta["head_dim"]]}

    def describe(self, meta):
        return meta["max_seq_len"], SessionInfo(meta["max_context_len"], self.vocab or meta["vocab_size"], meta["n_layers"],
                                                meta["bos_id"], list(meta["eos_ids"]))
