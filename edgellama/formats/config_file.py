"""Reading a checkpoint's JSON config (HF config.json, Meta params.json) so that a malformed file
is a one-line InputError naming the file, the key and the fix, never a KeyError or TypeError."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

_MISSING = object()


def read_config(path: Path) -> dict:
    """The file's JSON object; broken JSON, non-UTF-8 bytes or a non-object are input errors."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({str(e)[:120]}); restore the original file") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: holds a JSON {type(data).__name__}, not an object of settings; "
                         f"restore the original file")
    return data


def config_value(cfg: dict, key: str, path: Path, kind: type, default=_MISSING, positive: bool = True):
    """cfg[key] checked against `kind` (int, or float which also takes an int). A JSON bool is not an
    int here, although Python says it is: `"hidden_size": true` is a broken file, not 1."""
    value = cfg.get(key, default)
    if value is _MISSING:
        raise InputError(f"{path}: no {key!r}; restore the original file (it ships with the weights)")
    if value is None and default is None:
        return None
    ok = (not isinstance(value, bool)) and (isinstance(value, int) if kind is int else isinstance(value, (int, float)))
    if not ok:
        raise InputError(f"{path}: {key} = {json.dumps(value)} is not {'an integer' if kind is int else 'a number'}; "
                         f"restore the original file")
    if positive and value <= 0:
        raise InputError(f"{path}: {key} = {value} must be positive; restore the original file")
    return kind(value)
