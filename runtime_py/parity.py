"""Teacher-forced comparison of two Sessions on the same tokens: how far an artifact's next-token
distributions drift from a reference's."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .session import Session


@dataclass
class Drift:
    positions: int
    top1_agreement: float
    top5_overlap: float
    kl_mean: float  # KL(reference || artifact), nats per token
    kl_p99: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    cosine_mean: float
    ppl_reference: float
    ppl_artifact: float

    def to_dict(self) -> dict:
        return asdict(self)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def all_logits(session: Session, ids: list[int]) -> np.ndarray:
    """Logits for every position, whether the session returns all rows of a prefill or only the last."""
    session.reset()
    rows = session.prefill(ids)
    if len(rows) == len(ids):
        return rows
    session.reset()
    out = [session.prefill(ids[:1])[-1]]
    out += [session.decode(t) for t in ids[1:]]
    return np.stack(out)


def compare(reference: Session, artifact: Session, ids: list[int]) -> Drift:
    ref, art = all_logits(reference, ids), all_logits(artifact, ids)
    lr, la = log_softmax(ref), log_softmax(art)
    kl = (np.exp(lr) * (lr - la)).sum(-1)
    top5 = lambda x: np.argsort(-x, axis=-1)[:, :5]  # noqa: E731
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5(ref), top5(art))])
    cos = (ref * art).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(art, axis=-1))
    targets = np.array(ids[1:])
    nll = lambda lp: -lp[np.arange(len(targets)), targets].mean()  # noqa: E731
    diff = np.abs(ref - art)
    return Drift(positions=len(ids), top1_agreement=float((ref.argmax(-1) == art.argmax(-1)).mean()),
                 top5_overlap=float(overlap), kl_mean=float(kl.mean()), kl_p99=float(np.percentile(kl, 99)),
                 max_abs_logit_diff=float(diff.max()), mean_abs_logit_diff=float(diff.mean()),
                 cosine_mean=float(cos.mean()), ppl_reference=float(np.exp(nll(lr[:-1]))),
                 ppl_artifact=float(np.exp(nll(la[:-1]))))
