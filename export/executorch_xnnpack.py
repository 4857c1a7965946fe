"""ExecuTorch `.pte` for ARM CPUs: static KV cache through ExecuTorch's llama custom ops,
torch.export with a dynamic prompt length, XNNPACK delegation, and the constant methods that
ExecuTorch's LLM runner (TextLLMRunner, Android's LlmModule) reads."""
from __future__ import annotations

from pathlib import Path

import torch

from edgellama.kv_cache import install_static_cache

from .options import ExportOptions

MODEL_FILE = "model.pte"
# The int8 output head runs with dynamic int8 activations: XNNPACK computes that exactly as torchao's
# eager model does (max |diff| 2e-7, measured), and weight-only linears are broken here (below).
OUTPUT_QUANT = "8da8w"
# executorch 1.5.1's XNNPACK delegate drops the weight scales of weight-only quantized linears
# (torchao IntxWeightOnlyConfig): a 4w or 8w linear comes out 1/scale too large (measured:
# max |diff| 147 for 4w g32, 2900 for 8w, on outputs of magnitude 1), so those schemes are refused.
UNSUPPORTED_SCHEMES = {"4w": "8da4w", "8w": "8da8w"}


def check_options(options: ExportOptions) -> None:
    if options.quant in UNSUPPORTED_SCHEMES:
        from edgellama.errors import InputError

        raise InputError(f"--quant {options.quant}: weight-only linears give wrong results in executorch 1.5.1's "
                         f"XNNPACK delegate (scales dropped); use --quant {UNSUPPORTED_SCHEMES[options.quant]} for "
                         f"--target xnnpack, or {options.quant} with --target onnx")


def runner_metadata(model, tokenizer, options: ExportOptions) -> dict:
    """The runner's constant methods. get_max_seq_len is the most tokens one forward call takes
    (longer prompts are fed in chunks), get_max_context_len the KV-cache length."""
    return {
        "get_max_seq_len": options.max_seq_len,
        "get_max_context_len": options.max_context_len,
        "get_vocab_size": model.args.vocab_size,
        "get_n_layers": model.args.n_layers,
        "get_bos_id": tokenizer.bos_id if tokenizer.bos_id is not None else -1,
        "get_eos_ids": list(tokenizer.eos_ids),
        "use_kv_cache": True,
        "use_sdpa_with_kv_cache": True,
        "enable_dynamic_shape": True,
    }


def export_program(model, options: ExportOptions):
    """torch.export of forward(tokens[1, T], input_pos[1]) with 1 <= T <= max_seq_len."""
    install_static_cache(model, options.max_context_len, dtype=torch.float32, kind="executorch")
    example = (torch.zeros(1, 2, dtype=torch.long), torch.tensor([0], dtype=torch.long))
    seq = torch.export.Dim("seq", min=1, max=options.max_seq_len)
    with torch.no_grad():
        return torch.export.export(model, example, dynamic_shapes=({1: seq}, None), strict=False)


def lower(program, metadata: dict):
    from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.passes import MemoryPlanningPass
    from executorch.exir.passes.sym_shape_eval_pass import ConstraintBasedSymShapeEvalPass

    edge = to_edge_transform_and_lower(
        program, partitioner=[XnnpackPartitioner()], constant_methods=metadata,
        compile_config=EdgeCompileConfig(_check_ir_validity=False, _skip_dim_order=True))
    edge = edge.transform([ConvertToLinearPass()])  # anything XNNPACK left runs as linear, not transpose + mm
    # Quant fusion turns torchao's dequantize_affine -> embedding into quantized_decomposed::embedding_byte
    # (ExecuTorch's quantized embedding kernel), as ExecuTorch's own LLM export does.
    return edge, edge.to_executorch(ExecutorchBackendConfig(
        extract_delegate_segments=True, do_quant_fusion_and_const_prop=True,
        memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False),
        sym_shape_eval_pass=ConstraintBasedSymShapeEvalPass()))


def write_model(model, tokenizer, options: ExportOptions, folder: Path, say) -> dict:
    import executorch.kernels.quantized  # noqa: F401  (quantized embedding kernels, for the check below)

    metadata = runner_metadata(model, tokenizer, options)
    say("torch.export")
    program = export_program(model, options)
    say("lowering to XNNPACK")
    edge, et_program = lower(program, metadata)
    say("writing model.pte")
    with open(folder / MODEL_FILE, "wb") as f:
        et_program.write_to_file(f)
    return {"model_file": MODEL_FILE, "runtime": "executorch", "backend": "xnnpack", **metadata,
            "delegation": delegation_summary(edge)}


def delegation_summary(edge) -> dict:
    """How much of the graph XNNPACK took: delegate calls and any linear/matmul left on portable kernels."""
    graph = edge.exported_program().graph
    calls = [n for n in graph.nodes if n.op == "call_function"]
    delegates = sum(1 for n in calls if "executorch_call_delegate" in str(n.target))
    undelegated = sorted({str(n.target) for n in calls
                          if any(k in str(n.target) for k in ("linear", "mm.default", "bmm", "addmm", "matmul"))})
    return {"delegate_calls": delegates, "undelegated_matmuls": undelegated,
            "portable_ops": sorted({str(n.target).split(".")[-2] if "." in str(n.target) else str(n.target)
                                    for n in calls if "executorch_call_delegate" not in str(n.target)
                                    and "getitem" not in str(n.target)})}
