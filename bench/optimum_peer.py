"""The optimum-onnx peer: Hugging Face's exporter traces the fp32 model to ONNX, then ONNX Runtime's
MatMulNBitsQuantizer makes its MatMul and Gather weights int4 (its int4 path, as ORT documents it).

optimum-onnx pins transformers<4.58 while this project's tests use transformers 5, so the export runs
in a venv of its own under the peers cache (created once; torch comes from this machine's local
torch==2.13.0). The result gets a genai_config.json so that onnxruntime_genai runs it like the others.

Usage (normally through bench/onnx_decode_speed.py --with-optimum):
    python bench/optimum_peer.py HF_FOLDER [--block-size 32] [--accuracy-level 4]"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS  # noqa: E402

# accelerate: optimum's export deduplicates the tied embedding/head weights only with it installed;
# onnx-ir: the quantizer imports it
PINS = ["torch==2.13.0", "optimum-onnx==0.1.0", "transformers<4.58", "accelerate", "onnx", "onnx-ir", "onnxruntime"]


def ensure_venv(cache: Path) -> Path:
    venv = cache / "venv-optimum"
    python = venv / "bin" / "python"
    done = venv / ".complete"
    if done.exists() and json.loads(done.read_text()) == PINS:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    done.write_text(json.dumps(PINS))
    return python


def v4_folder(hf: Path, cache: Path) -> Path:
    """transformers 5 writes rope_theta inside rope_parameters; 4.x reads it at the top level (and
    would silently fall back to 10000). The weights are shared by symlink."""
    out = cache / "smollm2-hf-v4"
    if (out / "config.json").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in hf.iterdir():
        (tmp / f.name).symlink_to(f.resolve())
    config = json.loads((hf / "config.json").read_text())
    config["rope_theta"] = config.get("rope_parameters", {}).get("rope_theta", config.get("rope_theta"))
    (tmp / "config.json").unlink()
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    tmp.rename(out)
    return out


def genai_config(hf: Path, model_file: str) -> dict:
    c = json.loads((hf / "config.json").read_text())
    return {
        "model": {"type": "llama", "bos_token_id": c["bos_token_id"], "eos_token_id": c["eos_token_id"],
                  "pad_token_id": c.get("pad_token_id", c["eos_token_id"]), "vocab_size": c["vocab_size"],
                  "context_length": c["max_position_embeddings"],
                  "decoder": {"filename": model_file, "session_options": {"provider_options": []},
                              "head_size": c["head_dim"], "hidden_size": c["hidden_size"],
                              "num_attention_heads": c["num_attention_heads"],
                              "num_hidden_layers": c["num_hidden_layers"],
                              "num_key_value_heads": c["num_key_value_heads"],
                              "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                                         "position_ids": "position_ids",
                                         "past_key_names": "past_key_values.%d.key",
                                         "past_value_names": "past_key_values.%d.value"},
                              "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                                          "present_value_names": "present.%d.value"}}},
        # optimum's graph concatenates past and new keys: no shared, preallocated cache buffer
        "search": {"max_length": c["max_position_embeddings"], "past_present_share_buffer": False,
                   "do_sample": False, "num_beams": 1},
    }


def ensure_optimum_model(cache: Path, hf: Path, block_size: int, accuracy_level: int) -> tuple[Path, float]:
    """optimum-cli export (fp32, with past) then MatMulNBitsQuantizer; (folder, build seconds)."""
    out = cache / f"optimum-smollm2-int4-b{block_size}-a{accuracy_level}"
    record = out / "build.json"
    if record.exists():
        return out, json.loads(record.read_text())["seconds"]
    python = ensure_venv(cache)
    source = v4_folder(hf, cache)
    fp32 = cache / "optimum-smollm2-fp32"
    if not (fp32 / "export.json").exists():
        shutil.rmtree(fp32, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run([str(python.parent / "optimum-cli"), "export", "onnx", "--model", str(source),
                        "--task", "text-generation-with-past", str(fp32)], check=True)
        (fp32 / "export.json").write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    export_seconds = json.loads((fp32 / "export.json").read_text())["seconds"]
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    code = """if True:
        import sys, onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        src, dst, block, level = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        q = MatMulNBitsQuantizer(onnx.load(src), bits=4, block_size=block, accuracy_level=level,
                                 op_types_to_quantize=("MatMul", "Gather"), quant_axes=(("MatMul", 0), ("Gather", 1)))
        q.process()
        q.model.save_model_to_file(dst, use_external_data_format=True)"""
    t1 = time.perf_counter()
    subprocess.run([str(python), "-c", code, str(fp32 / "model.onnx"), str(tmp / "model.onnx"), str(block_size),
                    str(accuracy_level)], check=True)
    quant_seconds = time.perf_counter() - t1
    (tmp / "genai_config.json").write_text(json.dumps(genai_config(hf, "model.onnx"), indent=1))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(hf / f, tmp / f)
    fp32_bytes = sum(f.stat().st_size for f in fp32.iterdir() if f.name.startswith("model.onnx"))
    (tmp / "build.json").write_text(json.dumps({
        "seconds": round(export_seconds + quant_seconds, 1), "export_seconds": round(export_seconds, 1),
        "quantize_seconds": round(quant_seconds, 1), "fp32_onnx_bytes": fp32_bytes, "pins": PINS}))
    tmp.rename(out)
    return out, json.loads(record.read_text())["seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf", type=Path)
    ap.add_argument("--block-size", type=int, default=32)
    ap.add_argument("--accuracy-level", type=int, default=4)
    ap.add_argument("--cache", type=Path, default=PEERS)
    a = ap.parse_args()
    print(ensure_optimum_model(a.cache, a.hf, a.block_size, a.accuracy_level))


if __name__ == "__main__":
    main()
