"""A sentencepiece BPE `tokenizer.model` (Llama 2's kind) rewritten as an HF `tokenizer.json`, the
only form onnxruntime-genai's tokenizer reads (measured: with tokenizer.model alone,
`onnxruntime_genai.Tokenizer` fails with "Invalid file: tokenizer.json").

SentencePiece BPE merges the adjacent pair whose merged piece scores highest; a byte-pair BPE model
gives the same result when its merge list is ranked by the merged piece's score, which is how the
list is built here. Pieces not in the vocabulary fall back to <0xNN> byte pieces, as in the original.
Tested: same ids as sentencepiece on the test prompts."""
from __future__ import annotations

import json
from pathlib import Path

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6


def merges_by_score(pieces: list[tuple[str, float, int]]) -> list[tuple[str, str]]:
    """Every (left, right) whose concatenation is a normal piece, best-scored merged piece first."""
    vocab = {p: i for i, (p, _, t) in enumerate(pieces) if t in (NORMAL, USER_DEFINED, UNKNOWN, CONTROL, BYTE)}
    ranked = []
    for merged_id, (merged, score, kind) in enumerate(pieces):
        if kind != NORMAL or len(merged) < 2:
            continue
        for cut in range(1, len(merged)):
            left, right = merged[:cut], merged[cut:]
            if left in vocab and right in vocab:
                ranked.append((-score, merged_id, vocab[left], vocab[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def sentencepiece_to_tokenizer_json(model_proto: bytes, add_bos: bool) -> dict:
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(model_proto)
    if m.trainer_spec.model_type != pb.TrainerSpec.BPE:
        raise ValueError("only sentencepiece BPE models (Llama 2's kind) are converted")
    pieces = [(p.piece, p.score, p.type) for p in m.pieces]
    unk = next((p for p, _, t in pieces if t == UNKNOWN), None)
    normalizers = ([{"type": "Prepend", "prepend": "\u2581"}] if m.normalizer_spec.add_dummy_prefix else []) + \
                  [{"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]
    decoders = [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]
    if m.normalizer_spec.add_dummy_prefix:
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    added = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, (p, _, t) in enumerate(pieces) if t in (UNKNOWN, CONTROL)]
    bos = next((p for p, _, t in pieces if p == m.trainer_spec.bos_piece and t == CONTROL), None)
    post = None
    if add_bos and bos is not None:  # BOS in front of every encoded text, as sentencepiece users add it
        bos_id = next(i for i, (p, _, _) in enumerate(pieces) if p == bos)
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": None, "post_processor": post,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": bool(m.trainer_spec.byte_fallback),
                  "ignore_merges": False, "vocab": {p: i for i, (p, _, _) in enumerate(pieces)},
                  "merges": [list(pair) for pair in merges_by_score(pieces)]},
    }


def write_tokenizer_json(tokenizer, folder: Path) -> Path:
    out = Path(folder) / "tokenizer.json"
    out.write_text(json.dumps(sentencepiece_to_tokenizer_json(tokenizer.proto, tokenizer.add_bos), ensure_ascii=False))
    return out
