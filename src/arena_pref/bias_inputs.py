"""The bias report's inputs: probability tables keyed by id, checked and aligned to the labelled rows.

A probability file (read by predictions.read_probs: columns id, winner_model_a, winner_model_b,
winner_tie, and optionally fold and label) must give each of its ids once, probabilities in [0, 1]
summing to 1, ids that the labelled rows have, and, when it has a label
column, the same label as the labelled rows.
Anything else stops with a DataError naming the file, the row (data rows from 1) and the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .csvfile import read_table
from .errors import DataError
from .labels import LABEL_COLUMNS
from .predictions import align_to, probs_of, read_probs

SUM_TOLERANCE = 1e-4  # rows written with 6 decimals (a scorer's CSV) sum to 1 within a few 1e-6


def has_rows(path: str | Path) -> bool:
    """Whether the CSV at `path` has a data row (a switched-off member's placeholder has only a header)."""
    return bool(read_table(path).rows)


def checked_probs(path: str | Path, labelled: pd.DataFrame) -> pd.DataFrame:
    """The probability file at `path` (read by predictions.read_probs, which checks ids and cells),
    checked against `labelled` (columns id, label) as the module docstring says. Row order of the file."""
    frame = read_probs(path)
    probs = probs_of(frame)
    off = np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(path, f"probabilities sum to {probs[row].sum():.6g}, not 1", row + 1, ", ".join(LABEL_COLUMNS))
    labels = labelled.set_index("id")["label"]
    unknown = ~frame["id"].isin(labels.index)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(path, f"id {frame['id'].iloc[row]!r} is not among the labelled rows "
                              f"({int(unknown.sum())} such ids)", row + 1, "id")
    if "label" in frame.columns:
        differs = frame["label"].to_numpy() != labels.loc[frame["id"]].to_numpy()
        if differs.any():
            row = int(np.flatnonzero(differs)[0])
            raise DataError(path, f"label {frame['label'].iloc[row]} but the labelled rows say "
                                  f"{labels.loc[frame['id'].iloc[row]]}", row + 1, "label")
    return frame


def aligned_probs(frame: pd.DataFrame, ids: pd.Series, path: str | Path) -> np.ndarray:
    """(n, 3) probabilities of `frame` in the order of `ids`; `frame` must hold exactly those ids."""
    return probs_of(align_to(frame, ids, path))
