"""ExecuTorch `.pte` for ARM CPUs: static KV cache through ExecuTorch's llama custom ops,
torch.export with a dynamic prompt length, XNNPACK delegation, and the constant methods that
ExecuTorch's LLM runner (TextLLMRunner, Android's LlmModule) reads."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch

from edgellama.kv_cache import install_static_cache
from edgellama.model import RMSNorm, Rotary

from .options import ExportOptions

MODEL_FILE = "model.pte"
# The output head follows the linears' 8da scheme (schemes.head_scheme): XNNPACK computes dynamic int8
# activations exactly as torchao's eager model does (max |diff| 2e-7, measured), and weight-only
# linears are broken here (below).
# executorch 1.5.1's XNNPACK delegate drops the weight scales of weight-only quantized linears
# (torchao IntxWeightOnlyConfig): a 4w or 8w linear comes out 1/scale too large (measured:
# max |diff| 147 for 4w g32, 2900 for 8w, on outputs of magnitude 1), so those schemes are refused.
UNSUPPORTED_SCHEMES = {"4w": "8da4w", "8w": "8da8w"}


def check_options(options: ExportOptions) -> None:
    from edgellama.errors import InputError

    if options.embedding_quant == "head":
        raise InputError("--embedding-quant head: shares the head's table in ONNX only (GatherBlockQuantized); "
                         "use 8w or 4w for --target xnnpack")
    if options.quant == "8da8w" and options.group_size != 0:
        # XNNPACK has int8 weights per channel only ("Only 4b group quantization is supported", raised
        # inside the delegate after the whole quantization; measured on a one-linear program).
        if "group_size" in options.given:
            raise InputError(f"--quant 8da8w --group-size {options.group_size}: XNNPACK takes int8 weights per "
                             f"channel only; pass --group-size 0 (or --quant 8da4w for groups)")
        options.adjust("group_size", 0, "does not apply to 8da8w: XNNPACK takes int8 weights per channel only")
    if options.quant in UNSUPPORTED_SCHEMES:
        raise InputError(f"--quant {options.quant}: weight-only linears give wrong results in executorch 1.5.1's "
                         f"XNNPACK delegate (scales dropped); use --quant {UNSUPPORTED_SCHEMES[options.quant]} for "
                         f"--target xnnpack, or {options.quant} with --target onnx")


# XNNPACK's int4 kernels take groups in multiples of 32 only, and per channel (--group-size 0) the
# group is the whole input row: "Delegation to XNNPACK requires group_size to be a multiple of 32, but
# got 100", raised inside the delegate after the whole quantization (measured on one-linear programs:
# in_features 20/36/50/75/100 fail, 576/1536 pass; int8 per channel takes any width).
INT4_MULTIPLE = 32


def check_model(options: ExportOptions, shapes: list[tuple[str, int, int]]) -> None:
    """Before any work: the int4 linears' input widths must suit XNNPACK's int4 kernels."""
    from edgellama.errors import InputError

    if options.quant != "8da4w":
        return
    bad = [(name, k) for name, _, k in shapes if k % INT4_MULTIPLE]
    if bad:
        raise InputError(f"--quant 8da4w: XNNPACK's int4 kernels need every linear's input width to be a multiple of "
                         f"{INT4_MULTIPLE}, with any --group-size including 0 (per channel); {bad[0][0]} has {bad[0][1]} "
                         f"({len(bad)} linear(s)) — use --quant 8da8w (int8 per channel) for this model")


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


class XnnpackRMSNorm(RMSNorm):
    """Same arithmetic, shaped as XNNPACK takes it: its mean is delegated only for 4-D inputs
    reduced over dims (2, 3). Left as a 3-D mean, every norm splits the layer's partition."""

    def forward(self, x):
        b, _, d = x.shape
        x4 = x.reshape(b, -1, 1, d)
        x4 = x4 * torch.rsqrt((x4 * x4).mean((2, 3), keepdim=True) + self.eps)
        return self.weight * x4.reshape(b, -1, d)


class LinearRotary(Rotary):
    """rotate_half as a constant signed permutation applied with F.linear (exact in fp32): XNNPACK
    delegates it, where slice + neg + cat would run outside the delegate."""

    def __init__(self, head_dim: int):
        super().__init__()
        half = head_dim // 2
        rot = torch.zeros(head_dim, head_dim)  # F.linear(x, rot) == rotate_half(x)
        rot[torch.arange(half), torch.arange(half) + half] = -1.0
        rot[torch.arange(half) + half, torch.arange(half)] = 1.0
        self.register_buffer("rot", rot, persistent=False)

    def rotate_half(self, x):
        return torch.nn.functional.linear(x, self.rot.to(x.dtype))


def as_xnnpack_norm(norm: RMSNorm) -> XnnpackRMSNorm:
    new = XnnpackRMSNorm(norm.weight.shape[0], norm.eps)
    new.weight = norm.weight
    return new


def prepare_for_xnnpack(model) -> None:
    """Module swaps that keep each decoder layer in one XNNPACK partition. (wq|wk|wv and w1|w3 are not
    fused into one linear each: XNNPACK delegates no slice of a dynamic-length tensor, so splitting
    the fused output breaks every layer into 4 partitions; measured on SmolLM2, decode 0.91x
    export_llm fused vs 0.97x not, same weights.)"""
    for layer in model.layers:
        layer.attention.rotary = LinearRotary(model.args.head_dim)
        layer.attention_norm = as_xnnpack_norm(layer.attention_norm)
        layer.ffn_norm = as_xnnpack_norm(layer.ffn_norm)
    model.norm = as_xnnpack_norm(model.norm)


class LastLogits(torch.nn.Module):
    """forward(tokens, input_pos) -> the last position's logits [1, 1, V], as ExecuTorch's own LLM export
    makes them: TextLLMRunner samples from the last row, so the head need not run on the other T - 1."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, input_pos):
        m = self.model
        h = m.hidden(tokens, input_pos)
        # h[:, -1:] would be a slice of a dynamic-length tensor, which XNNPACK does not delegate: the
        # head would land in a partition of its own, one more delegate call per decode step. A
        # one-hot row times h is a bmm XNNPACK takes, so the graph stays one partition per layer.
        t = tokens.shape[1]
        pick = (torch.arange(t) == t - 1).to(h.dtype).reshape(1, 1, t)
        return m.output(m.norm(torch.bmm(pick, h)))


def every_layer(model):
    """torch.export takes the whole model, so a streamed model's layers are all built here; their
    integer weights are views of the mapped spill file, not yet read (edgellama/spill.py). Returns the
    function that drops the pages read since from memory: called before each partition is packed, so
    the lowering holds one partition's int8 weights besides the packed ones, not the model's."""
    from edgellama.lazy_layers import LazyLayers

    layers = model.layers
    if not isinstance(layers, LazyLayers):
        return lambda: None
    model.layers = torch.nn.ModuleList(layers)
    layers.evict()
    return layers.evict


def export_program(model, options: ExportOptions):
    """torch.export of forward(tokens[1, T], input_pos[1]) with 1 <= T <= max_seq_len."""
    prepare_for_xnnpack(model)
    install_static_cache(model, options.max_context_len, dtype=torch.float32, kind="executorch")
    example = (torch.zeros(1, 2, dtype=torch.long), torch.tensor([0], dtype=torch.long))
    seq = torch.export.Dim("seq", min=1, max=options.max_seq_len)
    module = LastLogits(model) if options.logits == "last" else model
    with torch.no_grad():
        return torch.export.export(module, example, dynamic_shapes=({1: seq}, None), strict=False)


@contextmanager
def llama_xnnpack_passes():
    """XNNPACK's preprocess runs about twenty graph passes on every partition, each re-tracing it.
    Those for convolutions, batch norm, upsampling, PReLU, padding and aten SDPA cannot match the
    graph built here (attention is llama::custom_sdpa, outside the delegate). executorch 1.5.1 has
    no option to choose passes, so the default list is narrowed while lowering, then restored."""
    import executorch.backends.xnnpack._passes as xnn_passes
    from executorch.backends.xnnpack._passes.conv1d_unsqueeze_pass import Conv1dUnsqueezePass
    from executorch.backends.xnnpack._passes.convert_to_sdpa import ConvertToSDPAPass
    from executorch.backends.xnnpack._passes.convert_to_upsample_bilinear2d import ConvertToUpsampleBilinear2d
    from executorch.backends.xnnpack._passes.decompose_batch_norm import DecomposeBatchNorm
    from executorch.backends.xnnpack._passes.fuse_batch_norm import FuseBatchNormPass
    from executorch.backends.xnnpack._passes.insert_pad_qdq import InsertPadQDQPass
    from executorch.backends.xnnpack._passes.prelu_reshape_pass import PReLUReshapePass

    cannot_match = {Conv1dUnsqueezePass, ConvertToSDPAPass, ConvertToUpsampleBilinear2d, DecomposeBatchNorm,
                    FuseBatchNormPass, InsertPadQDQPass, PReLUReshapePass}
    manager = xnn_passes.XNNPACKPassManager
    original = manager.__init__

    def narrowed(self, exported_program, passes=None):
        original(self, exported_program, passes)
        if not passes:
            self.passes = [p for p in self.passes if p not in cannot_match]

    manager.__init__ = narrowed
    try:
        yield
    finally:
        manager.__init__ = original


@contextmanager
def preprocess_without_weight_copies(before_each=lambda: None, after_each=lambda: None):
    """executorch 1.5.1 deep-copies every partition's program, weights included, before any XNNPACK
    preprocess runs (BackendDetails.copy_exported_program_for_preprocess, "in case backends change
    the graph"): a second copy of all int8 weights alive at once, +6.5 GB at 7B shapes (measured with
    a 4-layer 7B: 0.94 GB before the first preprocess). XNNPACK's preprocess changes the graph and
    writes packed copies of the weights but never writes into the weight tensors, so the graph is
    copied and the tensors are shared. `before_each` and `after_each` run around each partition's
    preprocess (the copies are all made first, then the partitions preprocessed one by one)."""
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend

    def copy_graph_share_weights(cls, edge_program, compile_specs):
        import copy

        tensors = [*edge_program.state_dict.values(), *edge_program.constants.values()]
        return copy.deepcopy(edge_program, memo={id(t): t for t in tensors if isinstance(t, torch.Tensor)})

    original, preprocess = XnnpackBackend.__dict__["preprocess"], XnnpackBackend.preprocess  # a staticmethod

    def preprocess_between(edge_program, compile_specs):
        before_each()
        result = preprocess(edge_program, compile_specs)
        after_each()
        return result

    XnnpackBackend.copy_exported_program_for_preprocess = classmethod(copy_graph_share_weights)
    XnnpackBackend.preprocess = staticmethod(preprocess_between)
    try:
        yield
    finally:
        del XnnpackBackend.copy_exported_program_for_preprocess  # back to BackendDetails' own
        XnnpackBackend.preprocess = original


def counting_partitioner(say):
    """XNNPACK's partitioner, saying how many partitions it found: preprocessing them is most of the
    lowering (~3.5 min for SmolLM2), and the count lets each partition's progress line say i/n."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    class Counting(XnnpackPartitioner):
        found = 0
        done = 0

        def partition(self, exported_program):
            result = super().partition(exported_program)
            Counting.found = len(set(result.partition_tags))
            return result

        @classmethod
        def next_partition(cls):
            cls.done += 1
            say(f"lowering to XNNPACK: partition {cls.done}/{cls.found or '?'}")

    return Counting()


def lower(program, metadata: dict, say=lambda _msg: None, evict=lambda: None):
    from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.passes import MemoryPlanningPass
    from executorch.exir.passes.sym_shape_eval_pass import ConstraintBasedSymShapeEvalPass

    partitioner = counting_partitioner(say)
    say("lowering to XNNPACK: edge dialect and partitioning")
    # after each partition: its int8 weights are packed, so their pages can go
    with llama_xnnpack_passes(), preprocess_without_weight_copies(partitioner.next_partition, evict):
        edge = to_edge_transform_and_lower(
            program, partitioner=[partitioner], constant_methods=metadata,
            compile_config=EdgeCompileConfig(_check_ir_validity=False, _skip_dim_order=True))
    if {"mm", "addmm"} & set(ops_outside_delegates(edge)):  # (the pass costs ~14 s on SmolLM2 even as a no-op)
        say("lowering to XNNPACK: linear pass over what stayed outside the delegate")
        edge = edge.transform([ConvertToLinearPass()])  # what XNNPACK left runs as linear, not transpose + mm
    say("to_executorch: quantized-embedding fusion, memory planning")
    # Quant fusion turns torchao's dequantize_affine -> embedding into quantized_decomposed::embedding_byte
    # (ExecuTorch's quantized embedding kernel), as ExecuTorch's own LLM export does.
    return edge, edge.to_executorch(ExecutorchBackendConfig(
        extract_delegate_segments=True, do_quant_fusion_and_const_prop=True,
        memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False),
        sym_shape_eval_pass=ConstraintBasedSymShapeEvalPass()))


def write_model(model, tokenizer, options: ExportOptions, folder: Path, say) -> dict:
    metadata = runner_metadata(model, tokenizer, options)
    evict = every_layer(model)
    say("torch.export")
    program = export_program(model, options)
    edge, et_program = lower(program, metadata, say, evict)
    evict()
    say("writing model.pte")
    with open(folder / MODEL_FILE, "wb") as f:
        et_program.write_to_file(f)
    return {"model_file": MODEL_FILE, "runtime": "executorch", "backend": "xnnpack", **metadata,
            "delegation": delegation_summary(edge)}


MATMULS = ("linear", "mm", "bmm", "addmm", "matmul")


def _op_name(node) -> str:
    """'aten.linear.default' -> 'linear'."""
    name = getattr(node.target, "__name__", str(node.target))
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 and parts[-1] in ("default", "Tensor", "out", "int") else parts[-1]


def ops_outside_delegates(edge) -> list[str]:
    return [_op_name(n) for n in edge.exported_program().graph_module.graph.nodes if n.op == "call_function"
            and "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target)]


def delegation_summary(edge) -> dict:
    """How much of the graph XNNPACK took: linears inside delegates, and any matmul (or other op)
    left to run on ExecuTorch's portable kernels."""
    from executorch.exir.lowered_backend_module import get_lowered_backend_modules

    lowered = get_lowered_backend_modules(edge.exported_program().graph_module)
    delegated = sum(1 for lm in lowered for n in lm.original_module.graph.nodes
                    if n.op == "call_function" and _op_name(n) in MATMULS)
    outside = ops_outside_delegates(edge)
    return {"delegate_calls": len(lowered), "delegated_linears": delegated,
            "undelegated_matmuls": sorted(n for n in set(outside) if n in MATMULS),
            "portable_ops": sorted(set(outside))}
