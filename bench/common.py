"""Shared by the bench scripts: where results go, what machine made them, synthetic checkpoints."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CACHE = REPO / ".cache" / "bench"  # git-ignored: synthetic checkpoints are many GB
PEERS = REPO / ".cache" / "peers"  # git-ignored: our artifacts and the peers' builds, reused across runs


def machine() -> dict:
    import psutil

    return {"cpu": cpu(), "cores": os.cpu_count(),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def cpu() -> str:
    """The architecture, the CPU's model name and its widest vector units: matmul speed, and with it
    the default recipe's path (sensitivity.int8_units), differs between boxes by them."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    units = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return ", ".join(x for x in (platform.machine(), name, "+".join(units)) if x)


def write_results(name: str, record: dict, table_rows: list[list], header: list[str], note: str = "") -> Path:
    """bench/results/NAME.json (the record) and NAME.md (a table a README can quote, then `note`)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), **record}
    # paths inside this checkout are written relative to it: a result names no one's folders
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1).replace(f"{REPO}/", ""))
    m = record["machine"]
    lines = [f"Measured {m['date']} on {m['cores']} cores, {m['ram_gib']} GiB RAM ({m['cpu']}).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table_rows]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n" + (f"\n{note}\n" if note else ""))
    return RESULTS / f"{name}.md"


def run_measured(code: str) -> dict:
    """Run python `code` in a fresh process (so peak RSS is its own); it must print one JSON line."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


# Model-parallel shards of Meta's own releases: 7B in 1, 13B in 2, 70B in 8.
META_SHARDS = {"llama2-7b": 1, "llama2-13b": 2, "llama2-70b": 8}
# The dimension along which Meta's model-parallel layers split a weight (norms are replicated).
SPLIT_DIM = {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0, "wo": 1, "w2": 1, "tok_embeddings": 1}


def synthetic_meta(config: str, dtype: str = "bf16") -> Path:
    """A Meta-format checkpoint with the named shapes, random N(0, 0.02) weights and Meta's number of
    model-parallel shards (`consolidated.NN.pth`, each weight split as Meta's are). Written once,
    kept under .cache/; one shard is in memory at a time (13B: 13 GB), each weight drawn whole from
    a seed of its own name, so every shard slices the same tensor."""
    import torch

    from edgellama.model import CONFIGS, skeleton

    folder = CACHE / f"{config}-meta-{dtype}"
    done = folder / ".complete"
    if done.exists():
        synthetic_tokenizer(folder)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    args, shards = CONFIGS[config], META_SHARDS[config]
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    shapes = {name: tuple(p.shape) for name, p in skeleton(args).named_parameters()}

    def shard_of(name: str, shape: tuple, rank: int):
        if len(shape) == 1:
            return torch.ones(shape, dtype=torch_dtype)
        g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))
        whole = torch.randn(*shape, generator=g, dtype=torch.float32) * 0.02
        return whole.chunk(shards, dim=SPLIT_DIM[name.split(".")[-2]])[rank].to(torch_dtype).clone()

    for rank in range(shards):
        torch.save({name: shard_of(name, shape, rank) for name, shape in shapes.items()},
                   folder / f"consolidated.{rank:02d}.pth")
        print(f"wrote {folder.name}/consolidated.{rank:02d}.pth", file=sys.stderr, flush=True)
    (folder / "params.json").write_text(json.dumps({
        "dim": args.dim, "n_layers": args.n_layers, "n_heads": args.n_heads, "n_kv_heads": args.n_kv_heads,
        "multiple_of": 256, "norm_eps": args.norm_eps, "vocab_size": args.vocab_size}))
    synthetic_tokenizer(folder)
    done.touch()
    return folder


def synthetic_tokenizer(folder: Path, vocab_size: int = 8000) -> Path:
    """A sentencepiece BPE tokenizer.model with byte fallback (as Llama 2's), trained on WikiText-2
    valid.txt: exports need a tokenizer, and Llama 2's own is not available here."""
    import sentencepiece as spm

    path = folder / "tokenizer.model"
    if not path.exists():
        from edgellama.texts import calibration_text

        text = calibration_text()
        spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "tokenizer.tmp"), model_type="bpe",
                                       vocab_size=vocab_size, byte_fallback=True, bos_id=1, eos_id=2, unk_id=0,
                                       minloglevel=2)
        (folder / "tokenizer.tmp.model").rename(path)
        (folder / "tokenizer.tmp.vocab").unlink()
    return path
