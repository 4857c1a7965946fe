"""The chat template rendered once, here, into a one-turn format with {system} and {user}
placeholders, so the app fills in a message without a Jinja engine."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError

# Sentinels no template writes; each is swapped for its placeholder after rendering.
_USER, _SYSTEM = "\x01edgellama-user\x01", "\x01edgellama-system\x01"


def chat_format(tokenizer, where: Path) -> dict:
    user = tokenizer.chat_prompt(_USER)
    both = tokenizer.chat_prompt(_USER, _SYSTEM)
    out = {"user": user.replace(_USER, "{user}"), "system_user": both.replace(_USER, "{user}").replace(_SYSTEM, "{system}")}
    if out["user"].count("{user}") != 1 or out["system_user"].count("{system}") != 1:
        raise InputError(f"{where}: the chat template does not write each message exactly once; bundle a model "
                         f"whose template renders a one-turn chat plainly")
    return out
