"""Fitted scikit-learn models as skops files: written by the gbdt and tfidf stages, packed into bundles,
read back without running code from the file (no pickle).

A file holds a model's state as plain containers (gbdt.model_state, tfidf.model_state). Reading it
refuses any type that skops does not trust by default unless it is in SKOPS_TRUSTED_TYPES.
"""

from __future__ import annotations

from pathlib import Path

from .bundle import BundleError

# The one type skops does not trust by default that our models hold (HistGradientBoostingClassifier's
# trees). Anything else found in a file is refused before loading.
SKOPS_TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def fold_model_path(root: str | Path, fold: int) -> Path:
    """Where the model of validation fold `fold` goes: root/fold_K.skops."""
    return Path(root) / f"fold_{fold}.skops"


def save_state(state: dict, path: str | Path) -> None:
    import skops.io as sio
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(state, path)


def load_state(path: str | Path) -> dict:
    """The state in a file of `save_state`; a BundleError naming the file when it holds an untrusted type
    or cannot be read."""
    import skops.io as sio
    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
        unexpected = sorted(set(untrusted) - set(SKOPS_TRUSTED_TYPES))
        if unexpected:
            raise BundleError(path, f"holds types outside the trusted list, refused: {unexpected}")
        state = sio.load(path, trusted=list(untrusted))
    except BundleError:
        raise
    except Exception as err:  # skops raises zipfile, key and type errors for damaged files
        raise BundleError(path, f"not a readable skops file ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise BundleError(path, f"expected a model state (dict), found {type(state).__name__}")
    return state
