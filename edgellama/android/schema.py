"""bundle.schema.json (beside this module): the bundle manifest's one schema. edgellama validates
against it; the app's field constants (android_demo, ManifestFields.java) are tested against it."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from edgellama.errors import InputError

# Package data, so a pip-installed edgellama (no checkout beside it) bundles too.
SCHEMA_FILE = Path(__file__).resolve().parent / "bundle.schema.json"


@lru_cache(maxsize=1)
def schema() -> dict:
    if not SCHEMA_FILE.is_file():
        raise InputError(f"{SCHEMA_FILE}: missing from the installed package; reinstall edgellama")
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
