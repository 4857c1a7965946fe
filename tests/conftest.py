from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

from checkpoints import hf_model, write_meta

REPO = Path(__file__).resolve().parents[1]
VOCAB = 384  # divisible by 8, so an 8-way Meta split of the output head is even


def training_text(limit: int = 4000) -> list[str]:
    """Sentences for the test tokenizer: the packaged WikiText-2 valid.txt."""
    from edgellama.texts import calibration_text

    lines = [s.strip() for s in calibration_text().read_text().splitlines() if len(s.strip()) > 20]
    return lines[:limit]


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory) -> Path:
    """A sentencepiece BPE model with byte fallback, as Llama 2's, trained here."""
    import sentencepiece as spm

    folder = tmp_path_factory.mktemp("sp")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()), model_prefix=str(folder / "tok"), vocab_size=VOCAB,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0,
        pad_id=-1, num_threads=1, minloglevel=2,
        # Llama 2's tokenizer.model: no Unicode normalisation, whitespace kept as written.
        normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True)
    return folder / "tok.model"


@pytest.fixture(scope="session")
def tiny_hf():
    return hf_model(VOCAB)


@pytest.fixture(scope="session")
def tiny_hf_tied():
    return hf_model(VOCAB, tie=True, seed=1)


@pytest.fixture(scope="session")
def tiny_meta(tmp_path_factory, tiny_hf, sp_model):
    """The tiny model as a Meta checkpoint (2 shards, sentencepiece tokenizer)."""
    return write_meta(tmp_path_factory.mktemp("ckpt") / "meta", tiny_hf.state_dict(), 2, tokenizer=sp_model)


def export_tiny(tmp_path_factory, ckpt: Path, name: str, *choice: str) -> Path:
    """The tiny model exported as `choice` says (e.g. "--recipe", "onnx-4w"), at test sizes."""
    out = tmp_path_factory.mktemp("art") / name
    code, _, err = run_cli("export", "--model", ckpt, *choice, "--max-seq-len", "32",
                           "--max-context-len", "160", "--out", out)
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def tiny_pte(tmp_path_factory, tiny_meta):
    """The tiny model exported with the default recipe (xnnpack-8da4w); shared by the export and
    parity tests because lowering it takes most of a minute."""
    return export_tiny(tmp_path_factory, tiny_meta, "tiny-8da4w", "--recipe", "xnnpack-8da4w")


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, tiny_meta):
    """The tiny model exported with the onnx-4w recipe (weight-only at accuracy level 1: equals its
    twin), from the same checkpoint as tiny_pte. Tests read it; those that change it copy it first."""
    return export_tiny(tmp_path_factory, tiny_meta, "tiny-onnx-4w", "--recipe", "onnx-4w")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_pte, tiny_onnx):
    """`edgellama bundle` of tiny_pte and tiny_onnx, as the folder `tiny`."""
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    code, _, err = run_cli("bundle", tiny_pte, tiny_onnx, "--out", out)
    assert code == 0, err
    return out


SMOLLM2_PTE = REPO / ".cache" / "smollm2-xnnpack-8da4w"  # git-ignored; the export takes ~6 min


@pytest.fixture(scope="session")
def smollm2_pte() -> Path:
    """The embedded SmolLM2 exported with the default recipe, once: reused while its manifest verifies
    and records the recipe's current options (slow tests only)."""
    from edgellama.export.artifact import verifies_with_recipe

    if verifies_with_recipe(SMOLLM2_PTE, "xnnpack-8da4w"):
        return SMOLLM2_PTE
    code, _, err = run_cli("export", "--recipe", "xnnpack-8da4w", "--out", SMOLLM2_PTE, "--force")
    assert code == 0, err
    return SMOLLM2_PTE


@pytest.fixture(scope="session")
def tokens() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(3, VOCAB, (2, 37), generator=g)


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the `edgellama` entry point in-process; returns (exit code, stdout, stderr)."""
    from edgellama import cli

    old = sys.argv, sys.stdout, sys.stderr
    sys.argv = ["edgellama", *map(str, args)]
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        out, err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.argv, sys.stdout, sys.stderr = old
    return code, out, err
