"""A QNN artifact's graphs run with the KV cache, the attention mask and RoPE on the host, as
onnxruntime-genai's decoder-pipeline does on a phone. Torch-free.

Each part has a prompt graph (AR = prefill_len tokens per call) and a token graph (AR = 1), both
with static shapes (export/qnn_graph.py), and a first-token graph (AR = 1) with encodings of its own
for position 0, whose massive activations the others' encodings leave out (export/qnn_calibrate.py). A call feeds AR tokens at position `pos`: the past
columns 0..pos-1 of the cache are visible, the rest masked; the call's own tokens come after the
C - AR past columns and see each other causally; a short chunk is padded at its end (pad rows see
nothing real after them, and their outputs are dropped). The new K/V entries are copied into the
cache at pos.

`backend`: "htp" runs the compiled context models on the QNN EP (the HTP simulator on x86, the
NPU on a Snapdragon device) with CPU fallback disabled; "cpu" runs the same QDQ models on ONNX
Runtime's CPU EP (parity's twin: what the HTP should compute)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .session import Session, SessionInfo

FIRST = "first"
GRAPHS = ("prompt", "token", FIRST)  # a part's graphs; artifacts written before FIRST have two
MASK_VALUE = -100.0  # exp(-100) is nothing next to any real score, and the range stays small for uint16


def rope_tables(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [T, head_dim / 2] (the first half of model.rope_cos_sin's repeated halves)."""
    inv_freq = (1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))).astype(np.float32)
    freqs = positions.astype(np.float32)[:, None] * inv_freq[None, :]
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def on_snapdragon() -> bool:
    """The real HTP is there (an arm64 Snapdragon device or laptop), not the x86 simulator."""
    import platform

    return platform.machine().lower() in ("aarch64", "arm64")


def htp_options(soc_model: int, htp_arch: int) -> dict:
    import onnxruntime_qnn

    return {"backend_path": onnxruntime_qnn.get_qnn_htp_path(), "soc_model": str(soc_model), "htp_arch": str(htp_arch)}


def qnn_devices():
    """The QNN EP (a plugin library) registered once per process; its devices."""
    import onnxruntime as ort

    try:
        import onnxruntime_qnn
    except ImportError:
        from edgellama.errors import InputError

        raise InputError("onnxruntime-qnn is not installed; `pip install 'edgellama[qnn]'` "
                         "(onnxruntime-qnn==2.7.0) to export or run --target qnn") from None
    if not any(d.ep_name == "QNNExecutionProvider" for d in ort.get_ep_devices()):
        ort.register_execution_provider_library("QNNExecutionProvider", onnxruntime_qnn.get_library_path())
    return [d for d in ort.get_ep_devices() if d.ep_name == "QNNExecutionProvider"]


def open_graph(path: Path, backend: str, soc: dict | None = None, config: dict | None = None, log_level: int = 3):
    """An InferenceSession for one graph. "cpu" keeps weights quantized in memory: no constant
    folding of the DequantizeLinear nodes, which would hold every weight in fp32, and no memory
    arena, which keeps every fp32 weight a DequantizeLinear ever produced (a 7B part's calibration
    grew past 20 GB with it; SmolLM2's prompt graph: 0.51 GB of anonymous memory after two calls
    with the arena, 0.11 GB without)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = log_level
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    if backend == "cpu":
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.enable_cpu_mem_arena = False
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.add_provider_for_devices(qnn_devices(), htp_options(soc["soc_model"], soc["htp_arch"]))
    return ort.InferenceSession(str(path), so)


class QnnSession(Session):
    def __init__(self, graphs: list[dict[str, Path]], meta: dict, tokenizer=None, backend: str = "htp",
                 observe=None, config: dict | None = None, hidden_in=None):
        """graphs: per part {"prompt": path, "token": path}; meta: the manifest's runtime section
        (prefill_len, max_context_len, n_layers, n_kv_heads, head_dim, rope_theta, vocab_size, ...).
        observe(outputs: dict, kind) is called with every graph call's outputs (calibration);
        hidden_in() supplies the first graph's `hidden_in` when it is not the first part (calibrating
        one part at a time)."""
        self.meta, self.tokenizer, self.observe, self.hidden_in = meta, tokenizer, observe, hidden_in
        soc = {"soc_model": meta.get("soc_model"), "htp_arch": meta.get("htp_arch")}
        self.parts = [{kind: open_graph(path, backend, soc, config) for kind, path in part.items()} for part in graphs]
        self.io = {id(s): ([i.name for i in s.get_inputs()], [o.name for o in s.get_outputs()])
                   for part in self.parts for s in part.values()}
        self.context = meta["max_context_len"]
        self.ar = {"prompt": meta["prefill_len"], "token": 1, FIRST: 1}
        self.has_first = FIRST in graphs[0]
        self.info = SessionInfo(self.context, meta["vocab_size"], meta["n_layers"], meta.get("bos_id"),
                                list(meta.get("eos_ids", [])))
        kv, hd, room = meta["n_kv_heads"], meta["head_dim"], self.context - 1
        self.keys = [np.zeros((kv, 1, hd, room), np.float32) for _ in range(meta["n_layers"])]
        self.values = [np.zeros((kv, 1, room, hd), np.float32) for _ in range(meta["n_layers"])]

    @classmethod
    def from_artifact(cls, folder: Path, manifest: dict, tokenizer=None, backend: str = "htp") -> "QnnSession":
        meta = manifest["runtime"]
        if backend == "htp" and "simulator" not in meta["parts"][0]["contexts"] and not on_snapdragon():
            from edgellama.errors import InputError

            raise InputError(f"{folder}: holds only device contexts (shared weights), which the x86 HTP simulator "
                             f"cannot load; export with --contexts both or simulator to run it here")
        sets = meta["parts"][0]["contexts"]
        chosen = "device" if "device" in sets and (on_snapdragon() or "simulator" not in sets) else "simulator"
        graphs = [{kind: Path(folder) / (part["contexts"][chosen][kind] if backend == "htp" else part["qdq"][kind])
                   for kind in GRAPHS if kind in part["qdq"]} for part in meta["parts"]]
        shared = {"ep.share_ep_contexts": "1"} if backend == "htp" and chosen == "device" else None
        return cls(graphs, meta, tokenizer, backend, config=shared)

    def prefill(self, tokens):
        self._check_room(len(tokens))
        rows, i = [], 0
        if self.pos == 0 and self.has_first and tokens:
            rows.append(self._call(FIRST, tokens[:1]))
            i = 1
        while i < len(tokens):
            left = len(tokens) - i
            # The prompt graph needs its AR columns after the past: it fits while pos <= C - AR.
            kind = "prompt" if left > 1 and self.pos + self.ar["prompt"] <= self.context else "token"
            n = min(left, self.ar[kind])
            rows.append(self._call(kind, tokens[i:i + n]))
            i += n
        return np.concatenate(rows) if rows[0] is not None else np.zeros((0, 0), np.float32)

    def reset(self):
        self.pos = 0  # the mask hides every column at or after pos

    def _call(self, kind: str, tokens: list[int]) -> np.ndarray:
        ar, n, pos, c = self.ar[kind], len(tokens), self.pos, self.context
        past = c - ar
        mask = np.full((1, 1, ar, c), MASK_VALUE, np.float32)
        mask[..., :pos] = 0.0
        mask[0, 0][np.tril_indices(ar)[0], past + np.tril_indices(ar)[1]] = 0.0
        cos, sin = rope_tables(np.arange(pos, pos + ar), self.meta["head_dim"], self.meta["rope_theta"])
        feeds = {"attention_mask": mask, "position_cos": cos[None, None], "position_sin": sin[None, None]}
        ids = np.zeros((1, ar), np.int32)
        ids[0, :n] = tokens
        carry = {"input_ids": ids, **({"hidden_in": self.hidden_in()} if self.hidden_in else {})}
        for part in self.parts:
            session = part[kind]
            names, output_names = self.io[id(session)]
            for name in names:
                if name.startswith("past_key_"):
                    feeds[name] = self.keys[int(name.rsplit("_", 1)[1])][..., :past]
                elif name.startswith("past_value_"):
                    feeds[name] = self.values[int(name.rsplit("_", 1)[1])][:, :, :past]
            feeds.update(carry)
            outputs = dict(zip(output_names, session.run(None, {name: feeds[name] for name in names})))
            if self.observe:
                self.observe(outputs, kind)
            kept = max(0, min(n, c - 1 - pos))  # the entry of position C - 1 is never attended to
            for name, value in outputs.items():
                if name.startswith("new_key_"):
                    self.keys[int(name.rsplit("_", 1)[1])][..., pos:pos + kept] = value[..., :kept]
                elif name.startswith("new_value_"):
                    self.values[int(name.rsplit("_", 1)[1])][:, :, pos:pos + kept] = value[:, :, :kept]
            carry = {"hidden_in": outputs.get("hidden_out")}
        self.pos += n
        return outputs["logits"][0, :n] if "logits" in outputs else None  # None: a part without the head


def htp_session(folder: Path, manifest: dict, tokenizer=None) -> QnnSession:
    """The artifact's compiled contexts on the HTP (the x86 simulator here)."""
    return QnnSession.from_artifact(folder, manifest, tokenizer, "htp")


def cpu_twin(folder: Path, manifest: dict, tokenizer=None) -> QnnSession:
    """Parity's twin: the same QDQ graphs on the CPU EP, i.e. what the HTP was asked to compute."""
    return QnnSession.from_artifact(folder, manifest, tokenizer, "cpu")
