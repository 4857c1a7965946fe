"""android_demo/bundle.schema.json: the bundle manifest's one schema, read by edgellama and the app."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from edgellama.errors import InputError

# The schema lives with the app that reads it; edgellama is installed editable from this checkout
# (the Makefile does so), so the file is found beside the package.
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "android_demo" / "bundle.schema.json"


@lru_cache(maxsize=1)
def schema() -> dict:
    if not SCHEMA_FILE.is_file():
        raise InputError(f"{SCHEMA_FILE}: missing; install edgellama from its checkout (`make .venv/.installed`)")
    return json.loads(SCHEMA_FILE.read_text())


def validate(manifest: dict, where: Path) -> None:
    """Raises InputError naming the first field that breaks the schema."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        field = "/".join(map(str, e.path)) or "(top level)"
        raise InputError(f"{where}: {field}: {e.message} (against {SCHEMA_FILE.name}); make the bundle again with "
                         f"`edgellama bundle`")
