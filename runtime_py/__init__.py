"""edgellama.runtime: one Session interface over eager models and exported artifacts,
generation on top of it, parity checks and benchmarks. Torch is imported only by sessions
that need it."""
from .session import Session

__all__ = ["Session"]
