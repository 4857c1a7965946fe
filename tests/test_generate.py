from __future__ import annotations

import numpy as np

from edgellama.runtime.generate import Sampling, TextStreamer, generate, pick_token
from edgellama.runtime.session import Session, SessionInfo


class CountingSession(Session):
    """A deterministic toy session (not a runtime we ship for): logits favour (last token + 1)."""

    def __init__(self, vocab=50, eos=7):
        self.info = SessionInfo(max_context_len=64, vocab_size=vocab, n_layers=1, bos_id=None, eos_ids=[eos])

    def prefill(self, tokens):
        self._check_room(len(tokens))
        self.pos += len(tokens)
        logits = np.zeros((len(tokens), self.info.vocab_size), dtype=np.float32)
        for i, t in enumerate(tokens):
            logits[i, (t + 1) % self.info.vocab_size] = 5.0
        return logits

    def reset(self):
        self.pos = 0


def test_greedy_stops_at_eos():
    out = generate(CountingSession(), [2, 3], max_new_tokens=10)
    assert out.tokens == [4, 5, 6] and out.stop_reason == "eos"


def test_budget_respects_max_seq_len():
    s = CountingSession(eos=999)
    out = generate(s, list(range(10, 60)), max_new_tokens=100)
    assert len(out.tokens) == 64 - 50 and s.pos <= 64


def test_seeded_sampling_is_reproducible():
    runs = [generate(CountingSession(eos=999), [1], 20, Sampling(temperature=3.0, top_k=10, seed=42)).tokens
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = generate(CountingSession(eos=999), [1], 20, Sampling(temperature=3.0, top_k=10, seed=43)).tokens
    assert other != runs[0]


def test_top_k_and_top_p_restrict_choices():
    rng = np.random.default_rng(0)
    logits = np.array([5.0, 4.0, 0.0, -1.0], dtype=np.float32)
    assert {pick_token(logits, Sampling(1.0, top_k=2), rng) for _ in range(200)} <= {0, 1}
    assert {pick_token(logits, Sampling(1.0, top_p=0.5), rng) for _ in range(200)} == {0}


def test_streamer_waits_for_whole_characters():
    class Bytes:
        def decode(self, ids):
            return bytes(ids).decode("utf-8", errors="replace")

    pieces = []
    stream = TextStreamer(Bytes(), pieces.append)
    for b in "é!".encode():
        stream(b)
    assert pieces == ["é", "!"]
