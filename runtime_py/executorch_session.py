"""A `.pte` run by ExecuTorch's Python runtime, calling forward(tokens, input_pos) ourselves so that
the logits are visible (TextLLMRunner only hands out decoded text)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from .session import Session, SessionInfo


def register_kernels() -> None:
    """A .pte using the llama custom ops or quantized embeddings needs their kernels registered in
    the loading process; importing these modules does it."""
    import executorch.kernels.quantized  # noqa: F401
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401


class ExecuTorchSession(Session):
    def __init__(self, folder: Path, manifest: dict, tokenizer=None):
        import torch
        from executorch.runtime import Runtime

        from .open import unloadable

        register_kernels()
        meta = manifest["runtime"]
        path = Path(folder) / meta["model_file"]
        log = io.StringIO()  # ExecuTorch logs why a program does not load through sys.stderr
        try:
            with contextlib.redirect_stderr(log):
                self.program = Runtime.get().load_program(path)
                self.method = self.program.load_method("forward")
                # The vocabulary the program itself was built with (the manifest could say otherwise).
                vocab = int(self.constant("get_vocab_size")[0])
        except (RuntimeError, ValueError, IndexError) as e:
            why = [line.split("] ", 1)[-1] for line in log.getvalue().splitlines() if line.strip()]
            raise unloadable(path, "ExecuTorch", RuntimeError(why[-1]) if why else e) from None
        # On success the log holds only XNNPACK's cpuinfo probing lines ("Failed to open midr file"...),
        # noise to a user, so it is dropped.
        self.chunk = meta["get_max_seq_len"]
        self.tokenizer = tokenizer
        self.info = SessionInfo(meta["get_max_context_len"], vocab, meta["get_n_layers"],
                                meta["get_bos_id"] if meta["get_bos_id"] >= 0 else None, list(meta["get_eos_ids"]))
        self._torch = torch

    def constant(self, name: str):
        """A runner metadata value as stored in the .pte (what TextLLMRunner reads)."""
        out = self.program.load_method(name).execute([])
        return [int(x) if not hasattr(x, "tolist") else x.tolist() for x in out]

    def runtime_metadata(self) -> dict:
        """The constant methods TextLLMRunner reads, as stored in the .pte (scalars unwrapped)."""
        names = set(self.program.method_names) - {"forward"}
        out = {}
        for name in sorted(names):
            value = self.constant(name)
            out[name] = value[0] if len(value) == 1 and not name.endswith("_ids") else value
        return out

    def prefill(self, tokens):
        torch = self._torch
        self._check_room(len(tokens))
        rows = []
        for i in range(0, len(tokens), self.chunk):  # as the runner does for prompts over get_max_seq_len
            part = tokens[i:i + self.chunk]
            (logits,) = self.method.execute([torch.tensor([part], dtype=torch.long),
                                             torch.tensor([self.pos], dtype=torch.long)])
            self.pos += len(part)
            rows.append(logits.reshape(-1, logits.shape[-1])[-len(part):].float().numpy())
        return np.concatenate(rows)

    def reset(self):
        # custom_sdpa only reads cache positions below the current one, so rewinding is enough.
        self.pos = 0
