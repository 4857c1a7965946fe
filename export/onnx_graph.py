"""The ONNX decoder graph, built node by node from a quantized edgellama Transformer with onnx-ir
(never traced from an fp32 model, so a 7B model never needs an fp32 ONNX file).

Inputs and outputs follow what onnxruntime-genai's decoder expects:
    input_ids int64 [batch, seq], attention_mask int64 [batch, total_seq],
    past_key_values.N.key / .value float [batch, n_kv_heads, past_seq, head_dim]
 -> logits float [batch, seq, vocab], present.N.key / .value.
With past and present bound to the same buffers of max_context_len positions (onnxruntime-genai's
past_present_share_buffer, and OnnxSession's IO binding), the KV cache is static: written in place.

Per layer: SkipSimplifiedLayerNormalization (residual add + RMSNorm), one MatMulNBits for q|k|v,
GroupQueryAttention (RoPE inside, GQA without copies), MatMulNBits for wo, one MatMulNBits for
w1|w3, SiLU, MatMulNBits for w2.

Every weight is written to the external-data file as its node is made (`weight_file.py`), and with
`consume` each decoder layer is dropped from the model once its nodes exist, so the writer never
holds a second copy of the model. The export hands it a streamed model (targets.Target.streams_layers:
`model.layers` rebuilds each layer from a spill file when first indexed), so it holds about one layer."""
from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgellama.model import rope_cos_sin

from .onnx_weights import BlockQuantized, concat_rows, matmul_nbits_weight
from .weight_file import WeightFile

OPSETS = {"": 23, "com.microsoft": 1}  # 23: RMSNormalization
MS = "com.microsoft"
FLOAT = ir.DataType.FLOAT
INT64 = ir.DataType.INT64


class GraphBuilder:
    def __init__(self, accuracy_level: int, weights: WeightFile):
        self.tape = ir.tape.Tape()
        self.accuracy_level, self.weights = accuracy_level, weights

    def init(self, name: str, array: np.ndarray) -> ir.Value:
        return self.tape.initializer(self.weights.tensor(name, lambda: array))

    def op(self, op_type: str, inputs, name: str, domain: str = "", outputs: int = 1, **attrs):
        if outputs == 1:
            return self.tape.op(op_type, inputs, attrs or None, domain=domain, name=name)
        return self.tape.op_multi_out(op_type, inputs, attrs or None, num_outputs=outputs, domain=domain, name=name)

    def linear(self, x: ir.Value, weight, name: str, initializers: tuple | None = None) -> ir.Value:
        """x @ W^T for a BlockQuantized weight (MatMulNBits) or a float tensor (MatMul);
        `initializers`: its (packed, scales) values, when already made for another op."""
        if isinstance(weight, BlockQuantized):
            b, s = initializers or (self.init(f"{name}.qweight", weight.packed), self.init(f"{name}.scales", weight.scales))
            return self.op("MatMulNBits", [x, b, s], name, domain=MS, K=weight.cols, N=weight.rows,
                           bits=weight.bits, block_size=weight.block, accuracy_level=self.accuracy_level)
        w = self.init(f"{name}.weight_t", weight.T)
        return self.op("MatMul", [x, w], name)


def linear_weight(module, name: str):
    """A linear's weight as MatMulNBits inputs (quantized) or a float32 array."""
    w = module.weight
    if hasattr(w, "qdata"):
        return matmul_nbits_weight(w, name)
    return w.detach().float().numpy()


def fused(weights: list):
    """One weight for several linears that read the same input, when they can share one op."""
    if all(isinstance(w, BlockQuantized) for w in weights) and len({(w.bits, w.block) for w in weights}) == 1:
        return concat_rows(weights)
    if all(isinstance(w, np.ndarray) for w in weights):
        return np.concatenate(weights)
    return None


def shares_table(embedding_weight, head_weight) -> bool:
    """Whether the two torchao tensors hold the same integers (same storage, same shape)."""
    if not (hasattr(embedding_weight, "qdata") and hasattr(head_weight, "qdata")):
        return False
    a, b = embedding_weight.qdata, head_weight.qdata
    return a.shape == b.shape and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def embedding(g: GraphBuilder, module, ids: ir.Value, head: tuple | None = None) -> ir.Value:
    """GatherBlockQuantized on the int8 (or int4) table; a plain Gather for a float table. `head`
    (MatMulNBits weight, its packed and scales initializers): the embedding reads the head's table,
    its [rows, blocks, blob] bytes viewed as [rows, cols * bits / 8]."""
    from .onnx_weights import block_quantized

    w = module.weight
    if not hasattr(w, "qdata"):
        return g.op("Gather", [g.init("tok_embeddings.weight", w.detach().float().numpy()), ids], "embed", axis=0)
    if head is not None:
        hw, packed, scales = head
        shape = g.init("tok_embeddings.shape", np.array([hw.rows, hw.cols * hw.bits // 8], dtype=np.int64))
        data = g.op("Reshape", [packed, shape], "tok_embeddings.reshape")
        return g.op("GatherBlockQuantized", [data, ids, scales], "embed", domain=MS, bits=hw.bits,
                    block_size=hw.block, gather_axis=0, quantize_axis=1)
    bq = block_quantized(w, "tok_embeddings")
    data = g.init("tok_embeddings.qweight", bq.packed)
    scales = g.init("tok_embeddings.scales", bq.scales)
    return g.op("GatherBlockQuantized", [data, ids, scales], "embed", domain=MS, bits=bq.bits,
                block_size=bq.block, gather_axis=0, quantize_axis=1)


def rms_norm(g: GraphBuilder, x: ir.Value, residual: ir.Value | None, norm, name: str):
    """-> (normed, residual sum). With a residual this is one SkipSimplifiedLayerNormalization; the first
    norm has none and uses the standard RMSNormalization (SimplifiedLayerNormalization is ORT-only
    but claims the default domain, which onnx.checker rejects)."""
    gamma = g.init(f"{name}.weight", norm.weight.detach().float().numpy())
    if residual is None:
        return g.op("RMSNormalization", [x, gamma], name, axis=-1, epsilon=norm.eps), x
    normed, _, _, total = g.op("SkipSimplifiedLayerNormalization", [x, residual, gamma], name, domain=MS,
                               outputs=4, epsilon=norm.eps)
    return normed, total


def build_decoder(model, max_context_len: int, accuracy_level: int, weights: WeightFile,
                  consume: bool = False) -> ir.Model:
    """The decoder graph, its weights written to `weights`; `consume`: empty the model as it goes."""
    from torch import nn

    args = model.args
    hd, n_kv = args.head_dim, args.n_kv_heads
    g = GraphBuilder(accuracy_level, weights)
    batch, seq, total, past = "batch_size", "sequence_length", "total_sequence_length", "past_sequence_length"
    input_ids = ir.val("input_ids", INT64, ir.Shape([batch, seq]))
    attention_mask = ir.val("attention_mask", INT64, ir.Shape([batch, total]))
    inputs, outputs = [input_ids, attention_mask], []

    # GroupQueryAttention's sequence bookkeeping, from the attention mask as onnxruntime-genai fills it:
    # seqlens_k = positions filled after this step - 1, total_sequence_length = mask width.
    one = g.init("const.one", np.array([1], dtype=np.int64))
    filled = g.op("ReduceSum", [attention_mask, one], "mask.sum", keepdims=0)
    seqlens_k = g.op("Cast", [g.op("Sub", [filled, one], "mask.sub")], "mask.seqlens_k", to=ir.DataType.INT32)
    width = g.op("Gather", [g.op("Shape", [attention_mask], "mask.shape"), g.init("const.idx1", np.array(1, dtype=np.int64))],
                 "mask.width", axis=0)
    total_len = g.op("Cast", [width], "mask.total_len", to=ir.DataType.INT32)
    # RoPE tables for every cache position, from the reference module's own function (same values).
    cos, sin = _rope(args, max_context_len)
    cos_cache, sin_cache = g.init("rope.cos", cos), g.init("rope.sin", sin)

    head_w = linear_weight(model.output, "output")
    head = None
    if shares_table(model.tok_embeddings.weight, model.output.weight):  # quant.embedding_from_head
        head = (head_w, g.init("output.qweight", head_w.packed), g.init("output.scales", head_w.scales))
    h = embedding(g, model.tok_embeddings, input_ids, head)
    residual = None
    for i in range(args.n_layers):
        layer, p = model.layers[i], f"layers.{i}"
        x, residual = rms_norm(g, h, residual, layer.attention_norm, f"{p}.attention_norm")
        att = layer.attention
        names = [f"{p}.attention.{n}" for n in ("wq", "wk", "wv")]
        qkv_ws = [linear_weight(m, n) for m, n in zip((att.wq, att.wk, att.wv), names)]
        qkv_w = fused(qkv_ws)
        if qkv_w is not None:  # GQA takes q|k|v packed in one tensor
            qkv, k_in, v_in = g.linear(x, qkv_w, f"{p}.attention.wqkv"), None, None
        else:
            qkv, k_in, v_in = (g.linear(x, w, n) for w, n in zip(qkv_ws, names))
        past_k = ir.val(f"past_key_values.{i}.key", FLOAT, ir.Shape([batch, n_kv, past, hd]))
        past_v = ir.val(f"past_key_values.{i}.value", FLOAT, ir.Shape([batch, n_kv, past, hd]))
        inputs += [past_k, past_v]
        attn, present_k, present_v = g.op(
            "GroupQueryAttention", [qkv, k_in, v_in, past_k, past_v, seqlens_k, total_len, cos_cache, sin_cache],
            f"{p}.attention.gqa", domain=MS, outputs=3, num_heads=args.n_heads, kv_num_heads=n_kv,
            scale=float(hd ** -0.5), do_rotary=1, rotary_interleaved=0)
        present_k.name, present_v.name = f"present.{i}.key", f"present.{i}.value"
        for v in (present_k, present_v):
            v.dtype, v.shape = FLOAT, ir.Shape([batch, n_kv, total, hd])
        outputs += [present_k, present_v]
        h = g.linear(attn, linear_weight(att.wo, f"{p}.attention.wo"), f"{p}.attention.wo")
        x, residual = rms_norm(g, h, residual, layer.ffn_norm, f"{p}.ffn_norm")
        ff = layer.feed_forward
        w1, w3 = linear_weight(ff.w1, f"{p}.feed_forward.w1"), linear_weight(ff.w3, f"{p}.feed_forward.w3")
        gate_up_w = fused([w1, w3])
        if gate_up_w is not None:
            gate, up = g.op("Split", [g.linear(x, gate_up_w, f"{p}.feed_forward.w13")], f"{p}.feed_forward.split",
                            outputs=2, axis=-1, num_outputs=2)
        else:
            gate, up = g.linear(x, w1, f"{p}.feed_forward.w1"), g.linear(x, w3, f"{p}.feed_forward.w3")
        silu = g.op("Mul", [gate, g.op("Sigmoid", [gate], f"{p}.feed_forward.sigmoid")], f"{p}.feed_forward.silu")
        h = g.linear(g.op("Mul", [silu, up], f"{p}.feed_forward.mul"), linear_weight(ff.w2, f"{p}.feed_forward.w2"),
                     f"{p}.feed_forward.w2")
        if consume:
            model.layers[i] = nn.Module()
    x, _ = rms_norm(g, h, residual, model.norm, "norm")
    logits = g.linear(x, head_w, "output", initializers=head[1:] if head else None)
    logits.name, logits.dtype, logits.shape = "logits", FLOAT, ir.Shape([batch, seq, args.vocab_size])
    graph = ir.Graph(inputs, [logits, *outputs], nodes=g.tape.nodes, initializers=g.tape.initializers,
                     opset_imports=OPSETS, name="edgellama_decoder")
    return ir.Model(graph, ir_version=10, producer_name="edgellama")


def _rope(args, max_context_len: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [max_context_len, head_dim / 2]: GroupQueryAttention takes the first half of the
    reference's (halves repeated) tables."""
    import torch

    cos, sin = rope_cos_sin(torch.arange(max_context_len), args.head_dim, args.rope_theta)
    half = args.head_dim // 2
    return cos[:, :half].numpy(), sin[:, :half].numpy()
