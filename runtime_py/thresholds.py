"""Pass/fail limits for `edgellama parity`, per quantization scheme and per reference, from a TOML
file (`data/thresholds.toml` ships with the package; `--thresholds FILE` replaces it).

A table `[SCHEME.REFERENCE]` holds keys `METRIC_min` / `METRIC_max`, where METRIC is a key of the
parity metrics (`top1_agreement`, `kl_mean`, ...). REFERENCE is `twin` (fidelity: the eager model
quantized with the artifact's own recipe), `fp32` (quality: the unquantized model) or `x86` (with
`parity --arch arm64`: the same artifact run on this x86 machine)."""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgellama.errors import InputError

REFERENCES = ("fp32", "twin", "x86")
METRICS = ("top1_agreement", "top5_overlap", "kl_mean", "kl_p99", "kl_max", "max_abs_logit_diff",
           "mean_abs_logit_diff", "cosine_mean", "cosine_min", "ppl_ratio", "greedy_match_mean",
           "greedy_match_min", "greedy_full_match")
ROLE = {"twin": "fidelity", "fp32": "quality", "x86": "arm vs x86"}


@dataclass
class Limit:
    reference: str
    metric: str
    bound: str  # "min" | "max"
    value: float

    def holds(self, measured: float) -> bool:
        if measured is None or math.isnan(measured):
            return False
        return measured >= self.value if self.bound == "min" else measured <= self.value

    def describe(self) -> str:
        return f"{'≥' if self.bound == 'min' else '≤'} {self.value:g}"


def default_thresholds_file() -> Path:
    return Path(str(resources.files("edgellama.runtime") / "data" / "thresholds.toml"))


def load_thresholds(path: Path | None) -> dict[str, list[Limit]]:
    """-> {scheme: [Limit, ...]}; every key is checked here, so a typo is an input error, not a
    limit that silently never applies."""
    path = Path(path) if path else default_thresholds_file()
    if not path.is_file():
        raise InputError(f"--thresholds {path}: no such file; pass a TOML file like edgellama/runtime/data/thresholds.toml")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"--thresholds {path}: not valid TOML ({e}); fix the file") from None
    out = {}
    for scheme, refs in data.items():
        if not isinstance(refs, dict):
            raise InputError(f"--thresholds {path}: {scheme!r} must be a table [{scheme}.twin] / [{scheme}.fp32]")
        out[scheme] = []
        for ref, keys in refs.items():
            if ref not in REFERENCES or not isinstance(keys, dict):
                raise InputError(f"--thresholds {path}: [{scheme}.{ref}] is not a reference; use [{scheme}.twin], [{scheme}.fp32] or [{scheme}.x86]")
            for key, value in keys.items():
                metric, _, bound = key.rpartition("_")
                if metric not in METRICS or bound not in ("min", "max") or not isinstance(value, (int, float)):
                    raise InputError(f"--thresholds {path}: [{scheme}.{ref}] {key} = {value!r} is not a limit; "
                                     f"keys are METRIC_min or METRIC_max with a number, METRIC one of {', '.join(METRICS)}")
                out[scheme].append(Limit(ref, metric, bound, float(value)))
    return out


def limits_for(thresholds: dict[str, list[Limit]], scheme: str, path: Path | None) -> list[Limit]:
    if scheme not in thresholds:
        where = path or default_thresholds_file()
        raise InputError(f"--thresholds {where}: no limits for scheme {scheme!r}; add [{scheme}.twin] and [{scheme}.fp32] tables")
    return thresholds[scheme]


@dataclass
class Failure:
    check: str  # "fidelity (vs twin)", "quality (vs fp32)" or "runtime metadata"
    message: str

    def line(self) -> str:
        return f"FAIL {self.check}: {self.message}"


def check_limits(limits: list[Limit], metrics_by_reference: dict[str, dict]) -> list[Failure]:
    failures = []
    for limit in limits:
        measured = metrics_by_reference.get(limit.reference, {}).get(limit.metric)
        if measured is None:  # e.g. greedy limits when no prompts were run
            continue
        if not limit.holds(measured):
            failures.append(Failure(f"{ROLE[limit.reference]} (vs {limit.reference})",
                                    f"{limit.metric} = {measured:.6g}, threshold {limit.metric}_{limit.bound} "
                                    f"{limit.describe()}"))
    return failures
