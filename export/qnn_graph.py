"""Static-shape QDQ graphs for the Snapdragon NPU (Hexagon HTP through ONNX Runtime's QNN EP), built
node by node from a quantized edgellama Transformer (never traced from an fp32 model).

What the HTP takes, measured in the QNN EP's simulator (docs/qnn.md):
- weights: edgellama's own integers and float group scales as a block-quantized DequantizeLinear
  (int4 [K, N] in blocks of the group size along K; int8 with one block per row) feeding a MatMul.
  The LPBQ form (uint8 block scales x a per-channel float) compiles but computes wrong numbers in
  the simulator, and a per-channel int8 MatMul loses ~1% to an internal requantization.
- activations: uint16, one encoding per tensor, calibrated on text (`calibrate.py`); the KV cache
  uint8, one encoding per layer shared by the cache inputs and the new entries (so the host copies
  new entries into the cache without requantizing them).
- the embedding table: uint16 with one scale (a Gather on a per-row int8 table is not supported).

I/O of one part (the layout of Qualcomm's own LLM graphs; AR = tokens per call, C = context):
  input_ids int32 [1, AR] (first part) | hidden_in float [1, AR, dim] (later parts)
  attention_mask float [1, 1, AR, C]: additive, 0 where a row may attend, MASK_VALUE elsewhere
  position_cos, position_sin float [1, 1, AR, head_dim / 2]: RoPE for the AR positions
  past_key_I float [n_kv, 1, head_dim, C - AR] (transposed), past_value_I [n_kv, 1, C - AR, head_dim]
-> logits float [1, AR, vocab] (last part) | hidden_out (others),
   new_key_I [n_kv, 1, head_dim, AR], new_value_I [n_kv, 1, AR, head_dim].
The keys attended to are the C - AR past columns followed by this call's AR tokens."""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx_ir as ir

from edgellama.runtime.qnn_session import MASK_VALUE

from .weight_file import WeightFile

OPSET = {"": 23}  # RMSNormalization
FLOAT, INT32 = ir.DataType.FLOAT, ir.DataType.INT32
ACT_BITS = 16  # the KV cache's bits are the export's --kv-bits, set at calibration (qnn_calibrate.widen)


@dataclass(frozen=True)
class PartSpec:
    """One graph: layers [first, last) of the model, AR tokens per call, C positions of context."""
    first: int
    last: int
    n_layers: int  # of the whole model: the first part embeds, the last part holds the head
    ar: int
    context: int

    @property
    def embeds(self) -> bool:
        return self.first == 0

    @property
    def has_head(self) -> bool:
        return self.last == self.n_layers

    @property
    def past(self) -> int:
        return self.context - self.ar


def encoding(lo: float, hi: float, bits: int) -> tuple[float, int]:
    """(scale, zero point) of an unsigned `bits` encoding covering [lo, hi] and 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmax = 2**bits - 1
    scale = max((hi - lo) / qmax, 1e-9)
    return scale, int(np.clip(round(-lo / scale), 0, qmax))


class QdqBuilder:
    """Graph building with activation quantization. `ranges` (key -> (lo, hi, bits)) None builds the
    calibration graph: float activations, every tensor that will be quantized exposed as an output
    named by its encoding key. Tensors that must share an encoding use the same key."""

    def __init__(self, ranges: dict | None, weights: WeightFile):
        self.tape = ir.tape.Tape()
        self.ranges = ranges
        self.weights = weights
        self.observed: list[tuple[str, ir.Value]] = []
        self.key_of: dict[str, str] = {}
        self._qparams: dict[str, tuple[ir.Value, ir.Value]] = {}

    def init(self, name: str, array: np.ndarray) -> ir.Value:
        return self.tape.initializer(ir.tensor(np.ascontiguousarray(array), name=name))

    def op(self, op_type: str, inputs, name: str, **attrs) -> ir.Value:
        out = self.tape.op(op_type, inputs, attrs or None, name=name)
        out.name = name
        return out

    def act(self, value: ir.Value, key: str | None = None) -> ir.Value:
        """Quantize-dequantize `value` with the encoding `key` (default: its own name), whose bits the
        calibration chose."""
        key = key or value.name
        if self.ranges is None:
            self.observed.append((key, value))
            self.key_of[value.name] = key
            return value
        if key not in self._qparams:
            lo, hi, kbits = self.ranges[key]
            scale, zp = encoding(lo, hi, kbits)
            dtype = np.uint16 if kbits == 16 else np.uint8
            self._qparams[key] = (self.init(f"{key}.scale", np.array(scale, np.float32)),
                                  self.init(f"{key}.zero_point", np.array(zp, dtype)))
        scale, zp = self._qparams[key]
        q = self.op("QuantizeLinear", [value, scale, zp], f"{value.name}.q")
        out = self.op("DequantizeLinear", [q, scale, zp], f"{value.name}.dq")
        self.key_of[out.name] = key
        return out

    def same(self, value: ir.Value, like: ir.Value) -> ir.Value:
        """For data movement (Reshape, Transpose, Concat): the output keeps its input's encoding."""
        return self.act(value, self.key_of[like.name])

    def reshape(self, x: ir.Value, shape: list[int], name: str) -> ir.Value:
        return self.same(self.op("Reshape", [x, self.init(f"{name}.shape", np.array(shape, np.int64))], name), x)

    def transpose(self, x: ir.Value, perm: list[int], name: str) -> ir.Value:
        return self.same(self.op("Transpose", [x], name, perm=perm), x)

    def params(self, name: str, suffixes: tuple[str, ...], make) -> list[ir.Value]:
        """Initializers derived from the model's weights (`make()` -> {suffix: array}), encoded once per
        part by the part's weight file however many graphs ask for them."""
        made = {}

        def one(suffix):
            def get():
                if not made:
                    made.update(make())
                return made[suffix]
            return get
        return [self.tape.initializer(self.weights.tensor(f"{name}.{s}", one(s))) for s in suffixes]

    def weight(self, name: str, module) -> ir.Value:
        """W [K, N], dequantized in blocks of K / groups along K."""
        values, scales, zeros = self.params(name, ("qweight", "scales", "zero_points"),
                                            lambda: weight_arrays(module.weight, name))
        k, groups = values.shape[0], scales.shape[0]
        return self.op("DequantizeLinear", [values, scales, zeros], f"{name}.dequantize", axis=0, block_size=k // groups)

    def constant(self, name: str, make) -> ir.Value:
        """A float constant (`make()` -> array), as the HTP needs every operand quantized: uint16 with one scale."""
        return self.op("DequantizeLinear", self.params(name, ("q", "scale", "zero_point"),
                                                       lambda: table_arrays(np.asarray(make(), np.float32))), name)

    def linear(self, x: ir.Value, module, name: str) -> ir.Value:
        return self.act(self.op("MatMul", [x, self.weight(name, module)], name))


def weight_arrays(weight, name: str) -> dict[str, np.ndarray]:
    """The DequantizeLinear inputs of a linear: q [N, K] transposed to [K, N], scales [groups, N], zeros."""
    q, scale, bits = quantized_weight(weight, name)
    dtype = ml_dtypes.int4 if bits == 4 else np.int8
    return {"qweight": q.T.astype(dtype), "scales": scale.T.astype(np.float32),
            "zero_points": np.zeros((scale.shape[1], q.shape[0]), dtype=dtype)}


def quantized_weight(weight, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(int values [N, K], float scales [N, groups], bits) of a symmetric torchao tensor."""
    from edgellama.errors import InputError

    if not hasattr(weight, "qdata"):  # the HTP computes with quantized weights only: int8 per row, round to nearest
        w = weight.detach().float().numpy()
        scale = np.maximum(np.abs(w).max(1, keepdims=True) / 127.5, 1e-12).astype(np.float32)
        return np.clip(np.round(w / scale), -128, 127).astype(np.int8), scale, 8
    if weight.zero_point.abs().max().item() != 0:
        raise InputError(f"{name}: asymmetric weights have no HTP block encoding; use --quant-algo rtn or scale-search")
    bits = int(str(weight.target_dtype).removeprefix("torch.int"))
    return weight.qdata.numpy(), weight.scale.float().numpy(), bits


def table_arrays(weight: np.ndarray) -> dict[str, np.ndarray]:
    """A float table (the embedding, a norm's gains) as uint16 values with one scale and zero point."""
    scale, zp = encoding(weight.min(), weight.max(), 16)
    q = np.clip(np.round(weight / scale) + zp, 0, 65535).astype(np.uint16)
    return {"q": q, "scale": np.array(scale, np.float32), "zero_point": np.array(zp, np.uint16)}


def rms_norm(g: QdqBuilder, x: ir.Value, norm, name: str) -> ir.Value:
    gamma = g.constant(f"{name}.weight", lambda: norm.weight.detach().float().numpy())
    return g.act(g.op("RMSNormalization", [x, gamma], name, axis=-1, epsilon=float(norm.eps)))


def rope(g: QdqBuilder, x: ir.Value, cos: ir.Value, sin: ir.Value, name: str) -> ir.Value:
    """x [heads, AR, head_dim] in the rotate-half layout: (x1 cos - x2 sin, x2 cos + x1 sin). Written
    without Neg so every product keeps a calibrated encoding; both halves share one for the Concat."""
    x1, x2 = _halves(g, x, name)
    a = g.act(g.op("Sub", [g.act(g.op("Mul", [x1, cos], f"{name}.x1c")), g.act(g.op("Mul", [x2, sin], f"{name}.x2s"))],
                   f"{name}.lo"), f"{name}.out")
    b = g.act(g.op("Add", [g.act(g.op("Mul", [x2, cos], f"{name}.x2c")), g.act(g.op("Mul", [x1, sin], f"{name}.x1s"))],
                   f"{name}.hi"), f"{name}.out")
    return g.act(g.op("Concat", [a, b], f"{name}.cat", axis=-1), f"{name}.out")


def _halves(g: QdqBuilder, x: ir.Value, name: str) -> tuple[ir.Value, ir.Value]:
    x1, x2 = g.tape.op_multi_out("Split", [x], {"axis": -1, "num_outputs": 2}, num_outputs=2, name=f"{name}.split")
    x1.name, x2.name = f"{name}.x1", f"{name}.x2"
    return g.same(x1, x), g.same(x2, x)


def attention(g: QdqBuilder, x: ir.Value, att, i: int, part: PartSpec, args, io) -> ir.Value:
    p, hd, h, kv = f"layers.{i}.attention", args.head_dim, args.n_heads, args.n_kv_heads
    ar, c = part.ar, part.context
    groups = h // kv
    q = g.transpose(g.reshape(g.linear(x, att.wq, f"{p}.wq"), [ar, h, hd], f"{p}.q.heads"), [1, 0, 2], f"{p}.q.t")
    k = g.transpose(g.reshape(g.linear(x, att.wk, f"{p}.wk"), [ar, kv, hd], f"{p}.k.heads"), [1, 0, 2], f"{p}.k.t")
    v = g.reshape(g.linear(x, att.wv, f"{p}.wv"), [ar, kv, hd], f"{p}.v.heads")
    q = rope(g, q, io["cos"], io["sin"], f"{p}.q.rope")
    k = rope(g, k, io["cos"], io["sin"], f"{p}.k.rope")
    # The new entries, in the cache's layout and its uint8 encoding.
    new_k = g.act(g.op("Reshape", [g.transpose(k, [0, 2, 1], f"{p}.k.kt"),
                                   g.init(f"{p}.k.new.shape", np.array([kv, 1, hd, ar], np.int64))], f"{p}.new_key"),
                  f"kv.{i}.key")
    new_v = g.act(g.op("Transpose", [g.reshape(v, [ar, kv, 1, hd], f"{p}.v.r")], f"{p}.new_value", perm=[1, 2, 0, 3]),
                  f"kv.{i}.value")
    new_k.name, new_v.name = f"new_key_{i}", f"new_value_{i}"
    io["outputs"] += [new_k, new_v]
    past_k = ir.val(f"past_key_{i}", FLOAT, ir.Shape([kv, 1, hd, part.past]))
    past_v = ir.val(f"past_value_{i}", FLOAT, ir.Shape([kv, 1, part.past, hd]))
    io["inputs"] += [past_k, past_v]
    keys = g.act(g.op("Concat", [g.act(past_k, f"kv.{i}.key"), new_k], f"{p}.keys", axis=3), f"kv.{i}.key")
    values = g.act(g.op("Concat", [g.act(past_v, f"kv.{i}.value"), new_v], f"{p}.values", axis=2), f"kv.{i}.value")
    keys = g.reshape(keys, [kv, hd, c], f"{p}.keys.r")
    values = g.reshape(values, [kv, c, hd], f"{p}.values.r")
    # The query heads that share a kv head, stacked: [kv, groups * AR, head_dim] (model.attend).
    qg = g.reshape(q, [kv, groups * ar, hd], f"{p}.q.grouped")
    scores = g.act(g.op("Mul", [g.act(g.op("MatMul", [qg, keys], f"{p}.qk")), g.constant(f"{p}.scale", lambda: np.array(hd**-0.5))],
                        f"{p}.scores"))
    scores = g.reshape(scores, [kv, groups, ar, c], f"{p}.scores.r")
    masked = g.act(g.op("Add", [scores, io["mask"]], f"{p}.masked"))
    probs = g.act(g.op("Softmax", [masked], f"{p}.probs", axis=-1))
    probs = g.reshape(probs, [kv, groups * ar, c], f"{p}.probs.r")
    out = g.act(g.op("MatMul", [probs, values], f"{p}.pv"))
    out = g.transpose(g.reshape(out, [h, ar, hd], f"{p}.heads"), [1, 0, 2], f"{p}.heads.t")
    return g.linear(g.reshape(out, [1, ar, h * hd], f"{p}.merged"), att.wo, f"{p}.wo")


def feed_forward(g: QdqBuilder, x: ir.Value, ff, name: str) -> ir.Value:
    gate = g.linear(x, ff.w1, f"{name}.w1")
    silu = g.act(g.op("Mul", [gate, g.act(g.op("Sigmoid", [gate], f"{name}.sigmoid"))], f"{name}.silu"))
    up = g.linear(x, ff.w3, f"{name}.w3")
    return g.linear(g.act(g.op("Mul", [silu, up], f"{name}.gated")), ff.w2, f"{name}.w2")


def build_part(model, part: PartSpec, ranges: dict | None, weights: WeightFile) -> tuple[ir.Model, list[str]]:
    """One part's graph -> (model, the encoding keys of its extra calibration outputs, in order).
    Its weights come from (or go to) the part's weight file."""
    args = model.args
    g = QdqBuilder(ranges, weights)
    half = args.head_dim // 2
    mask_in = ir.val("attention_mask", FLOAT, ir.Shape([1, 1, part.ar, part.context]))
    cos_in = ir.val("position_cos", FLOAT, ir.Shape([1, 1, part.ar, half]))
    sin_in = ir.val("position_sin", FLOAT, ir.Shape([1, 1, part.ar, half]))
    io = {"inputs": [], "outputs": []}
    if part.embeds:
        ids = ir.val("input_ids", INT32, ir.Shape([1, part.ar]))
        table = g.params("tok_embeddings", ("q", "scale", "zero_point"),
                         lambda: table_arrays(model.tok_embeddings.weight.detach().float().numpy()))
        dq = g.op("DequantizeLinear", table, "tok_embeddings.dequantize")
        h = g.act(g.op("Gather", [dq, ids], "embed", axis=0))
        first = ids
    else:
        first = ir.val("hidden_in", FLOAT, ir.Shape([1, part.ar, args.dim]))
        h = g.act(first, f"hidden.{part.first}")
    io["mask"] = g.act(mask_in, "attention_mask")
    io["cos"] = g.reshape(g.act(cos_in, "position_cos"), [1, part.ar, half], "cos.r")
    io["sin"] = g.reshape(g.act(sin_in, "position_sin"), [1, part.ar, half], "sin.r")
    for i in range(part.first, part.last):
        layer = model.layers[i]
        x = rms_norm(g, h, layer.attention_norm, f"layers.{i}.attention_norm")
        h = g.act(g.op("Add", [h, attention(g, x, layer.attention, i, part, args, io)], f"layers.{i}.residual1"))
        x = rms_norm(g, h, layer.ffn_norm, f"layers.{i}.ffn_norm")
        # keyed by position, not by the part's shape: calibration runs one layer at a time
        h = g.act(g.op("Add", [h, feed_forward(g, x, layer.feed_forward, f"layers.{i}.feed_forward")], f"layers.{i}.residual2"),
                  f"hidden.{i + 1}")
    if part.has_head:
        out = g.linear(rms_norm(g, h, model.norm, "norm"), model.output, "output")
    else:
        out = h
    out.name = "logits" if part.has_head else "hidden_out"  # the dequantized tensor is the graph output
    outputs = [out, *io["outputs"]]
    extra = []  # (encoding key, output name)
    if ranges is None:  # calibration: every quantized tensor becomes an output
        seen = {v.name for v in outputs}
        for key, value in g.observed:
            if value.is_graph_input():
                continue  # their ranges are known from what the host feeds (calibrate.py)
            if value.name not in seen:
                outputs.append(value)
                seen.add(value.name)
            extra.append((key, value.name))
    inputs = [first, mask_in, cos_in, sin_in, *io["inputs"]]
    for v in outputs:
        v.dtype = FLOAT
    graph = ir.Graph(inputs, outputs, nodes=g.tape.nodes, initializers=g.tape.initializers, opset_imports=OPSET,
                     name="edgellama_part")
    return ir.Model(graph, ir_version=10, producer_name="edgellama"), extra
