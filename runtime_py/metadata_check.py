"""The artifact's own runner metadata against the tokenizer and manifest: a runner that reads a wrong
EOS id never stops, a wrong BOS id changes every prompt, a wrong context length overruns the KV
cache. These values live in the artifact (for a .pte, its constant methods), separately from the
manifest, so they are read back from it."""
from __future__ import annotations

from .session import Session
from .thresholds import Failure


def expected_metadata(session: Session, manifest: dict) -> dict[str, tuple[object, str]]:
    """method -> (expected value, where the expectation comes from)."""
    tok = session.tokenizer
    options, model = manifest.get("options", {}), manifest.get("model", {})
    expected = {}
    if tok is not None:
        expected["get_bos_id"] = (tok.bos_id if tok.bos_id is not None else -1, f"the tokenizer ({manifest['tokenizer']['file']})")
        expected["get_eos_ids"] = (sorted(manifest["tokenizer"]["eos_ids"]), "the tokenizer's eos ids in manifest.json")
    if options.get("max_context_len"):
        expected["get_max_context_len"] = (options["max_context_len"], "manifest.json options.max_context_len")
    if options.get("max_seq_len"):
        expected["get_max_seq_len"] = (options["max_seq_len"], "manifest.json options.max_seq_len")
    if model.get("vocab_size"):
        expected["get_vocab_size"] = (model["vocab_size"], "manifest.json model.vocab_size")
    if model.get("n_layers"):
        expected["get_n_layers"] = (model["n_layers"], "manifest.json model.n_layers")
    return expected


def check_runtime_metadata(session: Session, manifest: dict) -> tuple[dict, list[Failure]]:
    """-> (what the artifact carries, one Failure per method whose value differs)."""
    stored = session.runtime_metadata()
    model_file = manifest.get("runtime", {}).get("model_file", "the model file")
    failures = []
    for name, (want, source) in expected_metadata(session, manifest).items():
        if name not in stored:
            continue
        got = sorted(stored[name]) if isinstance(stored[name], list) else stored[name]
        if got != want:
            failures.append(Failure("runtime metadata", f"{name} in {model_file} = {stored[name]}, expected {want} "
                                                        f"from {source}"))
    return stored, failures
