"""The prompt a benchmark feeds: real text (default: the packaged WikiText-2 test text), cut so that the
artifact's own tokenizer makes exactly the asked number of tokens of it, BOS included when the model
adds one. Runtimes that take text (TextLLMRunner) get the text, the others the ids; both are the same
tokens."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError

# WikiText-2 is stored word-tokenized ("1 @,@ 000", "it 's"); a prompt reads as ordinary text.
WIKITEXT_MARKUP = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" ,", ","), (" .", "."), (" 's", "'s"),
                   ("( ", "("), (" )", ")"), (" ;", ";"), (" :", ":"))


def paragraphs(text_file: Path | None) -> list[str]:
    """The text's paragraphs in order; for the packaged WikiText-2 text without headings, without
    paragraphs holding <unk>, and with its word-tokenization undone."""
    from edgellama import texts

    if text_file is None:
        lines = texts.evaluation_text().read_text().splitlines()
        kept = []
        for line in lines:
            line = line.strip()
            if len(line.split()) < 20 or line.startswith("=") or "<unk>" in line:
                continue
            for x, y in WIKITEXT_MARKUP:
                line = line.replace(x, y)
            kept.append(line)
        return kept
    return [p for p in texts.read_text(text_file, "--prompt-file").split("\n") if p.strip()]


def exact_prompt(tokenizer, paras: list[str], n_tokens: int, skip: int = 0, option: str = "--prompt-file"):
    """-> (text, ids): the text from paragraph `skip` on whose encoding (with the tokenizer's BOS
    setting) is exactly n_tokens ids. A cut between two tokens can merge them when re-encoded, so
    the cut is moved a token at a time until the count is exact."""
    bos = 1 if tokenizer.add_bos and tokenizer.bos_id is not None else 0
    want = n_tokens - bos
    body, chars = "", 0
    for para in paras[skip:]:
        body = para if not body else body + "\n" + para
        chars = len(body)
        if chars > 8 * want:  # a token is at most a few characters; 8 per token is plenty
            break
    ids = tokenizer.encode(body, bos=False)
    if want < 1 or len(ids) < want + 8:
        raise InputError(f"{option}: the text from paragraph {skip + 1} has {len(ids)} tokens, fewer than "
                         f"--prompt-len {n_tokens} needs; pass a longer text or a smaller --prompt-len")
    for k in sorted(range(want - 4, want + 8), key=lambda k: abs(k - want)):
        text = tokenizer.decode(ids[:k])
        full = tokenizer.encode(text)
        if len(full) == n_tokens:
            return text, full
    raise InputError(f"{option}: no cut of the text from paragraph {skip + 1} encodes to exactly {n_tokens} "
                     f"tokens; try another --prompt-len")
