"""Quality of any peer artifact against the fp32 model, on the same WikiText-2 test windows: perplexity
(each window scored on its second half, as `edgellama eval-ppl` and llama.cpp's perplexity do) and
top-1 agreement with the fp32 model's next-token argmax at the same positions.

Each artifact is scored by its own runtime in a child process (in that runtime's venv when it has
one): a `.pte` through ExecuTorch's Runtime one token at a time (export_llm's and ours return the last
position only), an ONNX folder through onnxruntime-genai (one append, every position's logits), a GGUF
through llama.cpp (logits_all). The child writes, per window, the argmax and the log-probability of
the true next token at every scored position."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCORE = r"""
import json, sys
import numpy as np
kind, path, windows_file = sys.argv[1], sys.argv[2], sys.argv[3]
windows = json.loads(open(windows_file).read())


def rows_pte(ids):
    import torch
    import executorch.kernels.quantized  # noqa: F401
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
    from executorch.runtime import Runtime
    global method
    if "method" not in globals():
        method = Runtime.get().load_program(path).load_method("forward")
    out = []
    for pos, t in enumerate(ids[:-1]):
        (logits,) = method.execute([torch.tensor([[t]], dtype=torch.long), torch.tensor([pos], dtype=torch.long)])
        out.append(logits.reshape(-1, logits.shape[-1])[-1].float().numpy())
    return np.stack(out)


def rows_genai(ids):
    import onnxruntime_genai as og
    global model
    if "model" not in globals():
        model = og.Model(path)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids))
    gen = og.Generator(model, params)
    gen.append_tokens(ids)
    return np.asarray(gen.get_output("logits"), dtype=np.float32)[0, :-1]


def rows_gguf(ids):
    from llama_cpp import Llama
    global llm
    if "llm" not in globals():
        llm = Llama(path, n_ctx=len(ids), n_batch=len(ids), n_ubatch=len(ids), logits_all=True, verbose=False)
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:len(ids) - 1], dtype=np.float32)


rows = {"pte": rows_pte, "genai": rows_genai, "gguf": rows_gguf}[kind]
result = []
for ids in windows:
    half = len(ids) // 2
    logits = rows(ids)[half - 1:].astype(np.float64)  # the rows predicting ids[half:]
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = np.array(ids[half:])
    result.append({"argmax": logits.argmax(-1).tolist(), "logp": logp[np.arange(len(targets)), targets].tolist()})
print(json.dumps(result))
"""


def windows(n: int, ctx: int) -> list[list[int]]:
    """The first n windows of ctx tokens of the packaged WikiText-2 test text, in the embedded model's
    tokenizer (the one every peer shares)."""
    from edgellama.default_model import default_model_path
    from edgellama.evaluate import text_windows
    from edgellama.formats import open_checkpoint
    from edgellama.texts import evaluation_text
    from edgellama.tokenizer import tokenizer_for

    tok = tokenizer_for(open_checkpoint(default_model_path()))
    return text_windows(tok, evaluation_text().read_text(errors="replace"), ctx, n)


def fp32_reference(wins: list[list[int]]) -> list[dict]:
    """The same record as SCORE's, from the fp32 model edgellama loads (eager PyTorch)."""
    import torch

    import edgellama
    from edgellama.default_model import default_model_path

    model = edgellama.load_model(default_model_path()).eval()
    out = []
    with torch.no_grad():
        for ids in wins:
            half = len(ids) // 2
            logp = torch.log_softmax(model(torch.tensor([ids]))[0, half - 1:-1].double(), -1)
            targets = torch.tensor(ids[half:])
            out.append({"argmax": logp.argmax(-1).tolist(), "logp": logp[torch.arange(len(targets)), targets].tolist()})
    return out


def score(kind: str, path: Path, wins: list[list[int]], python: str | None = None) -> list[dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(wins, f)
        f.flush()
        # llama.cpp's OpenMP threads busy-wait by default, which crawls on a shared box (docs/bench.md)
        env = {**os.environ, "OMP_WAIT_POLICY": "passive"} if kind == "gguf" else None
        done = subprocess.run([python or sys.executable, "-c", SCORE, kind, str(path), f.name],
                              capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"scoring {path.name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def perplexity(scored: list[dict]) -> float:
    logps = [x for w in scored for x in w["logp"]]
    return math.exp(-sum(logps) / len(logps))


def top1_agreement(scored: list[dict], reference: list[dict]) -> float:
    pairs = [(a, b) for w, r in zip(scored, reference) for a, b in zip(w["argmax"], r["argmax"])]
    return sum(a == b for a, b in pairs) / len(pairs)
