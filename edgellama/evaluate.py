"""Perplexity as llama.cpp computes it: non-overlapping windows of `ctx` tokens, each scored on its
second half (the first half is context), plus top-1 agreement with a reference model."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def text_windows(tokenizer, text: str, ctx: int, limit: int | None = None) -> list[list[int]]:
    ids = tokenizer.encode(text, bos=False)
    windows = [ids[i:i + ctx] for i in range(0, len(ids) - ctx + 1, ctx)]
    return windows[:limit] if limit else windows


@dataclass
class PplResult:
    ppl: float
    tokens: int
    top1_agreement: float | None = None  # with the reference, when one was given


@torch.no_grad()
def perplexity(model, windows: list[list[int]], reference=None) -> PplResult:
    nll, count, agree = 0.0, 0, 0
    for ids in windows:
        x = torch.tensor([ids], dtype=torch.long)
        logits = model(x)[0, :-1].float()
        half = len(ids) // 2
        targets = x[0, 1:]
        logp = torch.log_softmax(logits[half - 1:], -1)
        nll -= logp.gather(-1, targets[half - 1:, None]).sum().item()
        count += len(targets) - (half - 1)
        if reference is not None:
            ref = reference(x)[0, :-1]
            agree += (ref[half - 1:].argmax(-1) == logits[half - 1:].argmax(-1)).sum().item()
    return PplResult(math.exp(nll / count), count, agree / count if reference is not None else None)
