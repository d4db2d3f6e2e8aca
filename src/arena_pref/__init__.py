"""arena-pref: models that predict which of two chatbot answers a human preferred.

`from arena_pref import Scorer` loads a trained bundle and scores pairs (see docs/scoring.md). The
import is lazy (PEP 562), so `import arena_pref.data` does not pull in torch and transformers.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("arena-pref")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Scorer", "__version__"]


def __getattr__(name: str):
    if name == "Scorer":
        from .scorer import Scorer
        return Scorer
    raise AttributeError(f"module 'arena_pref' has no attribute {name!r}")
