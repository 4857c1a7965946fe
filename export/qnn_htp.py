"""The Snapdragon NPU target (`--target qnn`): per part a prompt graph (AR = --prefill-len), a token
graph (AR = 1) and a first-token graph (AR = 1, position 0's own encodings) with static shapes,
16-bit activations and edgellama's int4 weights
(`qnn_graph.py`), activation encodings calibrated on text (`qnn_calibrate.py`), each graph compiled
by ONNX Runtime's QNN EP into an EP-context model + QNN context binary for the chosen SoC.

The folder keeps, per graph, the QDQ model (what the HTP is asked to compute: parity's twin runs it
on the CPU EP) and the compiled context (what runs on the HTP: here in the QNN EP's x86 simulator,
on a phone on the NPU); `genai_config.json` describes the set as an onnxruntime-genai
decoder-pipeline."""
from __future__ import annotations

import itertools
import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edgellama.errors import InputError

from edgellama.runtime.qnn_session import FIRST, GRAPHS

from .options import ExportOptions

if TYPE_CHECKING:
    from .weight_file import WeightFile

# name -> (QNN soc_model, HTP arch); from the QNN EP's documented SoC table (docs/qnn.md).
SOCS = {"SM8550": (43, 73), "SM8650": (57, 75), "SM8750": (69, 79), "SM8850": (87, 81), "SC8380XP": (60, 73)}
BLOCK_SIZES = (16, 32, 64)  # int4 block sizes the HTP compiled and computed right (docs/qnn.md); 8-bit: one block per row
SCHEMES = ("4w", "8w")
# Bytes of weights per part. One HTP context must stay under 2 GB (ai-hub-models#129), but on a
# 24 GiB machine the compiler's memory binds first: compiling a part's three graphs into one shared
# context peaks at ~11x the part's weight bytes beside the ~3 GiB the export still holds (7B parts of
# 1.1 GB: 15.45 GiB peak RSS; of 804 MiB: 10.94 GiB; docs/qnn.md). 640 MiB: a 7B model in 6 parts.
PART_LIMIT = 640 << 20
GENAI_CONFIG = "genai_config.json"
# Two forms of a part's compiled contexts: name -> (file suffix, do its two graphs share one copy of the weights?).
# The x86 simulator loads only contexts compiled one per graph (shared ones fail with
# QNN_COMMON_ERROR_NOT_SUPPORTED); a phone loads both, and the shared form holds the weights once.
CONTEXT_SETS = {"simulator": ("sim", False), "device": ("device", True)}


def check_options(options: ExportOptions) -> None:
    if options.soc not in SOCS:
        raise InputError(f"--soc {options.soc}: unknown Snapdragon SoC; use one of {', '.join(SOCS)}")
    if options.quant not in SCHEMES:
        raise InputError(f"--quant {options.quant}: the qnn target takes weight schemes 4w or 8w "
                         f"(activations are 16-bit, calibrated); use --quant 4w")
    if options.quant == "4w" and options.group_size not in BLOCK_SIZES:
        raise InputError(f"--group-size {options.group_size}: the HTP's block quantization takes int4 blocks of "
                         f"{', '.join(map(str, BLOCK_SIZES))}; use --group-size 32")
    if options.max_context_len % options.max_seq_len:
        raise InputError(f"--prefill-len {options.max_seq_len}: must divide --max-context-len {options.max_context_len} "
                         f"(the prompt graph fills the context in whole calls); use e.g. --prefill-len 128 with 512 or 1024")
    if options.dtype != "fp32" or options.logits != "all":
        raise InputError("--dtype/--logits: not options of --target qnn (16-bit activations, every position's "
                         "logits); drop them")
    if options.kv_bits not in (8, 16):
        raise InputError(f"--kv-bits {options.kv_bits}: the KV cache is 8-bit (default) or 16-bit; use 8 or 16")
    if options.contexts not in (*CONTEXT_SETS, "both"):
        raise InputError(f"--contexts {options.contexts}: use both (default), simulator (checkable here) or device "
                         f"(one copy of each part's weights, for a phone)")
    if options.parts != "auto" and not (options.parts.isdigit() and int(options.parts) >= 1):
        raise InputError(f"--parts {options.parts}: use auto or a positive number of parts")


def weight_bytes(model) -> list[int]:
    """Bytes each layer's weights take in the graphs: integers at their bit width, float tensors as
    uint16 (qnn_graph.py), the embedding table counted with the first layer and the head with the last."""
    def size(p):
        return p.numel() * (int(str(p.target_dtype).removeprefix("torch.int")) if hasattr(p, "qdata") else 16) // 8

    sizes = [sum(size(p) for p in layer.parameters()) for layer in model.layers]
    sizes[0] += size(model.tok_embeddings.weight)
    sizes[-1] += size(model.output.weight)
    return sizes


def plan_parts(sizes: list[int], parts: str) -> list[tuple[int, int]]:
    """Consecutive layer ranges of about equal bytes (`sizes`: weight_bytes); `auto`: as few parts as
    keep each under PART_LIMIT."""
    if parts != "auto":
        return balanced(sizes, min(int(parts), len(sizes)))
    for count in range(min(max(1, math.ceil(sum(sizes) / PART_LIMIT)), len(sizes)), len(sizes) + 1):
        plan = balanced(sizes, count)
        if max(sum(sizes[s:e]) for s, e in plan) <= PART_LIMIT:
            return plan
    return plan  # a layer over the limit on its own: one layer per part is the least there is


def balanced(sizes: list[int], count: int) -> list[tuple[int, int]]:
    """`count` ranges of at least one layer, each ending where the running total is nearest its share."""
    total, running = sum(sizes), list(itertools.accumulate(sizes))  # running[j - 1]: bytes of layers before j
    bounds = [0]
    for k in range(1, count):
        ends = range(bounds[-1] + 1, len(sizes) - (count - k) + 1)
        bounds.append(min(ends, key=lambda j: abs(running[j - 1] - k * total / count)))
    bounds.append(len(sizes))
    return list(zip(bounds[:-1], bounds[1:]))


def compile_context(qdq: Path, ctx: Path, soc: str, config: dict | None = None) -> None:
    """The QNN EP compiles `qdq` for the SoC and writes the EP-context model `ctx` (+ its .bin).
    Which node the HTP refused is only in ONNX Runtime's native log, so stderr is captured meanwhile."""
    from edgellama.runtime.qnn_session import open_graph

    soc_model, arch = SOCS[soc]
    with native_stderr() as log:
        try:
            open_graph(qdq, "htp", {"soc_model": soc_model, "htp_arch": arch},
                       {"ep.context_enable": "1", "ep.context_embed_mode": "0", "ep.context_file_path": str(ctx),
                        **(config or {})},
                       log_level=2)
            return
        except Exception as e:  # onnxruntime raises its own Fail/RuntimeException types
            reason = str(e).strip().splitlines()[0][:200]
        nodes = rejected_nodes(log.read_text(errors="replace"))
    raise InputError(f"{qdq}: the HTP rejected {nodes or 'the graph'} ({reason}); report it with this file") from None


def rejected_nodes(log: str) -> str:
    """'node NAME (OP), ...' from the QNN EP's validation messages."""
    import re

    found = [f"node {name or '?'} ({op})" for name, op in re.findall(r"failed for node `([^`]*)` of type `([^`]*)`", log)]
    found += [f"node {name.strip() or '?'} ({op.strip()})"
              for name, op in re.findall(r"\{ name: ([^,]*), type: ([^}]*)\}", log)]
    return ", ".join(dict.fromkeys(found))


@contextmanager
def native_stderr():
    """File descriptor 2 (where ONNX Runtime's C++ logger writes) redirected to a temp file."""
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("w+b", suffix=".log") as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield Path(f.name)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def qairt_version() -> str:
    """The QAIRT (QNN SDK) release whose HTP libraries onnxruntime-qnn ships."""
    from onnxruntime_qnn import build_and_package_info

    return build_and_package_info.qnn_version


def write_model(model, tokenizer, options: ExportOptions, folder: Path, say) -> dict:
    from edgellama.algorithms import calibration_windows
    from edgellama.runtime.qnn_session import qnn_devices

    from .onnx_cpu import write_genai_tokenizer
    from .qnn_calibrate import REST, calibrate_part
    from .qnn_graph import PartSpec
    from .weight_file import WeightFile

    qnn_devices()  # fails early, with the install hint, when onnxruntime-qnn is missing
    a = model.args
    ar, context = options.max_seq_len, options.max_context_len
    plan = plan_parts(weight_bytes(model), options.parts)
    soc_model, arch = SOCS[options.soc]
    meta = {"runtime": "onnxruntime-qnn", "provider": "QNNExecutionProvider (HTP)", "soc": options.soc,
            "soc_model": soc_model, "htp_arch": arch, "qairt": qairt_version(), "prefill_len": ar,
            "max_seq_len": ar, "max_context_len": context, "vocab_size": a.vocab_size, "n_layers": a.n_layers,
            "n_kv_heads": a.n_kv_heads, "head_dim": a.head_dim, "rope_theta": a.rope_theta,
            "bos_id": tokenizer.bos_id, "eos_ids": list(tokenizer.eos_ids), "thresholds": f"qnn-a16w{8 if options.quant == '8w' else 4}"}
    say(f"planned {len(plan)} part(s): layers {', '.join(f'{s}-{e - 1}' for s, e in plan)}")
    windows = calibration_windows(tokenizer, options.calibration or _default_text(), count=4, length=4 * ar)
    sets = CONTEXT_SETS if options.contexts == "both" else {options.contexts: CONTEXT_SETS[options.contexts]}
    parts, files, encodings, carried = [], [], {FIRST: {}, REST: {}}, None
    for p, (s, e) in enumerate(plan):  # one part at a time: calibrate, write, release its weights
        spec = PartSpec(s, e, a.n_layers, ar, context)
        weights = WeightFile(folder / f"part{p}.qdq.data")
        found, carried = calibrate_part(model, spec, p, weights, windows, meta, carried, options.kv_bits, say)
        for kind, ranges in found.items():  # the next part's input encoding is this part's output encoding
            encodings[kind].update(ranges)
        qdq = write_qdq_graphs(model, spec, encodings, weights, p, say)
        release_weights(model, spec)
        parts.append({"layers": [s, e], "qdq": qdq})
        files += [qdq[kind] for kind in GRAPHS] + [qdq["data"]]
    for p, part in enumerate(parts):  # the compiler needs the files only: it runs once the model is gone
        part["contexts"] = {name: compile_part(folder, p, options.soc, name, say) for name in sets}
        files += [f for c in part["contexts"].values() for f in (*(c[kind] for kind in GRAPHS), *c["binaries"])]
    (folder / GENAI_CONFIG).write_text(json.dumps(genai_config(tokenizer, meta, parts), indent=1))
    write_genai_tokenizer(tokenizer, folder)
    for name in sets:
        say(f"{name} context binaries: " + ", ".join(f"part{p} {pt['contexts'][name]['bytes'] / 2**20:.1f} MiB"
                                                     for p, pt in enumerate(parts)))
    return {**meta, "parts": parts, "model_file": parts[0]["qdq"]["prompt"], "model_files": files,
            "genai_config": GENAI_CONFIG, "calibration_windows": len(windows), "calibration_tokens_per_window": 4 * ar,
            "encodings": {kind: len(found) for kind, found in encodings.items()}, "context_sets": {name: CONTEXT_SETS[name][1] for name in sets},
            # The simulator takes seconds per SmolLM2 step (docs/qnn.md): parity's default set, scaled to fit.
            "parity_defaults": {"prompts": 4, "gen_tokens": 8, "windows": 2}}


def release_weights(model, part) -> None:
    """Drop what a written part used (its layers, the embedding, the head): write_model consumes the
    model, so a 7B export holds its quantized weights only until their graphs are written."""
    import gc

    from torch import nn

    for i in range(part.first, part.last):
        model.layers[i] = nn.Module()
    if part.embeds:
        model.tok_embeddings = nn.Module()
    if part.has_head:
        model.norm, model.output = nn.Module(), nn.Module()
    gc.collect()


def write_qdq_graphs(model, prompt, encodings: dict, weights: WeightFile, p: int, say) -> dict:
    """Part p's prompt, token and first-token QDQ graphs, all reading the part's one weight file."""
    import onnx_ir as ir

    from .qnn_calibrate import REST
    from .qnn_graph import PartSpec, build_part

    out = {"data": weights.path.name}
    for kind, calls, ranges in (("prompt", prompt.ar, REST), ("token", 1, REST), (FIRST, 1, FIRST)):
        graph, _ = build_part(model, PartSpec(prompt.first, prompt.last, prompt.n_layers, calls, prompt.context),
                              encodings[ranges], weights)
        path = weights.path.parent / f"part{p}-{kind}.qdq.onnx"
        say(f"writing {path.name}")
        ir.save(graph, path)
        out[kind] = path.name
    weights.close()
    return out


def compile_part(folder: Path, p: int, soc: str, name: str, say) -> dict:
    """Part p's graphs compiled for the SoC as one context set (CONTEXT_SETS)."""
    suffix, shared_weights = CONTEXT_SETS[name]
    out, t0 = {}, time.perf_counter()
    for kind in GRAPHS:
        say(f"compiling part{p}-{kind} for the {soc} HTP (v{SOCS[soc][1]}), {name} contexts")
        config = {"ep.share_ep_contexts": "1", **({"ep.stop_share_ep_contexts": "1"} if kind == GRAPHS[-1] else {})} \
            if shared_weights else {}
        out[kind] = f"part{p}-{kind}.{suffix}.onnx"
        compile_context(folder / f"part{p}-{kind}.qdq.onnx", folder / out[kind], soc, config)
    out["binaries"] = sorted(f.name for f in folder.glob(f"part{p}-*.{suffix}_qnn.bin"))
    out["bytes"] = sum((folder / b).stat().st_size for b in out["binaries"])
    out["compile_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _default_text():
    from edgellama.texts import calibration_text

    return calibration_text()


def genai_config(tokenizer, meta: dict, parts: list[dict]) -> dict:
    """onnxruntime-genai's decoder-pipeline over the context models: the prompt graphs run on the
    prompt, the token graphs on each generated token; the QNN EP with the SoC's options. The
    first-token graphs are not in it: the pipeline has no stage for one position (unverified work,
    docs/qnn.md)."""
    qnn = {"qnn": {"backend_path": "libQnnHtp.so", "soc_model": str(meta["soc_model"]), "htp_arch": str(meta["htp_arch"])}}
    pipeline = []
    for p, part in enumerate(parts):
        contexts = part["contexts"].get("device") or part["contexts"]["simulator"]
        layers = range(*part["layers"])
        inputs = ["input_ids" if p == 0 else "hidden_in", "attention_mask", "position_cos", "position_sin",
                  *[f"past_{kv}_{i}" for i in layers for kv in ("key", "value")]]
        outputs = ["logits" if p == len(parts) - 1 else "hidden_out", *[f"new_{kv}_{i}" for i in layers for kv in ("key", "value")]]
        for kind in ("prompt", "token"):
            pipeline.append({f"part{p}-{kind}": {
                "filename": contexts[kind], "inputs": inputs, "outputs": outputs,
                "session_options": {"log_id": f"part{p}-{kind}", "provider_options": [qnn]},
                "run_on_prompt": kind == "prompt", "run_on_token_gen": kind == "token"}})
    eos = list(tokenizer.eos_ids)
    return {"model": {
        "type": "decoder-pipeline", "bos_token_id": tokenizer.bos_id if tokenizer.bos_id is not None else eos[0],
        "eos_token_id": eos if len(eos) > 1 else eos[0], "pad_token_id": eos[0], "vocab_size": meta["vocab_size"],
        "context_length": meta["max_context_len"],
        "decoder": {"head_size": meta["head_dim"], "num_key_value_heads": meta["n_kv_heads"],
                    "num_hidden_layers": meta["n_layers"],
                    "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                               "past_key_names": "past_key_%d", "past_value_names": "past_value_%d"},
                    "outputs": {"logits": "logits", "present_key_names": "new_key_%d", "present_value_names": "new_value_%d"},
                    "sliding_window": {"window_size": meta["prefill_len"], "pad_value": 0, "alignment": "left",
                                       "slide_key_value_cache": False},
                    "pipeline": pipeline}},
        "search": {"do_sample": False, "max_length": meta["max_context_len"], "num_beams": 1, "top_k": 1}}
