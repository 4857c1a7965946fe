"""Tokenizers: sentencepiece `tokenizer.model` (Llama 2) and HF `tokenizer.json`.

A GGUF file carries its tokenizer as metadata; it is rebuilt here as one of those two real
formats, because that is what ExecuTorch's runner and onnxruntime-genai read from an artifact."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .formats import Checkpoint, TokenizerSource

class Tokenizer:
    kind: str
    bos_id: int | None
    eos_ids: list[int]
    add_bos: bool
    chat_template: str | None = None

    @property
    def vocab_size(self) -> int: ...
    def encode(self, text: str, bos: bool | None = None) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def save(self, folder: Path) -> Path: ...

    def id_to_piece(self, i: int) -> str: ...

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        """The text of a one-turn chat, ready for `encode` (BOS is added by encode, not here)."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        if self.chat_template:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            bos = self.id_to_piece(self.bos_id) if self.bos_id is not None else ""
            eos = self.id_to_piece(self.eos_ids[0]) if self.eos_ids else ""
            text = env.from_string(self.chat_template).render(
                messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)
            # A template that writes BOS itself would get a second one from encode().
            return text[len(bos):] if self.add_bos and bos and text.startswith(bos) else text
        # Llama 2 chat format, as Meta's reference `chat_completion` writes it.
        if system:
            user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
        return f"[INST] {user.strip()} [/INST]"


class SentencePieceTokenizer(Tokenizer):
    kind = "sentencepiece"

    def __init__(self, model_proto: bytes, add_bos: bool = True, chat_template: str | None = None):
        import sentencepiece as spm

        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.bos_id = self.sp.bos_id() if self.sp.bos_id() >= 0 else None
        self.eos_ids = [self.sp.eos_id()] if self.sp.eos_id() >= 0 else []
        self.add_bos = add_bos
        self.chat_template = chat_template

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text, bos=None):
        ids = self.sp.encode(text)
        return ([self.bos_id] if (self.add_bos if bos is None else bos) and self.bos_id is not None else []) + ids

    def decode(self, ids):
        return self.sp.decode(list(ids))

    def id_to_piece(self, i):
        return self.sp.id_to_piece(i)

    def save(self, folder):
        out = Path(folder) / "tokenizer.model"
        out.write_bytes(self.proto)
        return out


class HFTokenizer(Tokenizer):
    kind = "hf"

    def __init__(self, tok, bos_id, eos_ids, add_bos, chat_template=None, config=None):
        self.tok, self.bos_id, self.eos_ids, self.add_bos = tok, bos_id, eos_ids, add_bos
        self.chat_template = chat_template
        self.config = config or {}

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text, bos=None):
        ids = self.tok.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if (self.add_bos if bos is None else bos) and self.bos_id is not None else []) + ids

    def decode(self, ids):
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def id_to_piece(self, i):
        return self.tok.id_to_token(i)

    def save(self, folder):
        out = Path(folder) / "tokenizer.json"
        self.tok.save(str(out))
        cfg = {"bos_token": self.id_to_piece(self.bos_id) if self.bos_id is not None else None,
               "eos_token": self.id_to_piece(self.eos_ids[0]) if self.eos_ids else None,
               "add_bos_token": self.add_bos, "chat_template": self.chat_template,
               "tokenizer_class": "PreTrainedTokenizerFast"}
        (Path(folder) / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))
        return out


def _hf_from_file(path: Path, config: dict) -> HFTokenizer:
    from tokenizers import Tokenizer as HFTok

    try:
        tok = HFTok.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
        raise InputError(f"{path}: not a valid tokenizer.json ({str(e)[:120]}); restore the original file") from None

    def token_id(value):
        if isinstance(value, dict):
            value = value.get("content")
        return tok.token_to_id(value) if isinstance(value, str) else value

    bos = token_id(config.get("bos_token")) if config.get("bos_token") else config.get("bos_token_id")
    eos = token_id(config.get("eos_token")) if config.get("eos_token") else config.get("eos_token_id")
    eos_ids = eos if isinstance(eos, list) else ([eos] if eos is not None else [])
    return HFTokenizer(tok, bos, eos_ids, bool(config.get("add_bos_token", bos is not None)),
                       config.get("chat_template"), config)


def _sentencepiece_from_gguf(meta: dict) -> SentencePieceTokenizer:
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id = 0, -1, -1
    proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "identity"
    add_prefix = meta.get("add_space_prefix")
    proto.normalizer_spec.add_dummy_prefix = True if add_prefix is None else bool(add_prefix)
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    scores = meta.get("scores") or [0.0] * len(meta["tokens"])
    types = meta.get("token_type") or [1] * len(meta["tokens"])
    for piece, score, typ in zip(meta["tokens"], scores, types):
        proto.pieces.add(piece=piece, score=float(score), type=int(typ))
    if meta.get("bos_token_id") is not None:
        proto.trainer_spec.bos_id = meta["bos_token_id"]
    if meta.get("eos_token_id") is not None:
        proto.trainer_spec.eos_id = meta["eos_token_id"]
    add_bos = meta.get("add_bos_token")
    return SentencePieceTokenizer(proto.SerializeToString(), True if add_bos is None else bool(add_bos),
                                  meta.get("chat_template"))


def _bpe_from_gguf(meta: dict) -> HFTokenizer:
    """GGUF 'gpt2' tokenizers are byte-level BPE (SmolLM2, Llama 3...)."""
    from tokenizers import AddedToken, Tokenizer as HFTok, decoders, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(meta["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in meta["merges"]]
    tok = HFTok(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    # llama.cpp's "smollm" pre-tokenizer splits digits one by one before the GPT-2 regex, as the
    # original tokenizer.json does.
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if meta.get("pre") == "smollm" else byte_level)
    tok.decoder = decoders.ByteLevel()
    types = meta.get("token_type") or []
    tok.add_special_tokens([AddedToken(meta["tokens"][i], special=True, normalized=False)
                            for i, typ in enumerate(types) if typ == 3])  # 3 = control token
    bos, eos = meta.get("bos_token_id"), meta.get("eos_token_id")
    add_bos = meta.get("add_bos_token")
    return HFTokenizer(tok, bos, [eos] if eos is not None else [], bool(add_bos) if add_bos is not None else False,
                       meta.get("chat_template"))


def load_tokenizer_source(src: TokenizerSource) -> Tokenizer | None:
    if src.kind == "sentencepiece":
        try:
            proto = src.path.read_bytes()
            tok = SentencePieceTokenizer(proto, chat_template=src.config.get("chat_template"))
        except (RuntimeError, OSError) as e:
            raise InputError(f"{src.path}: not a valid sentencepiece model ({str(e)[:120]}); restore the original tokenizer.model") from None
        if "add_bos_token" in src.config:
            tok.add_bos = bool(src.config["add_bos_token"])
        return tok
    if src.kind == "hf":
        return _hf_from_file(src.path, src.config)
    if src.kind == "gguf":
        model = src.config.get("model")
        if model == "llama":
            return _sentencepiece_from_gguf(src.config)
        if model == "gpt2":
            return _bpe_from_gguf(src.config)
        raise InputError(f"{src.path}: GGUF tokenizer model {model!r} is not supported (only 'llama' and 'gpt2'); "
                         f"pass a tokenizer.model or tokenizer.json with --tokenizer")
    return None


def tokenizer_for(ckpt: Checkpoint, override: str | Path | None = None) -> Tokenizer:
    """The checkpoint's tokenizer (or `override`), checked against the embedding size."""
    if override is not None:
        p = Path(override)
        src = TokenizerSource("hf" if p.suffix == ".json" else "sentencepiece", p)
    else:
        src = ckpt.tokenizer
    tok = load_tokenizer_source(src)
    if tok is None:
        raise InputError(f"{ckpt.path}: no tokenizer found (tokenizer.model or tokenizer.json); "
                         f"put it next to the weights or pass --tokenizer")
    if tok.vocab_size > ckpt.args.vocab_size:
        where = src.path or ckpt.path
        raise InputError(f"{where}: tokenizer has {tok.vocab_size} tokens but the model's embedding has "
                         f"{ckpt.args.vocab_size} rows; use the tokenizer that came with these weights")
    return tok
