"""An ONNX artifact run by a plain `onnxruntime.InferenceSession`, with the KV cache managed here.
Torch-free: nothing in this module imports torch.

The cache is static: one buffer of max_context_len positions per layer for keys and one for values,
bound with IO binding as both the `past_key_values.N.*` input and the `present.N.*` output, so
GroupQueryAttention writes each step's K/V in place (as onnxruntime-genai's shared buffer does).
The attention mask is all ones over the filled positions; its width tells the graph where to write."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .session import Session, SessionInfo


class OnnxSession(Session):
    def __init__(self, folder: Path, manifest: dict, tokenizer=None, threads: int = 0):
        import onnxruntime as ort

        meta = manifest["runtime"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = ONNX Runtime's choice (one per physical core)
        from .open import unloadable

        path = Path(folder) / meta["model_file"]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001  onnxruntime raises its own Fail/InvalidProtobuf/... classes
            raise unloadable(path, "ONNX Runtime", e) from None
        # The vocabulary the graph itself was built with: the logits' last dimension.
        vocab = next(o.shape[-1] for o in self.session.get_outputs() if o.name == "logits")
        self.tokenizer = tokenizer
        self.chunk = meta["max_seq_len"]
        self.info = SessionInfo(meta["max_context_len"], vocab if isinstance(vocab, int) else meta["vocab_size"],
                                meta["n_layers"], meta["bos_id"], list(meta["eos_ids"]))
        shape = (1, meta["n_kv_heads"], meta["max_context_len"], meta["head_dim"])
        self.binding = self.session.io_binding()
        self.binding.bind_output("logits")  # bound first, so it is get_outputs()[0]
        self.cache = {}
        for i in range(meta["n_layers"]):
            for kind in ("key", "value"):
                buf = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=np.float32))
                self.cache[(i, kind)] = buf
                self.binding.bind_ortvalue_input(f"past_key_values.{i}.{kind}", buf)
                self.binding.bind_ortvalue_output(f"present.{i}.{kind}", buf)

    def prefill(self, tokens):
        self._check_room(len(tokens))
        rows = []
        for i in range(0, len(tokens), self.chunk):  # long prompts in chunks of max_seq_len, as the .pte runner
            part = tokens[i:i + self.chunk]
            self.binding.bind_cpu_input("input_ids", np.array([part], dtype=np.int64))
            self.binding.bind_cpu_input("attention_mask", np.ones((1, self.pos + len(part)), dtype=np.int64))
            self.binding.bind_output("logits")  # unallocated again: its shape follows the chunk length
            self.session.run_with_iobinding(self.binding)
            self.pos += len(part)
            rows.append(self.binding.get_outputs()[0].numpy()[0])
        return np.concatenate(rows)

    def reset(self):
        # GroupQueryAttention reads only the positions the mask says are filled, so rewinding is enough.
        self.pos = 0
