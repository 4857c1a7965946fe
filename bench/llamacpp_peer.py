"""llama.cpp as a peer: `llama-cpp-python` in a venv of its own, SmolLM2 GGUFs quantized by llama.cpp
itself from the same fp32 weights edgellama loads, and the runner `edgellama bench`'s worker drives.

The venv lives in the ignored cache (default .cache/peers/llamacpp) and is reused: pip compiles
llama.cpp from source, about 35 minutes on a 2-core box. edgellama is installed into it too (editable,
no dependencies) so that the bench worker runs there, and a .pth file puts bench/ on its path so that
the worker can import LlamaCppBench from this file.

The embedded model is a Q4_1 GGUF (token embedding Q8_0). Its tensors are dequantized to fp32 with
gguf-py, as edgellama's loader does (edgellama/formats/gguf_format.py), written to an F32 GGUF with the
original metadata and tokenizer, and that file is quantized with llama.cpp's own quantizer
(`llama_model_quantize`). Q4_0 and Q4_K_M of it therefore re-quantize a model once quantized to Q4_1.

Usage: python bench/llamacpp_peer.py [--cache DIR] [Q4_0 Q4_K_M ...]   (builds what is missing)"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS, REPO  # noqa: E402

PINS = ["llama-cpp-python==0.3.36"]
# llama_ftype values (llama.h): the file types llama.cpp's quantizer is asked for
FTYPES = {"Q4_0": 2, "Q4_K_M": 15}


def venv_python(cache: Path) -> Path:
    return cache / "llamacpp" / "bin" / "python"


def ensure_venv(cache: Path) -> Path:
    """The venv's python, with llama-cpp-python and this checkout's edgellama installed; llama.cpp is
    built once, edgellama reinstalled whenever the venv was made by another checkout (an editable
    install points at the folder that made it, which may be gone)."""
    venv = cache / "llamacpp"
    python = venv_python(cache)
    done = venv / ".complete"
    stamp = {"pins": PINS, "repo": str(REPO)}
    built = json.loads(done.read_text()) if done.exists() else None
    if built == stamp:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        print(f"building llama-cpp-python into {venv} (compiles llama.cpp: ~35 min on 2 cores)", flush=True)
    llama_cpp_built = built == PINS or (isinstance(built, dict) and built["pins"] == PINS)  # PINS: the old stamp
    if not llama_cpp_built:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "edgellama_bench_peers.pth").write_text(str(Path(__file__).resolve().parent) + "\n")
    done.write_text(json.dumps(stamp))
    return python


def ensure_fp32_gguf(cache: Path) -> Path:
    """The embedded GGUF with every tensor dequantized to F32 (metadata and tokenizer copied)."""
    import gguf
    import numpy as np

    from edgellama.default_model import default_model_path

    out = cache / "smollm2-f32.gguf"
    if out.exists():
        return out
    reader = gguf.GGUFReader(str(default_model_path()))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(gguf.LlamaFileType.ALL_F32)
        vtype = field.types[0]
        writer.add_key_value(field.name, value, vtype,
                             sub_type=field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None)
    for t in reader.tensors:
        data = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.rename(out)
    return out


def tensor_types(path: Path) -> dict:
    """How many tensors of each GGML type the file holds."""
    from collections import Counter

    import gguf

    return dict(Counter(t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors))


QUANTIZE = r"""
import sys, llama_cpp
src, dst, ftype, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = ftype
params.nthread = threads
code = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
sys.exit(code)
"""


def ensure_gguf(cache: Path, quant: str, threads: int = 2) -> tuple[Path, dict]:
    """SmolLM2 quantized by llama.cpp to `quant`; (file, build record)."""
    out = cache / f"llamacpp-smollm2-{quant}.gguf"
    record = out.with_suffix(".json")
    if out.exists() and record.exists():
        return out, json.loads(record.read_text())
    python = ensure_venv(cache)
    fp32 = ensure_fp32_gguf(cache)
    tmp = out.with_name(out.name + ".tmp")
    t0 = time.perf_counter()
    done = subprocess.run([str(python), "-c", QUANTIZE, str(fp32), str(tmp), str(FTYPES[quant]), str(threads)],
                          capture_output=True, text=True)
    if done.returncode or not tmp.exists():
        raise RuntimeError(f"llama_model_quantize {quant} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    seconds = round(time.perf_counter() - t0, 1)
    tmp.rename(out)
    # llama.cpp's log says how many tensors fell back to another type (K-quants need rows of 256)
    fallbacks = [line.strip() for line in done.stderr.splitlines() if "fallback" in line]
    record.write_text(json.dumps({"seconds": seconds, "ftype": quant, "source": fp32.name, "fallbacks": fallbacks,
                                  "tensor_types": tensor_types(out), "pins": PINS}, indent=1))
    return out, json.loads(record.read_text())


class LlamaCppBench:
    """A GGUF through llama.cpp (llama-cpp-python's Llama), timed as the other runners in
    runtime_py/bench_*.py: greedy, from an empty cache, our clock at each token. Runs in the bench
    worker inside the llama.cpp venv."""
    runner = "llama.cpp (llama-cpp-python)"
    stops_at_eos = False  # tokens are taken by argmax here: EOS is just another token

    def __init__(self, spec: dict):
        import os

        self.spec = spec
        # libgomp reads it when llama.cpp's library loads (in load()). On a shared, oversubscribed box the
        # default busy-wait collapses 2-thread decode (docs/bench.md); compare_peers.py says which it used.
        if spec.get("omp_wait_policy"):
            os.environ["OMP_WAIT_POLICY"] = spec["omp_wait_policy"]

    def load(self) -> float:
        from llama_cpp import Llama

        t0 = time.perf_counter()
        self.llm = Llama(self.spec["gguf"], n_ctx=self.spec["n_ctx"], n_batch=self.spec["n_ctx"],
                         n_threads=self.spec["threads"], n_threads_batch=self.spec["threads"], verbose=False)
        return time.perf_counter() - t0

    def threads(self) -> int:
        return self.spec["threads"]

    def _next(self, tokens: list[int]) -> int:
        import numpy as np

        self.llm.eval(tokens)
        return int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))

    def run(self, text: str, ids: list[int], gen_len: int) -> dict:
        self.llm.reset()  # n_tokens = 0: eval drops the KV cache from there on
        stamps = []
        t0 = time.perf_counter()
        token = self._next(ids)  # the prompt's forward pass; its last logits give the first token
        stamps.append(time.perf_counter())
        while len(stamps) < gen_len:
            token = self._next([token])
            stamps.append(time.perf_counter())
        return {"prompt_tokens": len(ids), "generated_tokens": len(stamps),
                "ttft_s": stamps[0] - t0, "decode_s": stamps[-1] - stamps[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("quants", nargs="*", help=f"of {', '.join(FTYPES)} (default: all)")
    ap.add_argument("--cache", type=Path, default=PEERS)
    a = ap.parse_args()
    unknown = set(a.quants) - set(FTYPES)
    if unknown:
        ap.error(f"unknown file type(s) {sorted(unknown)}; choose from {', '.join(FTYPES)}")
    for q in a.quants or FTYPES:
        print(ensure_gguf(a.cache, q))


if __name__ == "__main__":
    main()
