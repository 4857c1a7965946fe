"""Export options, their validation, and recipes (small TOML files in export/recipes/)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from edgellama.errors import InputError
from edgellama.schemes import GROUP_SIZES, SCHEMES, head_scheme

from .targets import TARGETS

RECIPES = Path(__file__).parent / "recipes"


@dataclass
class ExportOptions:
    target: str = "xnnpack"
    quant: str = "8da4w"
    group_size: int = 32
    quant_algo: str = "rtn"
    embedding_quant: str = "8w"  # "8w" | "4w" | "head" (share the output head's table when tied) | "none"
    output_quant: str = "8w"  # the output head of int4 schemes: "8w" (per-channel) | "4w" (in groups of group_size)
    size_budget: float = 1.0  # > 1: mixed precision, sensitive linears at 8-bit within this x all-int4 size
    max_seq_len: int = 512
    max_context_len: int | None = None  # defaults to max_seq_len
    dtype: str = "fp32"
    accuracy_level: int | None = None  # onnx only: MatMulNBits accuracy_level; defaults to 1 (fp32)
    calibration: str | None = None  # text file for algorithms that calibrate; default WikiText-2 valid.txt
    soc: str | None = None  # qnn only: the Snapdragon SoC the HTP contexts are compiled for
    parts: str = "auto"  # qnn only: how many parts the layers are split into (each its own HTP context)
    contexts: str | None = None  # qnn only: which compiled context sets: both, simulator or device
    kv_bits: int | None = None  # qnn only: the KV cache's encoding, 8 or 16 bits
    logits: str | None = None  # "last" (the position a runner samples from) | "all"; default: xnnpack last, onnx all
    recipe: str | None = None
    # Names of the options given on the command line. The others come from the recipe or the defaults,
    # so where the model or the target cannot take them they are adjusted (with a note in `notes`)
    # instead of refused with an option the user never passed.
    given: frozenset = field(default=frozenset(), compare=False, repr=False)
    notes: list = field(default_factory=list, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("given", "notes")}

    def adjust(self, name: str, value, why: str) -> None:
        """Change an option the user did not give, saying so."""
        source = f"recipe {self.recipe}" if self.recipe else "the default"
        self.notes.append(f"{name} {getattr(self, name)} ({source}) {why}: using {value}")
        setattr(self, name, value)

    def validate(self, model_context: int) -> "ExportOptions":
        if self.target not in TARGETS:
            raise InputError(f"--target {self.target}: unknown target; use one of {', '.join(TARGETS)}")
        if self.quant not in SCHEMES:
            raise InputError(f"--quant {self.quant}: unknown scheme; use one of {', '.join(SCHEMES)}")
        if self.group_size not in GROUP_SIZES:
            raise InputError(f"--group-size {self.group_size}: use one of 32, 64, 128, 256 or 0 (per-channel)")
        if self.embedding_quant not in ("8w", "4w", "head", "none"):
            raise InputError(f"--embedding-quant {self.embedding_quant}: use 8w, 4w, head or none")
        head_scheme(self.quant, self.output_quant)
        if not 1.0 <= self.size_budget <= 2.0:
            raise InputError(f"--size-budget {self.size_budget}: a size ratio over all-int4 linears; use 1.0 (off) to 2.0")
        if self.dtype not in ("fp32", "fp16", "bf16"):
            raise InputError(f"--dtype {self.dtype}: use fp32, fp16 or bf16")
        if self.max_seq_len > model_context and "max_seq_len" not in self.given:
            self.adjust("max_seq_len", model_context, f"exceeds the model's context of {model_context}")
        if (self.max_context_len or 0) > model_context and "max_context_len" not in self.given:
            self.adjust("max_context_len", model_context, f"exceeds the model's context of {model_context}")
        if not 2 <= self.max_seq_len <= model_context:
            raise InputError(f"--max-seq-len {self.max_seq_len}: the model's context is {model_context} tokens; "
                             f"choose 2..{model_context}")
        target = TARGETS[self.target]
        for other in TARGETS.values():  # options that only one target has
            for name in other.defaults:
                if other is not target and getattr(self, name) is not None:
                    raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: applies to --target {other.name} "
                                     f"only; drop it for --target {self.target}")
        for name, value in target.defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.logits is None:
            self.logits = target.logits
        if self.logits not in ("last", "all"):
            raise InputError(f"--logits {self.logits}: use last (the last position's only) or all")
        if self.max_context_len is None:
            self.max_context_len = self.max_seq_len
        if not self.max_seq_len <= self.max_context_len <= model_context:
            raise InputError(f"--max-context-len {self.max_context_len}: must lie between --max-seq-len "
                             f"({self.max_seq_len}) and the model's context ({model_context})")
        return self


def load_recipe(path: str | Path) -> dict:
    """A recipe file's options; a bare name (`xnnpack-8da4w`) is looked up in export/recipes/."""
    p = Path(path)
    if not p.exists() and (RECIPES / f"{p.stem}.toml").exists():
        p = RECIPES / f"{p.stem}.toml"
    if not p.exists():
        names = ", ".join(sorted(r.stem for r in RECIPES.glob("*.toml")))
        raise InputError(f"{path}: no such recipe; pass a TOML file or one of: {names}")
    if not p.is_file():
        raise InputError(f"{p}: is a folder, not a recipe; pass a TOML file")
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text (byte {e.start}); save the recipe as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{p}: not valid TOML ({e}); fix the recipe file") from None
    known = {f.name for f in fields(ExportOptions)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{p}: unknown option {unknown[0]!r}; recipe keys are {', '.join(sorted(known - {'recipe'}))}")
    for key, value in data.items():
        kind = RECIPE_TYPES.get(key, str)
        # TOML's bool is Python's int subclass: `max_seq_len = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, kind):
            want = {int: "an integer", str: "a string"}.get(kind, "a number")
            raise InputError(f"{p}: {key} = {value!r} is not {want}; fix the recipe file")
    return {**data, "recipe": p.stem}


# Recipe keys that are not strings, and the TOML types they take.
RECIPE_TYPES = {"group_size": int, "max_seq_len": int, "max_context_len": int, "accuracy_level": int, "kv_bits": int,
                "size_budget": (int, float)}
