"""Swap A and B: of a label, of a probability vector, of a featurized pair.

Labels and probability columns are in the class order of arena_pref.labels. Swapping exchanges the
two win classes and leaves a tie a tie; swapping twice is the identity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import A_WINS, B_WINS, TIE

SWAPPED_CLASS = (B_WINS, A_WINS, TIE)  # SWAPPED_CLASS[label] is the label after swapping


def swap_label(label: int) -> int:
    """Label of the pair with A and B exchanged; labels.NO_LABEL (unknown) stays as it is."""
    return label if label < 0 else SWAPPED_CLASS[label]


def swap_labels(labels: np.ndarray) -> np.ndarray:
    """`swap_label` of every label in an array of labels 0, 1 or 2."""
    return np.asarray(SWAPPED_CLASS, dtype=np.int64)[labels]


def swap_probs(probs: np.ndarray) -> np.ndarray:
    """Probabilities of shape (n, 3) for the swapped pairs: columns A and B exchanged."""
    return probs[:, list(SWAPPED_CLASS)]


def swap_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Featurized pairs (columns label, swapped and per-side columns a_<x> / b_<x>) with every
    per-side column pair and the labels exchanged."""
    out = pairs.copy()
    for a_column in [c for c in pairs.columns if c.startswith("a_")]:
        b_column = "b_" + a_column[2:]
        out[a_column], out[b_column] = pairs[b_column], pairs[a_column]
    out["label"] = pairs["label"].map(swap_label)
    out["swapped"] = ~pairs["swapped"]
    return out
