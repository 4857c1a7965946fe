"""The artifact runner inside the emulated aarch64 Python. Runs with only the guest's site-packages
(torch, executorch, onnxruntime, numpy): no edgellama here.

Protocol, over stdin/stdout: one JSON request per line, one JSON reply line per request; a reply
to "forward" is followed by the logits as raw little-endian float32 bytes ("shape" says how many).
  {"op": "load", "runtime": "executorch", "path": P}
  {"op": "load", "runtime": "onnxruntime", "path": P, "cache": [layers, kv_heads, context, head_dim]}
        -> {"ok": true, "metadata": {method: [values]}, "vocab": V, "versions": {...}}
  {"op": "forward", "tokens": [...], "pos": N} -> {"ok": true, "shape": [rows, vocab]} + bytes
  {"op": "quit"}
Failures reply {"ok": false, "error": "..."} and the worker goes on. The first line it writes is
{"ok": true, "ready": {"machine": ...}}; the runtime is imported by "load" (torch takes ~20 s)."""
import json
import os
import platform
import sys
import time
import types
from importlib import metadata

# Native code (ExecuTorch's logging, XNNPACK's cpuinfo) may print to fd 1; the protocol gets its own
# copy of the original stdout and fd 1 is pointed at stderr.
PROTOCOL = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(obj, payload=b""):
    PROTOCOL.write(json.dumps(obj).encode() + b"\n" + payload)
    PROTOCOL.flush()


def import_executorch():
    """executorch's runtime without executorch.exir: the pybindings module imports a few helpers
    from exir, whose package __init__ pulls in torch's compiler stack, which the stubbed CUDA
    wheel cannot import. A bare package object with the real __path__ lets those helpers load alone."""
    import torch
    import executorch

    root = list(executorch.__path__)[0]  # a namespace package: no __file__
    exir = types.ModuleType("executorch.exir")
    exir.__path__ = [os.path.join(root, "exir")]
    sys.modules["executorch.exir"] = exir
    # The kernels of the llama custom ops (sdpa, KV-cache update) and of the quantized embedding.
    torch.ops.load_library(os.path.join(root, "extension/llm/custom_ops/libcustom_ops_aot_lib.so"))
    torch.ops.load_library(os.path.join(root, "kernels/quantized/libquantized_ops_aot_lib.so"))
    from executorch.extension.pybindings import portable_lib

    return torch, portable_lib


class ExecuTorchRunner:
    def __init__(self, request):
        self.torch, portable_lib = import_executorch()
        self.versions = {"torch": self.torch.__version__, "executorch": metadata.version("executorch")}
        self.module = portable_lib._load_for_executorch(request["path"])
        self.metadata = {name: [v.tolist() if hasattr(v, "tolist") else v for v in self.module.run_method(name, ())]
                         for name in self.module.method_names() if name != "forward"}
        self.vocab = int(self.metadata["get_vocab_size"][0])  # the program's own vocabulary

    def forward(self, tokens, pos):
        torch = self.torch
        (logits,) = self.module.run_method("forward", (torch.tensor([tokens], dtype=torch.long),
                                                       torch.tensor([pos], dtype=torch.long)))
        return logits.reshape(-1, logits.shape[-1]).float().numpy()


class OnnxRunner:
    """The graph's static KV cache is fed back as the next call's past (the host binds one buffer
    to both; here the returned `present` arrays are kept)."""

    def __init__(self, request):
        import numpy as np
        import onnxruntime as ort

        self.np = np
        self.versions = {"onnxruntime": ort.__version__}
        self.session = ort.InferenceSession(request["path"], providers=["CPUExecutionProvider"])
        layers, heads, context, head_dim = request["cache"]
        self.cache = {f"past_key_values.{i}.{kind}": np.zeros((1, heads, context, head_dim), np.float32)
                      for i in range(layers) for kind in ("key", "value")}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.metadata = {}
        last = next(o.shape[-1] for o in self.session.get_outputs() if o.name == "logits")
        self.vocab = last if isinstance(last, int) else None  # the graph's own vocabulary, when static

    def forward(self, tokens, pos):
        np = self.np
        feeds = {"input_ids": np.array([tokens], np.int64), "attention_mask": np.ones((1, pos + len(tokens)), np.int64),
                 **self.cache}
        results = dict(zip(self.outputs, self.session.run(None, feeds)))
        for name in self.cache:
            self.cache[name] = results[name.replace("past_key_values.", "present.")]
        return results["logits"][0]


RUNNERS = {"executorch": ExecuTorchRunner, "onnxruntime": OnnxRunner}


def main():
    reply({"ok": True, "ready": {"machine": platform.machine(), "python": platform.python_version()}})
    runner = None
    for line in sys.stdin.buffer:
        request = json.loads(line)
        op = request.get("op")
        try:
            if op == "quit":
                break
            if op == "load":
                started = time.perf_counter()
                runner = RUNNERS[request["runtime"]](request)
                reply({"ok": True, "metadata": runner.metadata, "vocab": runner.vocab,
                       "versions": {**runner.versions, "load_seconds": round(time.perf_counter() - started, 1)}})
            elif op == "forward":
                rows = runner.forward(request["tokens"], request["pos"])
                reply({"ok": True, "shape": list(rows.shape)}, rows.astype("<f4").tobytes())
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # noqa: BLE001  the host decides what a failed request means
            text = str(e).strip()
            reply({"ok": False, "error": f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"})


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:  # the build's last step: import every runtime, report, exit
        started = time.perf_counter()
        torch, _ = import_executorch()
        import onnxruntime

        print(json.dumps({"torch": torch.__version__, "executorch": metadata.version("executorch"),
                          "onnxruntime": onnxruntime.__version__, "machine": platform.machine(),
                          "import_seconds": round(time.perf_counter() - started, 1)}), file=sys.stderr)
        reply({"ok": True})
    else:
        main()
