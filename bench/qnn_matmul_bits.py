"""What the HTP does with a MatMul of two activations, by their bits: one QDQ MatMul [8, 128, 64] x
[8, 64, 512] (the shape of SmolLM2's attention scores), both operands produced by an op as in the
model's graphs, run in the QNN EP's HTP simulator and on ONNX Runtime's CPU EP; each output's error
relative to the float product. Writes bench/results/qnn-matmul-bits.{json,md}.

Why it matters: the KV cache is the second operand of both attention MatMuls (Q K^T and P V), and
the HTP takes a uint16 second operand at 8 bits; a 16-bit cache is then a twin the HTP does not follow."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
from common import write_results  # noqa: E402

SOC = {"soc_model": 57, "htp_arch": 75}  # SM8650
CASES = [(16, 16), (16, 8), (8, 8)]


def qdq(nodes: list, inits: list, name: str, x: np.ndarray, bits: int) -> str:
    """`name` quantize-dequantized with an unsigned `bits` encoding covering x; -> the output name."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / (2**bits - 1)
    dtype = np.uint16 if bits == 16 else np.uint8
    inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}.s"),
              numpy_helper.from_array(np.array(round(-lo / scale), dtype), f"{name}.z")]
    nodes += [helper.make_node("QuantizeLinear", [name, f"{name}.s", f"{name}.z"], [f"{name}.q"]),
              helper.make_node("DequantizeLinear", [f"{name}.q", f"{name}.s", f"{name}.z"], [f"{name}.dq"])]
    return f"{name}.dq"


def matmul_graph(a: np.ndarray, b: np.ndarray, a_bits: int, b_bits: int, path: Path) -> None:
    """a, b (16-bit inputs) -> Mul by 1.0 -> QDQ at a_bits / b_bits -> MatMul -> QDQ 16: the operands
    come out of an op, as in the model, not straight from graph inputs."""
    nodes, inits = [], []
    inits += [numpy_helper.from_array(np.array(65535, np.uint16), "one.q"),
              numpy_helper.from_array(np.array(1 / 65535, np.float32), "one.s"),
              numpy_helper.from_array(np.array(0, np.uint16), "one.z")]
    nodes.append(helper.make_node("DequantizeLinear", ["one.q", "one.s", "one.z"], ["one"]))
    operands = []
    for name, x, bits in (("a", a, a_bits), ("b", b, b_bits)):
        nodes.append(helper.make_node("Mul", [qdq(nodes, inits, name, x, 16), "one"], [f"{name}1"]))
        operands.append(qdq(nodes, inits, f"{name}1", x, bits))
    nodes.append(helper.make_node("MatMul", operands, ["y"]))
    out = qdq(nodes, inits, "y", a @ b, 16)
    graph = helper.make_graph(nodes, "matmul", [helper.make_tensor_value_info("a", TensorProto.FLOAT, a.shape),
                                                helper.make_tensor_value_info("b", TensorProto.FLOAT, b.shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)


def main() -> None:
    from edgellama.runtime.qnn_session import open_graph

    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 128, 64)).astype(np.float32) * 2
    b = rng.standard_normal((8, 64, 512)).astype(np.float32) * 1.5
    exact = a @ b
    rows, record = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for a_bits, b_bits in CASES:
            path = Path(tmp) / f"mm{a_bits}x{b_bits}.onnx"
            matmul_graph(a, b, a_bits, b_bits, path)
            out = {backend: open_graph(path, backend, SOC).run(None, {"a": a, "b": b})[0] for backend in ("cpu", "htp")}
            err = {k: float(np.linalg.norm(v - exact) / np.linalg.norm(exact)) for k, v in out.items()}
            record.append({"a_bits": a_bits, "b_bits": b_bits, "cpu_rel_error": err["cpu"], "htp_rel_error": err["htp"]})
            rows.append([f"uint{a_bits} x uint{b_bits}", f"{err['cpu']:.5f}", f"{err['htp']:.5f}"])
            print(rows[-1], flush=True)
    path = write_results("qnn-matmul-bits", {"shape": "[8,128,64] x [8,64,512]", "soc": "SM8650", "cases": record}, rows,
                         ["operands", "CPU EP rel. error", "HTP simulator rel. error"],
                         "Relative error (Frobenius) of the MatMul output against the float product; "
                         "`python bench/qnn_matmul_bits.py`.")
    print(path)


if __name__ == "__main__":
    main()
