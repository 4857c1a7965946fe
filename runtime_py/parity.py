"""Teacher-forced comparison of an artifact's Session against reference Sessions on the same tokens:
how far its next-token distributions drift, per token and in summary.

numpy only: torch is needed by the reference sessions (built in `references.py`), not here, so an
artifact compared against references that need no torch never imports it through this module."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from edgellama.errors import InputError

from .session import Session

TOP_K_OVERLAP = 5
SCATTER_POINTS = 2000  # logit pairs kept for the scatter plot (a fixed-seed sample)


# ---------------------------------------------------------------------------------------------
# per-token numbers


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def token_metrics(ref: np.ndarray, art: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per row (= per position) numbers for logits ref/art [n, V]. targets[i] is the token that
    follows row i, or -1 where there is none worth scoring (perplexity skips those rows)."""
    lr, la = log_softmax(ref), log_softmax(art)
    kl = (np.exp(lr) * (lr - la)).sum(-1)
    k = min(TOP_K_OVERLAP, ref.shape[-1])
    top_ref = np.argpartition(-ref, k - 1, axis=-1)[:, :k]
    top_art = np.argpartition(-art, k - 1, axis=-1)[:, :k]
    overlap = np.array([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_art)])
    ref64, art64 = ref.astype(np.float64), art.astype(np.float64)
    cos = (ref64 * art64).sum(-1) / (np.linalg.norm(ref64, axis=-1) * np.linalg.norm(art64, axis=-1))
    diff = np.abs(ref64 - art64)
    scored = targets >= 0
    rows = np.arange(len(targets))
    safe = np.where(scored, targets, 0)
    return {"kl": np.maximum(kl, 0.0),  # rounding can leave -1e-17 where the two agree exactly
            "top1": (ref.argmax(-1) == art.argmax(-1)).astype(np.float64),
            "top5": overlap, "cos": cos, "max_abs": diff.max(-1), "mean_abs": diff.mean(-1),
            "nll_ref": np.where(scored, -lr[rows, safe], np.nan), "nll_art": np.where(scored, -la[rows, safe], np.nan)}


# ---------------------------------------------------------------------------------------------
# running sessions


def prefill_rows(session: Session, ids: list[int]) -> np.ndarray:
    """Logits for every position of `ids` fed from position 0 as one prompt (the session chunks it
    the way its runner does), whether the artifact returns all rows of a prefill or only the last."""
    session.reset()
    rows = session.prefill(list(ids))
    if len(rows) == len(ids):
        return rows
    session.reset()
    out = [session.prefill(ids[:1])[-1]]
    out += [session.decode(t) for t in ids[1:]]
    return np.stack(out)


def greedy_rows(session: Session, prompt: list[int], n: int) -> tuple[list[int], np.ndarray]:
    """Greedy generation as a runner does it (prompt prefill, then one decode step per token, EOS
    ignored so every prompt yields n tokens) -> (the n tokens, logits for every position of
    prompt + tokens). The decode steps are what read the KV cache written by earlier calls."""
    rows = [prefill_rows(session, prompt)]
    tokens = []
    for _ in range(n):
        tokens.append(int(np.argmax(rows[-1][-1])))
        rows.append(session.decode(tokens[-1])[None])
    return tokens, np.concatenate(rows)


@dataclass
class Sequence:
    kind: str  # "prompt" (prompt + the artifact's greedy continuation) or "text" (a window of a text file)
    ids: list[int]
    scored: int  # rows 0..scored-1 have a natural next token (perplexity is taken over those)
    generated: list[int]  # the artifact's greedy tokens ("prompt" only)
    art: np.ndarray  # artifact logits, one row per position


def artifact_sequences(session: Session, prompts: list[list[int]], windows: list[list[int]],
                       gen_tokens: int, say=lambda _msg: None) -> list[Sequence]:
    """Runs the artifact once; every reference is compared against these same rows."""
    import time

    out, started, total = [], time.perf_counter(), len(prompts) + len(windows)
    for prompt in prompts:
        tokens, rows = greedy_rows(session, prompt, gen_tokens)
        out.append(Sequence("prompt", prompt + tokens, len(prompt) - 1, tokens, rows))
        say(f"artifact: {len(out)}/{total} sequences, {time.perf_counter() - started:.0f} s")
    for ids in windows:
        out.append(Sequence("text", ids, len(ids) - 1, [], prefill_rows(session, ids)))
        say(f"artifact: {len(out)}/{total} sequences, {time.perf_counter() - started:.0f} s")
    return out


def greedy_match_length(ref_rows: np.ndarray, seq: Sequence) -> int:
    """How many of the artifact's greedy tokens the reference would have generated too: the
    reference's argmax after the prompt and after each earlier (agreed) token, compared in order.
    Teacher-forced on the artifact's tokens, which is the same as generating with the reference
    up to the first disagreement."""
    start = len(seq.ids) - len(seq.generated) - 1
    ref_choice = ref_rows[start:start + len(seq.generated)].argmax(-1)
    differs = np.flatnonzero(ref_choice != np.array(seq.generated))
    return int(differs[0]) if len(differs) else len(seq.generated)


# ---------------------------------------------------------------------------------------------
# summaries


def summarize(per_token: dict[str, np.ndarray]) -> dict:
    nll_ref = per_token["nll_ref"][~np.isnan(per_token["nll_ref"])]
    nll_art = per_token["nll_art"][~np.isnan(per_token["nll_art"])]
    ppl_ref = float(np.exp(nll_ref.mean())) if len(nll_ref) else float("nan")
    ppl_art = float(np.exp(nll_art.mean())) if len(nll_art) else float("nan")
    return {
        "positions": int(len(per_token["kl"])),
        "top1_agreement": float(per_token["top1"].mean()),
        "top5_overlap": float(per_token["top5"].mean()),
        "kl_mean": float(per_token["kl"].mean()),
        "kl_p99": float(np.percentile(per_token["kl"], 99)),
        "kl_max": float(per_token["kl"].max()),
        "max_abs_logit_diff": float(per_token["max_abs"].max()),
        "mean_abs_logit_diff": float(per_token["mean_abs"].mean()),
        "cosine_mean": float(per_token["cos"].mean()),
        "cosine_min": float(per_token["cos"].min()),
        "ppl_reference": ppl_ref,
        "ppl_artifact": ppl_art,
        "ppl_ratio": ppl_art / ppl_ref,
        "scored_tokens": int(len(nll_ref)),
    }


def by_position(per_token: dict[str, np.ndarray], positions: np.ndarray) -> dict:
    """Mean KL and top-1 agreement at each position (over every sequence that reaches it)."""
    n = int(positions.max()) + 1
    count = np.bincount(positions, minlength=n)
    kl = np.bincount(positions, weights=per_token["kl"], minlength=n)
    top1 = np.bincount(positions, weights=per_token["top1"], minlength=n)
    seen = count > 0
    return {"position": np.arange(n)[seen].tolist(), "count": count[seen].tolist(),
            "kl_mean": [round(float(v), 8) for v in kl[seen] / count[seen]],
            "top1_agreement": [round(float(v), 6) for v in top1[seen] / count[seen]]}


def scatter_sample(refs: list[np.ndarray], arts: list[np.ndarray]) -> dict:
    """A fixed-seed sample of (reference, artifact) logit pairs: each row's reference top-1 logit
    (where the two matter most) plus uniformly drawn entries, SCATTER_POINTS in all."""
    ref, art = np.concatenate(refs), np.concatenate(arts)
    rng = np.random.default_rng(0)
    n_rows = ref.shape[0]
    top_rows = rng.choice(n_rows, size=min(n_rows, SCATTER_POINTS // 4), replace=False)
    rows = np.concatenate([top_rows, rng.integers(0, n_rows, SCATTER_POINTS - len(top_rows))])
    cols = np.concatenate([ref[top_rows].argmax(-1), rng.integers(0, ref.shape[1], SCATTER_POINTS - len(top_rows))])
    return {"reference": [round(float(v), 5) for v in ref[rows, cols]],
            "artifact": [round(float(v), 5) for v in art[rows, cols]]}


def compare_reference(reference: Session, sequences: list[Sequence]) -> dict:
    """One reference against the artifact rows: summary overall and per data set, greedy match
    lengths, and the series the report plots."""
    per_seq, refs = [], []
    for seq in sequences:
        ref = prefill_rows(reference, seq.ids)
        if ref.shape != seq.art.shape:
            raise InputError(f"reference logits {ref.shape} do not match the artifact's {seq.art.shape}; "
                             f"pass the checkpoint the artifact was exported from with --reference")
        targets = np.full(len(seq.ids), -1)
        targets[:seq.scored] = seq.ids[1:seq.scored + 1]
        per_seq.append(token_metrics(ref, seq.art, targets))
        refs.append(ref)

    def merged(kinds) -> dict[str, np.ndarray]:
        chosen = [m for m, s in zip(per_seq, sequences) if s.kind in kinds]
        return {k: np.concatenate([m[k] for m in chosen]) for k in per_seq[0]}

    everything = merged(("prompt", "text"))
    metrics = summarize(everything)
    matches = [greedy_match_length(r, s) for r, s in zip(refs, sequences) if s.kind == "prompt"]
    if matches:
        n = len(sequences[0].generated)
        metrics.update(greedy_tokens=n, greedy_match_mean=float(np.mean(matches)),
                       greedy_match_min=int(min(matches)),
                       greedy_full_match=float(np.mean([m == n for m in matches])))
    datasets = {kind: summarize(merged((kind,))) for kind in ("prompt", "text") if any(s.kind == kind for s in sequences)}
    positions = np.concatenate([np.arange(len(s.ids)) for s in sequences])
    return {"metrics": metrics, "by_dataset": datasets, "greedy_match": matches,
            "series": {"by_position": by_position(everything, positions),
                       "scatter": scatter_sample(refs, [s.art for s in sequences])}}


# ---------------------------------------------------------------------------------------------
# inputs: the prompt set and text windows


def default_prompts_file() -> Path:
    return Path(str(resources.files("edgellama.runtime") / "data" / "prompts.jsonl"))


def load_prompts(path: Path | None) -> list[dict]:
    """A .jsonl file of {"prompt": str, "chat": bool} objects, or a text file with one prompt per line."""
    path = Path(path) if path else default_prompts_file()
    if not path.is_file():
        raise InputError(f"--prompts {path}: no such file; pass a .jsonl of {{\"prompt\": ...}} lines or a text file, one prompt per line")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        prompts = []
        for n, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
                prompts.append({"prompt": str(item["prompt"]), "chat": bool(item.get("chat", False))})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(f"--prompts {path}: line {n} is not a JSON object with a \"prompt\" key; fix that line") from None
    else:
        prompts = [{"prompt": line, "chat": False} for line in lines]
    if not prompts:
        raise InputError(f"--prompts {path}: holds no prompts; add at least one")
    return prompts


def encode_prompts(tokenizer, prompts: list[dict], room: int) -> list[list[int]]:
    """Token ids per prompt; `room` is how many positions a prompt may use (context minus the
    greedy tokens); longer prompts are cut from the left, keeping their end."""
    out = []
    for p in prompts:
        ids = tokenizer.encode(tokenizer.chat_prompt(p["prompt"]) if p["chat"] else p["prompt"])
        out.append(ids[-room:] if len(ids) > room else ids)
    return [ids for ids in out if len(ids) >= 2]


def text_windows(tokenizer, path: Path, count: int, length: int) -> list[list[int]]:
    """`count` non-overlapping windows of `length` tokens from the start of a text file (a BOS first
    when the tokenizer adds one, as a runner would)."""
    from edgellama.texts import read_text

    text = read_text(path, "--text", count * length * 16)
    bos = [tokenizer.bos_id] if tokenizer.add_bos and tokenizer.bos_id is not None else []
    body = tokenizer.encode(text, bos=False)
    step = length - len(bos)
    windows = [bos + body[i:i + step] for i in range(0, len(body) - step + 1, step)][:count]
    if count and not windows:
        raise InputError(f"--text {path}: shorter than one window of {length} tokens; pass a longer text or lower --window-len")
    return windows


# ---------------------------------------------------------------------------------------------
# the simple one-reference summary (the demo's drift line)


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


def compare(reference: Session, artifact: Session, ids: list[int]) -> Drift:
    """Both sessions teacher-forced over `ids` as one prompt."""
    ref, art = prefill_rows(reference, ids), prefill_rows(artifact, ids)
    targets = np.array(list(ids[1:]) + [-1])
    s = summarize(token_metrics(ref, art, targets))
    return Drift(**{k: s[k] for k in Drift.__dataclass_fields__})


# ---------------------------------------------------------------------------------------------
# the whole check: every reference, limits, runner metadata -> one JSON-ready result


def machine() -> str:
    import os
    import platform

    try:
        ram = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM"
    except (ValueError, OSError):
        ram = ""
    return f"{os.cpu_count()} cores{ram} ({platform.machine()})"


def run_parity(artifact: Session, manifest: dict, references: dict[str, Session], reference_paths: dict[str, str],
               prompts: list[list[int]], windows: list[list[int]], gen_tokens: int, limits: list,
               say=lambda _msg: None) -> dict:
    """-> the result `edgellama parity` prints and writes (report.py): metrics per reference,
    the limits with pass/fail, the runner metadata check, failures and the verdict."""
    import time

    from .metadata_check import check_runtime_metadata
    from .thresholds import check_limits

    started = time.perf_counter()
    stored, failures = check_runtime_metadata(artifact, manifest)
    say(f"running the artifact: {len(prompts)} prompts + {gen_tokens} greedy tokens each, {len(windows)} text windows")
    sequences = artifact_sequences(artifact, prompts, windows, gen_tokens, say)
    compared = {}
    for name, session in references.items():
        say(f"teacher-forcing the {name} reference")
        compared[name] = {"path": reference_paths[name], **compare_reference(session, sequences)}
    failures += check_limits(limits, {name: c["metrics"] for name, c in compared.items()})
    for name, c in compared.items():
        c["limits"] = [{"metric": lim.metric, "bound": lim.bound, "value": lim.value,
                        "measured": c["metrics"].get(lim.metric),
                        "pass": lim.holds(c["metrics"][lim.metric]) if lim.metric in c["metrics"] else None}
                       for lim in limits if lim.reference == name]
    return {"references": compared, "runtime_metadata": stored,
            "failures": [f.line() for f in failures], "verdict": "FAIL" if failures else "PASS",
            "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
            "seconds": round(time.perf_counter() - started, 1)}
