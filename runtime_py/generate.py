"""Token generation on any Session: greedy or sampled, streaming, with latency stats."""
from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .session import Session


@dataclass
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 0  # 0 = no limit
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int
    new_tokens: int
    ttft_s: float  # prompt in -> first new token out
    prefill_tok_s: float
    decode_tok_s: float  # over the tokens after the first
    peak_rss_mb: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Generation:
    prompt_ids: list[int]
    tokens: list[int] = field(default_factory=list)
    stop_reason: str = "length"  # "eos" | "length"
    stats: GenerationStats | None = None


def pick_token(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    if sampling.temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / sampling.temperature
    if sampling.top_k > 0:
        kth = np.partition(z, -sampling.top_k)[-sampling.top_k]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-p)
        keep = np.cumsum(p[order]) - p[order] < sampling.top_p  # smallest set reaching top_p
        mask = np.zeros_like(p, dtype=bool)
        mask[order[keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return int(rng.choice(len(p), p=p))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def generate(session: Session, prompt_ids: list[int], max_new_tokens: int, sampling: Sampling | None = None,
             eos_ids: list[int] | None = None, on_token: Callable[[int], None] | None = None) -> Generation:
    """Prefill `prompt_ids` from the session's current position, then decode up to
    `max_new_tokens`, stopping at an EOS id. `on_token` is called as each token is chosen."""
    sampling = sampling or Sampling()
    eos = set(session.info.eos_ids if eos_ids is None else eos_ids)
    rng = np.random.default_rng(sampling.seed)
    budget = min(max_new_tokens, session.info.max_context_len - session.pos - len(prompt_ids))
    out = Generation(prompt_ids=list(prompt_ids))

    t0 = time.perf_counter()
    logits = session.prefill(list(prompt_ids))[-1]
    t_prefill = time.perf_counter() - t0
    t_first = None
    for step in range(max(budget, 0)):
        token = pick_token(logits, sampling, rng)
        if t_first is None:
            t_first = time.perf_counter()
        if token in eos:
            out.stop_reason = "eos"
            break
        out.tokens.append(token)
        if on_token:
            on_token(token)
        if step + 1 == budget:
            break
        logits = session.decode(token)
    t_end = time.perf_counter()
    t_first = t_first or t_end
    decoded = max(len(out.tokens) - 1, 0)
    out.stats = GenerationStats(
        prompt_tokens=len(prompt_ids), new_tokens=len(out.tokens), ttft_s=t_first - t0,
        prefill_tok_s=len(prompt_ids) / t_prefill if t_prefill > 0 else 0.0,
        decode_tok_s=decoded / (t_end - t_first) if decoded and t_end > t_first else 0.0,
        peak_rss_mb=peak_rss_mb())
    return out


class TextStreamer:
    """Turns a token stream into text increments (a token may end mid-way through a UTF-8 character)."""

    def __init__(self, tokenizer, write: Callable[[str], None]):
        self.tokenizer, self.write, self.ids, self.printed = tokenizer, write, [], ""

    def __call__(self, token: int) -> None:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return
        self.write(text[len(self.printed):])
        self.printed = text
