"""`Session`: what generation, parity and benchmarks need from any runnable model.

Logits travel as float32 numpy arrays so that torch-free sessions (ONNX) fit the same interface."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SessionInfo:
    max_context_len: int  # KV-cache positions
    vocab_size: int
    n_layers: int
    bos_id: int | None
    eos_ids: list[int]


class Session:
    info: SessionInfo
    tokenizer: object | None = None
    pos: int = 0  # how many positions of the KV cache are filled

    def prefill(self, tokens: list[int]) -> np.ndarray:
        """Run the prompt from the current position; logits [n, V] for the last n positions the
        artifact returns (all T for eager and full-logit exports, 1 for last-logit exports)."""
        raise NotImplementedError

    def decode(self, token: int) -> np.ndarray:
        """One step; logits [V]."""
        return self.prefill([token])[-1]

    def reset(self) -> None:
        raise NotImplementedError

    def runtime_metadata(self) -> dict:
        """The values the artifact itself carries for its runner (bos/eos ids, context length,
        vocabulary size...), read from the artifact, not from the manifest; empty where the runtime
        stores none."""
        return {}

    def _check_room(self, n: int) -> None:
        if self.pos + n > self.info.max_context_len:
            from edgellama.errors import InputError

            raise InputError(f"{self.pos} + {n} tokens exceed the context of {self.info.max_context_len} positions; "
                             f"shorten the prompt or re-export with a larger --max-context-len")


class EagerSession(Session):
    """An edgellama Transformer (fp32 or quantized) run by PyTorch with a static KV cache."""

    def __init__(self, model, tokenizer=None, max_context_len: int | None = None):
        import torch

        from edgellama.kv_cache import install_static_cache

        args = model.args
        context = min(max_context_len or args.max_context_len, args.max_context_len)
        self.model = install_static_cache(model, context)
        self.tokenizer = tokenizer
        self.info = SessionInfo(context, args.vocab_size, args.n_layers,
                                getattr(tokenizer, "bos_id", None), list(getattr(tokenizer, "eos_ids", [])))
        self._torch = torch

    def prefill(self, tokens):
        torch = self._torch
        self._check_room(len(tokens))
        with torch.no_grad():
            logits = self.model(torch.tensor([tokens], dtype=torch.long), torch.tensor([self.pos], dtype=torch.long))
        self.pos += len(tokens)
        return logits[0].float().numpy()

    def reset(self):
        from edgellama.kv_cache import reset_cache

        reset_cache(self.model)
        self.pos = 0
