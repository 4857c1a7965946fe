"""The .pte runner inside the emulated aarch64 Python. Runs with only the guest's site-packages
(torch, executorch, numpy): no edgellama here.

Protocol, over stdin/stdout: one JSON request per line, one JSON reply line per request; a reply
to "forward" is followed by the logits as raw little-endian float32 bytes ("shape" says how many).
  {"op": "load", "path": P}                -> {"ok": true, "metadata": {method: [values]}}
  {"op": "forward", "tokens": [...], "pos": N} -> {"ok": true, "shape": [rows, vocab]} + bytes
  {"op": "quit"}
Failures reply {"ok": false, "error": "..."} and the worker goes on. The first line it writes, once
torch and executorch are imported, is {"ok": true, "ready": {...versions...}}."""
import json
import os
import sys
import time
import types

# Native code (ExecuTorch's logging, XNNPACK's cpuinfo) may print to fd 1; the protocol gets its own
# copy of the original stdout and fd 1 is pointed at stderr.
PROTOCOL = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(obj, payload=b""):
    PROTOCOL.write(json.dumps(obj).encode() + b"\n" + payload)
    PROTOCOL.flush()


def import_runtime():
    """executorch's runtime without executorch.exir: the pybindings module imports a few helpers
    from exir, whose package __init__ pulls in torch's compiler stack, which the stubbed CUDA
    wheel cannot import. A bare package object with the real __path__ lets those helpers load alone."""
    started = time.perf_counter()
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

    import platform
    from importlib import metadata

    versions = {"torch": torch.__version__, "executorch": metadata.version("executorch"),
                "machine": platform.machine(), "import_seconds": round(time.perf_counter() - started, 1)}
    return torch, portable_lib, versions


def main():
    torch, portable_lib, versions = import_runtime()
    reply({"ok": True, "ready": versions})
    module = None
    for line in sys.stdin.buffer:
        request = json.loads(line)
        op = request.get("op")
        try:
            if op == "quit":
                break
            if op == "load":
                module = portable_lib._load_for_executorch(request["path"])
                names = [n for n in module.method_names() if n != "forward"]
                metadata = {}
                for name in names:
                    out = module.run_method(name, ())
                    metadata[name] = [v.tolist() if hasattr(v, "tolist") else v for v in out]
                reply({"ok": True, "metadata": metadata})
            elif op == "forward":
                tokens = torch.tensor([request["tokens"]], dtype=torch.long)
                pos = torch.tensor([request["pos"]], dtype=torch.long)
                (logits,) = module.run_method("forward", (tokens, pos))
                rows = logits.reshape(-1, logits.shape[-1]).float().contiguous()
                reply({"ok": True, "shape": list(rows.shape)}, rows.numpy().astype("<f4").tobytes())
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # noqa: BLE001  the host decides what a failed request means
            reply({"ok": False, "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"})


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:  # the build's last step: import, report, exit
        print(json.dumps(import_runtime()[2]), file=sys.stderr)
        reply({"ok": True})
    else:
        main()
