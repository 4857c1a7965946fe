"""edgellama: Llama-family LLMs onto phones and edge boards.

Importing the package is cheap; torch and the runtimes are imported by the functions that need them.
"""
__version__ = "0.1.0"


def load_model(path, dtype=None):
    """Load a Meta / Hugging Face / GGUF Llama checkpoint as an `edgellama.model.Transformer`
    (`forward(tokens[B, T]) -> logits[B, T, V]`). dtype defaults to torch.float32."""
    import torch

    from .loader import load_model as _load

    return _load(path, dtype or torch.float32)


def load_tokenizer(path):
    """The tokenizer that belongs to a checkpoint (sentencepiece, tokenizer.json, or GGUF metadata)."""
    from .formats import open_checkpoint
    from .tokenizer import tokenizer_for

    return tokenizer_for(open_checkpoint(path))


__all__ = ["__version__", "load_model", "load_tokenizer"]
