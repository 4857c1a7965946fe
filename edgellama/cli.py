"""The `edgellama` command. Each verb imports what it needs when it runs, so `--help` is instant."""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import InputError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Load, quantize, export and check Llama-family models for phones and edge boards.")
console = Console()  # stdout; not `out`, which is export's --out
err = Console(stderr=True)
_debug = {"on": bool(os.environ.get("EDGELLAMA_DEBUG"))}

ForceMemoryOpt = typer.Option(False, "--force-memory", help="Run even when the memory estimate exceeds the available memory.")
ModelOpt = typer.Option(None, "--model", "-m", help="Meta/HF checkpoint folder or .gguf file (default: embedded SmolLM2-135M-Instruct).")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for input errors.")):
    _debug["on"] = bool(os.environ.get("EDGELLAMA_DEBUG")) or debug


def resolve_model(model: Optional[Path]) -> Path:
    from .default_model import default_model_path

    return model if model is not None else default_model_path()


def dtype_of(name: str):
    from .quant import FLOAT_SCHEMES

    if name not in FLOAT_SCHEMES:
        raise InputError(f"--dtype {name}: unknown; use one of {', '.join(FLOAT_SCHEMES)}")
    return FLOAT_SCHEMES[name]


def load_with_progress(ckpt, dtype):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .loader import build_model

    with Progress(TextColumn("loading {task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(ckpt.path.name, total=len(ckpt.tensors))
        return build_model(ckpt, dtype, progress=lambda _name: bar.advance(task))


def check_prompt_fits(ids: list[int], context: int, fix: str) -> None:
    """Before any model runs: the prompt and at least one new token must fit the KV cache."""
    if not ids:
        raise InputError("--prompt: encodes to no tokens; pass some text")
    if len(ids) >= context:
        raise InputError(f"--prompt: {len(ids)} tokens do not fit a context of {context} positions "
                         f"(one more is needed for the answer); shorten the prompt or {fix}")


def generate_and_report(session, text: str, ids: list[int], sampling, max_new_tokens: int, as_json: bool,
                        source: dict) -> None:
    """Shared by `generate` and `run`: stream the text (or print one JSON object), then the stats."""
    from .runtime.generate import TextStreamer, generate

    tok = session.tokenizer
    streamer = None if as_json else TextStreamer(tok, lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    result = generate(session, ids, max_new_tokens, sampling, on_token=streamer)
    s = result.stats
    if as_json:
        print(json.dumps({**source, "prompt": text, "prompt_ids": ids, "tokens": result.tokens,
                          "text": tok.decode(result.tokens), "stop_reason": result.stop_reason,
                          "stats": s.to_dict()}, indent=1))
        return
    sys.stdout.write("\n")
    err.print(f"[dim]{s.prompt_tokens} prompt tokens, {s.new_tokens} new · TTFT {s.ttft_s * 1000:.0f} ms · "
              f"prefill {s.prefill_tok_s:.1f} tok/s · decode {s.decode_tok_s:.1f} tok/s · "
              f"peak RSS {s.peak_rss_mb:.0f} MB · stop: {result.stop_reason}[/]")


@app.command()
def inspect(path: Optional[Path] = typer.Argument(None, help="Checkpoint (default: the embedded model)."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON object (schema in README).")):
    """Describe a checkpoint: format, shards, architecture, parameters, tokenizer, size per quant scheme."""
    from dataclasses import asdict

    from .formats import open_checkpoint
    from .schemes import estimate_bytes
    from .tokenizer import tokenizer_for

    ckpt = open_checkpoint(resolve_model(path))
    tok = tokenizer_for(ckpt)
    arch = {k: v for k, v in asdict(ckpt.args).items() if k != "extra"}
    arch["head_dim"] = ckpt.args.head_dim
    sizes = {f"{scheme}" + (f"-g{g}" if g else ""): round(estimate_bytes(ckpt.args, scheme, g) / 2**20, 1)
             for scheme, g in (("fp32", 0), ("bf16", 0), ("8w", 0), ("8da4w", 32), ("8da4w", 128),
                               ("4w", 32), ("4w", 128))}
    report = {
        "path": str(ckpt.path), "format": ckpt.format, "files": [str(f) for f in ckpt.files],
        "shards": sum(1 for f in ckpt.files if f.suffix in (".pth", ".safetensors", ".bin", ".gguf")),
        "architecture": arch, "parameters": ckpt.args.num_params(), "dtypes": sorted(ckpt.source_dtypes),
        "tokenizer": {"kind": tok.kind, "vocab_size": tok.vocab_size, "bos_id": tok.bos_id, "eos_ids": tok.eos_ids,
                      "add_bos": tok.add_bos, "chat_template": bool(tok.chat_template)},
        "size_estimates_mb": sizes,
    }
    if as_json:
        print(json.dumps(report, indent=1))
        return
    from rich.table import Table

    console.print(f"[bold]{ckpt.path}[/]  ({ckpt.format}, {report['shards']} weight file(s), {', '.join(report['dtypes'])})")
    console.print(f"{report['parameters'] / 1e6:,.1f}M parameters · " +
              " · ".join(f"{k}={v}" for k, v in arch.items()))
    console.print(f"tokenizer: {tok.kind}, {tok.vocab_size} tokens, bos={tok.bos_id}, eos={tok.eos_ids}, "
              f"chat template: {'yes' if tok.chat_template else 'Llama 2 [INST]'}")
    table = Table("scheme", "estimated size (MiB)")
    for k, v in sizes.items():
        table.add_row(k, f"{v:,.1f}")
    console.print(table)


@app.command()
def generate(prompt: str = typer.Option(..., "--prompt", "-p"),
             model: Optional[Path] = ModelOpt,
             chat: bool = typer.Option(False, "--chat", help="Wrap the prompt in the model's chat template."),
             system: Optional[str] = typer.Option(None, "--system", help="System prompt (with --chat)."),
             max_new_tokens: int = typer.Option(128, "--max-new-tokens", "-n", min=1),
             temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0, help="0 = greedy."),
             top_k: int = typer.Option(0, "--top-k", min=0),
             top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0),
             seed: Optional[int] = typer.Option(None, "--seed"),
             max_context_len: int = typer.Option(2048, "--max-context-len", min=2, help="KV-cache positions."),
             dtype: str = typer.Option("fp32", "--dtype", help="fp32 | bf16 | fp16"),
             tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Override the checkpoint's tokenizer."),
             force_memory: bool = ForceMemoryOpt,
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of streaming text.")):
    """Generate text with the eager reference model (static KV cache), and report tok/s."""
    from .formats import open_checkpoint
    from .runtime.generate import Sampling
    from .runtime.session import EagerSession
    from .tokenizer import tokenizer_for

    path = resolve_model(model)
    ckpt = open_checkpoint(path)
    tok = tokenizer_for(ckpt, tokenizer)
    torch_dtype = dtype_of(dtype)
    text = tok.chat_prompt(prompt, system) if chat else prompt
    ids = tok.encode(text)
    context = min(max_context_len, ckpt.args.max_context_len)  # as EagerSession caps it
    check_prompt_fits(ids, context, f"raise --max-context-len (the model allows up to {ckpt.args.max_context_len})"
                      if max_context_len < ckpt.args.max_context_len else "use a model with a longer context")
    from .memory import check_memory, kv_cache_bytes, model_bytes, shape_of

    width, shape = torch_dtype.itemsize, shape_of(ckpt.args)
    check_memory({"model": model_bytes(shape, width),
                  f"KV cache of {context} positions": kv_cache_bytes(shape, context, width)},
                 force_memory, "lower --max-context-len or use --dtype bf16")
    session = EagerSession(load_with_progress(ckpt, torch_dtype), tok, max_context_len)
    generate_and_report(session, text, ids, Sampling(temperature, top_k, top_p, seed), max_new_tokens,
                        as_json, {"model": str(path)})


@app.command("export")
def export_cmd(out: Path = typer.Option(..., "--out", "-o", help="Artifact folder to create."),
               model: Optional[Path] = ModelOpt,
               recipe: Optional[str] = typer.Option(None, "--recipe", help="A TOML recipe file, or a name from export/recipes/."),
               target: Optional[str] = typer.Option(None, "--target", help="xnnpack (ExecuTorch .pte, ARM CPUs) | onnx (ONNX Runtime CPU) | qnn (Snapdragon NPU, HTP)"),
               quant: Optional[str] = typer.Option(None, "--quant", help="8da4w | 8da8w | 4w | 8w | fp32 | fp16 | bf16"),
               group_size: Optional[int] = typer.Option(None, "--group-size", help="32 | 64 | 128 | 256 | 0 (per-channel)"),
               quant_algo: Optional[str] = typer.Option(None, "--quant-algo", help="rtn | clip | scale-search"),
               size_budget: Optional[float] = typer.Option(None, "--size-budget", help="Mixed precision: keep the most sensitive linears at 8-bit within this x the all-int4 size (1.0 = off)."),
               embedding_quant: Optional[str] = typer.Option(None, "--embedding-quant", help="8w | 4w | none | head (onnx: the output head's table when the checkpoint ties them, else 8w)"),
               output_quant: Optional[str] = typer.Option(None, "--output-quant", help="Output head of int4 schemes: 8w (per-channel) | 4w (groups of --group-size)."),
               max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="Most tokens per forward call."),
               max_context_len: Optional[int] = typer.Option(None, "--max-context-len", help="KV-cache positions."),
               dtype: Optional[str] = typer.Option(None, "--dtype"),
               accuracy_level: Optional[int] = typer.Option(None, "--accuracy-level", help="onnx: MatMulNBits accuracy_level, 1 = fp32 (onnx-4w), 4 = int8 activations (the default recipe, onnx-4w-a8-mixed)."),
               calibration: Optional[str] = typer.Option(None, "--calibration", help="Text for calibrating algorithms (default: WikiText-2 valid.txt)."),
               soc: Optional[str] = typer.Option(None, "--soc", help="qnn: the Snapdragon SoC to compile for (SM8550, SM8650 default, SM8750, SM8850, SC8380XP)."),
               prefill_len: Optional[int] = typer.Option(None, "--prefill-len", help="qnn: tokens per prompt-graph call (= --max-seq-len); must divide --max-context-len."),
               parts: Optional[str] = typer.Option(None, "--parts", help="qnn: auto (each HTP context under 2 GB) or a number of parts."),
               contexts: Optional[str] = typer.Option(None, "--contexts", help="qnn: both (default) | simulator (one context per graph: loads in the x86 simulator) | device (a part's graphs share one copy of the weights)."),
               kv_bits: Optional[int] = typer.Option(None, "--kv-bits", help="qnn: the KV cache's encoding, 8 (default) or 16 bits (the v75 HTP multiplies by the cache at 8 bits either way: docs/qnn.md)."),
               logits: Optional[str] = typer.Option(None, "--logits", help="last (xnnpack default: the position a runner samples from) | all (onnx default; parity steps a last-only .pte one token at a time)."),
               force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
               force_memory: bool = ForceMemoryOpt,
               as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON.")):
    """Export a checkpoint to an artifact folder (model + tokenizer + manifest.json)."""
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .export import ExportOptions, export, load_recipe
    from .stages import StageClock

    given = {k: v for k, v in dict(target=target, quant=quant, group_size=group_size, quant_algo=quant_algo,
                                   size_budget=size_budget, embedding_quant=embedding_quant, output_quant=output_quant,
                                   max_seq_len=prefill_len if prefill_len is not None else max_seq_len,
                                   max_context_len=max_context_len, dtype=dtype,
                                   accuracy_level=accuracy_level, calibration=calibration, soc=soc,
                                   parts=parts, contexts=contexts, kv_bits=kv_bits, logits=logits).items() if v is not None}
    # Options given on the command line override the recipe; with no recipe, a target's default recipe.
    from .export.targets import TARGETS

    default = TARGETS[given["target"]].default_recipe if given.get("target") in TARGETS else "xnnpack-8da4w"
    base = load_recipe(recipe or default)
    options = ExportOptions(**{**base, **given}, given=frozenset(given))
    path = resolve_model(model)
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting")
        clock = StageClock(lambda line: err.print(f"[dim]{_escape(line)}[/]", highlight=False))

        def stage(name):
            clock(name)
            bar.update(task, description=name or "")
        try:
            manifest = export(path, options, out, force=force, progress=stage, force_memory=force_memory,
                              notice=lambda note: _one_line(f"[yellow]note:[/] {_escape(note)}"))
            clock(None)  # the last stage's line; on an error only the error line is printed
        finally:
            clock.stop.set()
    if as_json:
        print(json.dumps(manifest, indent=1))
        return
    sizes = ", ".join(f"{n} {f['bytes'] / 2**20:.1f} MiB" for n, f in manifest["files"].items())
    out_note = manifest["runtime"].get("delegation", {})
    err.print(f"[green]exported[/] {out} in {time.perf_counter() - t0:.0f} s: {sizes}")
    if "ops" in manifest["runtime"]:
        err.print("ONNX ops: " + ", ".join(f"{k} {v}" for k, v in manifest["runtime"]["ops"].items()))
    if out_note:
        err.print(f"XNNPACK: {out_note['delegate_calls']} delegate calls; matmuls left on portable kernels: "
                  f"{out_note['undelegated_matmuls'] or 'none'}")


@app.command("eval-ppl")
def eval_ppl(model: Optional[Path] = ModelOpt,
             text: Path = typer.Option(..., "--text", help="Plain text to score, e.g. WikiText-2 test.txt."),
             quant: str = typer.Option("fp32", "--quant", help="8da4w | 8da8w | 4w | 8w | fp32 | fp16 | bf16"),
             group_size: int = typer.Option(32, "--group-size", help="32 | 64 | 128 | 256 | 0 (per-channel)"),
             quant_algo: str = typer.Option("scale-search", "--quant-algo", help="rtn | clip | scale-search"),
             size_budget: float = typer.Option(1.0, "--size-budget", help="Mixed precision budget (1.0 = off)."),
             embedding_quant: str = typer.Option("8w", "--embedding-quant", help="8w | 4w | head | none"),
             output_quant: str = typer.Option("8w", "--output-quant", help="Output head of int4 schemes: 8w | 4w."),
             calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration text (default: WikiText-2 valid.txt)."),
             ctx: int = typer.Option(512, "--ctx", min=2, help="Window length; each window is scored on its second half."),
             windows: Optional[int] = typer.Option(None, "--windows", min=1, help="Score only the first N windows."),
             compare_fp32: bool = typer.Option(False, "--compare-fp32", help="Also report top-1 agreement with the fp32 model."),
             as_json: bool = typer.Option(False, "--json")):
    """Perplexity of a (quantized) model on a text file, computed as llama.cpp does."""
    import time

    from .algorithms import calibration_windows
    from .evaluate import perplexity, text_windows
    from . import texts
    from .formats import open_checkpoint
    from .layerwise import quantize_checkpoint
    from .quant import FLOAT_SCHEMES, QuantSpec, eager_twin
    from .schemes import SCHEMES
    from .tokenizer import tokenizer_for

    path = resolve_model(model)
    ckpt = open_checkpoint(path)
    if quant not in SCHEMES:
        raise InputError(f"--quant {quant}: unknown scheme; use one of {', '.join(SCHEMES)}")
    if ctx > ckpt.args.max_context_len:
        raise InputError(f"--ctx {ctx}: the model's context is {ckpt.args.max_context_len} tokens; choose a smaller --ctx")
    tokenizer = tokenizer_for(ckpt)
    scored = text_windows(tokenizer, texts.read_text(text, "--text"), ctx, windows)
    if not scored:
        raise InputError(f"{text}: fewer than {ctx} tokens; pass a longer text or a smaller --ctx")
    integer = quant not in FLOAT_SCHEMES
    spec = QuantSpec.from_options(quant, group_size, quant_algo, embedding_quant, output_quant, size_budget)
    calib = None
    if spec.needs_calibration:
        calib = calibration_windows(tokenizer, calibration or texts.calibration_text())
    t0 = time.perf_counter()
    quantized = quantize_checkpoint(ckpt, spec, calib)
    if integer:
        eager_twin(quantized)
    reference = quantize_checkpoint(ckpt, QuantSpec(scheme="fp32")) if compare_fp32 and quant != "fp32" else None
    result = perplexity(quantized, scored, reference=reference)
    record = {"model": str(path), "text": str(text), "ctx": ctx, "windows": len(scored), "scored_tokens": result.tokens,
              "quantization": spec.to_dict(), "ppl": result.ppl, "top1_agreement_fp32": result.top1_agreement,
              "seconds": round(time.perf_counter() - t0, 1)}
    if as_json:
        print(json.dumps(record, indent=1))
        return
    agree = f", top-1 agreement with fp32 {result.top1_agreement:.3f}" if result.top1_agreement is not None else ""
    print(f"perplexity {result.ppl:.3f} over {result.tokens} tokens ({len(scored)} windows of {ctx}){agree}")


@app.command()
def run(artifact: Path = typer.Argument(..., help="An artifact folder from `edgellama export`."),
        prompt: str = typer.Option(..., "--prompt", "-p"),
        chat: bool = typer.Option(False, "--chat"),
        system: Optional[str] = typer.Option(None, "--system"),
        max_new_tokens: int = typer.Option(128, "--max-new-tokens", "-n", min=1),
        temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0),
        top_k: int = typer.Option(0, "--top-k", min=0),
        top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0),
        seed: Optional[int] = typer.Option(None, "--seed"),
        force_memory: bool = ForceMemoryOpt,
        as_json: bool = typer.Option(False, "--json")):
    """Generate from an exported artifact (.pte or .onnx), streaming tokens as they come."""
    from .runtime.generate import Sampling
    from .runtime.open import open_artifact

    session, manifest = open_artifact(artifact, force_memory=force_memory)
    tok = session.tokenizer
    text = tok.chat_prompt(prompt, system) if chat else prompt
    ids = tok.encode(text)
    check_prompt_fits(ids, session.info.max_context_len, "re-export with a larger --max-context-len")
    generate_and_report(session, text, ids, Sampling(temperature, top_k, top_p, seed), max_new_tokens,
                        as_json, {"artifact": str(artifact)})


@app.command()
def parity(artifact: Path = typer.Argument(..., help="An artifact folder from `edgellama export`."),
           reference: Optional[Path] = typer.Option(None, "--reference", help="The fp32 checkpoint to compare with (default: the source path in the manifest)."),
           prompts: Optional[Path] = typer.Option(None, "--prompts", help="Prompt set: .jsonl of {\"prompt\", \"chat\"} or .txt, one per line (default: the shipped set)."),
           text: Optional[Path] = typer.Option(None, "--text", help="Text file for teacher-forced windows (default: the packaged WikiText-2 test.txt)."),
           max_prompts: Optional[int] = typer.Option(None, "--max-prompts", min=1, help="Use only the first N prompts of the set (default: all; qnn: 4, the HTP simulator is slow)."),
           windows: Optional[int] = typer.Option(None, "--windows", min=0, help="How many windows of --text (default 4; qnn: 2)."),
           window_len: int = typer.Option(128, "--window-len", min=2, help="Tokens per window (at most the artifact's context)."),
           gen_tokens: Optional[int] = typer.Option(None, "--gen-tokens", min=1, help="Greedy tokens generated after each prompt (default 32; qnn: 8)."),
           thresholds: Optional[Path] = typer.Option(None, "--thresholds", help="TOML limits per scheme and reference (default: the shipped thresholds.toml)."),
           report: Optional[Path] = typer.Option(None, "--report", help="Write parity.json, parity.md and PNG plots into this folder."),
           arch: Optional[str] = typer.Option(None, "--arch", help="Run the artifact on another CPU architecture's kernels: arm64 (a .pte or ONNX artifact in its runtime's aarch64 build under QEMU; build it once with `make arm-env`). Adds a third comparison: the same artifact on this machine."),
           cpu: Optional[str] = typer.Option(None, "--cpu", help="Emulated CPU for --arch arm64: neoverse-n1 (default, dotprod) | max-nosme (i8mm, SVE2)."),
           force_memory: bool = ForceMemoryOpt,
           as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object.")):
    """Check an artifact against the fp32 model (quality) and the same-recipe eager twin (fidelity);
    with --arch, also against the same artifact run on this machine.
    Exit 0 = PASS, 1 = FAIL (each failing metric printed with its value and threshold), 2 = bad input."""
    import time

    from rich.markup import escape

    from . import texts
    from .runtime.open import check_arch, open_artifact, read_artifact_manifest
    from .runtime.parity import encode_prompts, load_prompts, run_parity, text_windows
    from .runtime.thresholds import default_thresholds_file, limits_for, load_thresholds

    def say(msg):
        if not as_json:
            err.print(f"[dim]{escape(msg)}[/]", soft_wrap=True, highlight=False)

    started = time.perf_counter()
    # Every input is checked, and the artifact's hashes verified, before any model is loaded.
    if report is not None:
        from .paths import check_can_create

        check_can_create(report, "--report")
    manifest = read_artifact_manifest(artifact)
    emulated = check_arch(manifest, arch, cpu)
    scheme = manifest["quantization"]["scheme"]
    limits = limits_for(load_thresholds(thresholds), manifest["runtime"].get("thresholds", scheme), thresholds)
    # A target whose runtime is slow here (the HTP simulator) records smaller defaults in its manifest,
    # and so does an emulated architecture.
    defaults = {"prompts": None, "windows": 4, "gen_tokens": 32, **manifest["runtime"].get("parity_defaults", {}),
                **(emulated.parity_defaults if emulated else {})}
    max_prompts = max_prompts or defaults["prompts"]
    windows = defaults["windows"] if windows is None else windows
    gen_tokens = gen_tokens or defaults["gen_tokens"]
    prompt_set = load_prompts(prompts)[:max_prompts]
    text_file = text or texts.evaluation_text()
    if windows:
        texts.read_text(text_file, "--text", 1 << 16)  # refused now, not after the models are loaded
    context = manifest["options"]["max_context_len"]
    if gen_tokens >= context - 1:
        raise InputError(f"--gen-tokens {gen_tokens}: the artifact's context is {context} positions; choose fewer than {context - 1}")

    from .runtime.references import check_reference_memory, reference_sessions

    check_reference_memory(manifest, context, force_memory)
    session, manifest = open_artifact(artifact, manifest, force_memory=force_memory, arch=arch, cpu=cpu, say=say)
    prompt_ids = encode_prompts(session.tokenizer, prompt_set, context - gen_tokens)
    window_len = min(window_len, context)
    window_ids = text_windows(session.tokenizer, text_file, windows, window_len) if windows else []

    references, paths = reference_sessions(artifact, manifest, reference, context, say)
    if emulated:  # the same artifact on this machine's kernels: what changes with the architecture alone
        import platform

        from .runtime.references import HOST

        say(f"opening the artifact on this machine too ({HOST})")
        references[HOST], _ = open_artifact(artifact, manifest, force_memory=force_memory)
        paths[HOST] = f"{artifact} (this machine, {platform.machine()})"
    result = run_parity(session, manifest, references, paths, prompt_ids, window_ids, gen_tokens, limits, say)
    result = {"artifact": str(artifact), "scheme": scheme, "recipe": manifest.get("recipe"),
              "arch": {"name": arch, "cpu": getattr(session, "cpu", None),
                       **getattr(session, "ready", {})} if emulated else None,
              "quantization": manifest["quantization"],
              "thresholds_file": str(thresholds or default_thresholds_file()),
              "inputs": {"prompts": str(prompts or "shipped prompt set"), "prompt_count": len(prompt_ids),
                         "gen_tokens": gen_tokens, "text": str(text_file) if window_ids else None,
                         "windows": len(window_ids), "window_len": window_len},
              **result, "seconds": round(time.perf_counter() - started, 1)}
    if report:
        from .runtime.report import write_report

        write_report(result, report)
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        from .runtime.report import terminal_table

        console.print(terminal_table(result))
        if report:
            console.print(f"report: {escape(str(report))}/parity.md", highlight=False)
        console.print(f"[bold {'green' if result['verdict'] == 'PASS' else 'red'}]{result['verdict']}[/]")
    for line in result["failures"]:
        err.print(f"[red]{escape(line)}[/]", highlight=False, soft_wrap=True)
    if result["failures"]:
        raise typer.Exit(1)


@app.command()
def bundle(artifacts: list[Path] = typer.Argument(..., help="Artifact folders of one model (a .pte folder, an ONNX folder, ...)."),
           out_path: Path = typer.Option(..., "--out", "-o", help="Bundle folder to create, or FILE.zip."),
           name: Optional[str] = typer.Option(None, "--name", help="Bundle name, its folder on the phone (default: the --out name)."),
           parity: list[Path] = typer.Option([], "--parity", help="parity.json from `edgellama parity --report` on one of the artifacts (repeatable)."),
           as_json: bool = typer.Option(False, "--json", help="Print the bundle manifest as JSON.")):
    """Bundle the artifacts of one model for the Android app (manifest.json per edgellama/android/bundle.schema.json)."""
    from .android.bundle import make_bundle

    manifest = make_bundle(artifacts, out_path, name, parity)
    if as_json:
        print(json.dumps(manifest, indent=1))
        return
    total = sum(f["bytes"] for f in manifest["files"])
    kinds = ", ".join(f"{r['type']} ({r['backend']})" for r in manifest["runtimes"])
    err.print(f"[green]bundled[/] {manifest['name']} into {out_path}: {kinds}; {len(manifest['files'])} files, "
              f"{total / 2**20:.1f} MiB", highlight=False)


@app.command()
def push(bundle_dir: Path = typer.Argument(..., help="A bundle folder from `edgellama bundle`."),
         device: str = typer.Option(..., "--device", help="adb:SERIAL, as `adb devices` lists it."),
         as_json: bool = typer.Option(False, "--json", help="Print what was pushed as JSON.")):
    """Copy a bundle to /data/local/tmp/edgellama/NAME/ on a phone, skipping files it already holds."""
    from .android.push import push as push_bundle

    report = push_bundle(bundle_dir, device, say=lambda msg: err.print(f"[dim]{msg}[/]", highlight=False))
    if as_json:
        print(json.dumps(report, indent=1))
        return
    err.print(f"[green]pushed[/] {len(report['pushed'])} files ({report['bytes_pushed'] / 2**20:.1f} MiB), "
              f"{report['skipped']} already there, to {report['device']}:{report['remote']}", highlight=False)


@app.command()
def bench(artifacts: list[Path] = typer.Argument(..., help="An artifact folder (with --compare, several; with --device, a bundle folder)."),
          compare: bool = typer.Option(False, "--compare", help="Measure the artifacts interleaved and counterbalanced; print each one's ratio to the first."),
          prompt_len: int = typer.Option(128, "--prompt-len", min=1, help="Prompt tokens, exactly (BOS included)."),
          gen_len: int = typer.Option(128, "--gen-len", min=2, help="Tokens generated per run, exactly."),
          runs: int = typer.Option(5, "--runs", min=1, help="Measured runs (with --compare: per artifact per load order)."),
          warmup: int = typer.Option(1, "--warmup", min=0, help="Unmeasured runs first, per artifact."),
          threads: int = typer.Option(0, "--threads", min=0, help="CPU threads of the runtime (0: its default)."),
          prompt_file: Optional[Path] = typer.Option(None, "--prompt-file", help="Text the prompt is cut from (default: the packaged WikiText-2 test text)."),
          device: Optional[str] = typer.Option(None, "--device", help="adb:SERIAL: run on an Android phone through the demo app (a bundle folder)."),
          runtime: Optional[str] = typer.Option(None, "--runtime", help="--device: which runtime of the bundle (executorch | onnxruntime; default: its first)."),
          timeout: float = typer.Option(1800, "--timeout", min=1, help="--device: seconds to wait for the app's results."),
          force_memory: bool = ForceMemoryOpt,
          out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the JSON object to this file."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys in docs/bench.md).")):
    """Latency of an artifact: load, time to first token, prefill and decode tok/s, peak RSS (docs/bench.md)."""
    from rich.markup import escape

    if len(artifacts) > 1 and not compare:
        raise InputError(f"{len(artifacts)} artifacts given; add --compare to measure them against each other")
    if compare and len(artifacts) < 2:
        raise InputError("--compare: give two or more artifact folders")
    if device and (compare or len(artifacts) > 1):
        raise InputError("--device: give one bundle folder (--compare runs on this host only)")
    if runtime and not device:
        raise InputError("--runtime: only with --device (on this host the artifact's manifest names its runtime)")
    if out_file is not None:
        if out_file.is_dir():
            raise InputError(f"--out {out_file}: is a folder; pass a file name such as bench.json")
        if not out_file.exists():
            from .paths import check_can_create

            check_can_create(out_file, "--out")
    say = lambda msg: err.print(f"[dim]{escape(msg)}[/]", highlight=False)  # noqa: E731
    if device:
        from .runtime.bench_device import bench_on_device

        record = bench_on_device(artifacts[0], device, runtime, prompt_len, gen_len, runs, timeout, say)
    else:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from .runtime.bench import Settings, artifact_subject, measure

        subjects = [artifact_subject(a, threads, prompt_len + gen_len, force_memory) for a in artifacts]
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=True) as bar:
            task = bar.add_task("starting")
            record = measure(subjects, Settings(prompt_len, gen_len, runs, warmup, threads, prompt_file),
                             lambda msg: bar.update(task, description=escape(msg)))
    text = json.dumps(record, indent=1)
    if out_file is not None:
        out_file.write_text(text + "\n")
    if as_json:
        print(text)
        return
    from .runtime.bench_report import machine_line, ratio_lines, terminal_table

    console.print(terminal_table(record))
    console.print(machine_line(record["machine"]), highlight=False, soft_wrap=True)
    for line in ratio_lines(record):
        console.print(line, highlight=False)


@contextmanager
def _native_stdout_to_stderr():
    """Native libraries print to file descriptor 1 (QNN's HTP library announces its thread-local
    config there), which would corrupt `--json` output: fd 1 goes to stderr while a verb runs, and
    Python's sys.stdout keeps writing to the real stdout."""
    python_out = sys.stdout
    python_out.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    if _writes_fd1(python_out):
        sys.stdout = os.fdopen(os.dup(saved), "w", buffering=1, encoding=python_out.encoding, errors=python_out.errors)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        if sys.stdout is not python_out:
            sys.stdout.close()
            sys.stdout = python_out


def _writes_fd1(stream) -> bool:
    try:
        return stream.fileno() == 1
    except (AttributeError, OSError, ValueError):  # io.StringIO and friends (tests capturing output)
        return False


def main() -> None:
    """The one exception boundary: every error reaches the user as one line. Exit codes: 0 success,
    1 parity FAIL (only `parity` raises it), 2 bad input or environment, 3 internal error."""
    if not (_debug["on"] or "--debug" in sys.argv[1:]):
        _quiet_libraries()
    try:
        with _native_stdout_to_stderr():
            app()
    except InputError as e:
        if _debug["on"]:
            raise
        _one_line(f"[red]error:[/] {_escape(str(e))}")
        sys.exit(2)
    except MemoryError:
        if _debug["on"]:
            raise
        _one_line("[red]error:[/] out of memory; close other programs, or use a smaller model, "
                  "--max-context-len or --max-seq-len")
        sys.exit(2)
    except KeyboardInterrupt:
        _one_line("[red]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001  anything else is our bug, reported as such, not as bad input
        if _debug["on"]:
            raise
        import traceback

        frames = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        detail = str(e).splitlines()[0][:200] if str(e) else ""
        _one_line(f"[red]internal error:[/] {type(e).__name__}: {_escape(detail)}{where}; "
                  f"run with --debug and report it")
        sys.exit(3)


def _quiet_libraries() -> None:
    """What the libraries print on every run is noise in front of the one line a user must read:
    torchao logs "Failed to load ..._C_cutlass_90a.abi3.so" (GPU kernels, absent on a CPU box), torch's
    pytree and executorch warn about their own deprecations. --debug shows them again."""
    import logging
    import warnings

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", module=r"executorch\..*")
    warnings.filterwarnings("ignore", message=".*ExperimentalWarning.*|This API is experimental")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _one_line(markup: str) -> None:
    err.print(markup, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
