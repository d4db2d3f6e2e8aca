"""Kaggle submission: id, winner_model_a, winner_model_b, winner_tie; checked before it is written."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .labels import LABEL_COLUMNS, N_CLASSES

SUM_TOLERANCE = 1e-6


class SubmissionError(InputError):
    """A submission that Kaggle would reject or score wrongly."""


def _as_table(probs, ids: list[str]) -> np.ndarray:
    """`probs` as a float array; ragged rows (lists of different lengths) or cells that are not numbers
    are a SubmissionError naming the first such row, not numpy's "inhomogeneous shape" message."""
    try:
        return np.asarray(probs, dtype=np.float64)
    except (ValueError, TypeError) as err:
        for i, row in enumerate(probs):
            row_id = ids[i] if i < len(ids) else f"#{i}"
            try:
                values = np.asarray(row, dtype=np.float64)
            except (ValueError, TypeError):
                raise SubmissionError(f"row {i} (id {row_id}) is not a list of numbers: {row!r}") from None
            if values.shape != (N_CLASSES,):
                raise SubmissionError(f"row {i} (id {row_id}) holds {values.size} values, expected {N_CLASSES} "
                                      f"({', '.join(LABEL_COLUMNS)})") from None
        raise SubmissionError(f"probabilities are not a table of numbers ({err})") from None


def build_submission(ids: Sequence[str], probs: np.ndarray, expected_ids: Sequence[str]) -> pd.DataFrame:
    """Submission rows in the order of `expected_ids` (the test file's ids).

    Refuses ids that differ from the test file's (missing, extra or repeated) and rows that are not
    finite probabilities summing to 1.
    """
    ids = [str(i) for i in ids]
    expected_ids = [str(i) for i in expected_ids]
    if len(set(ids)) != len(ids):
        raise SubmissionError("predictions hold repeated ids")
    # A repeated expected id would pass the set comparison below and repeat its row in the output.
    if len(set(expected_ids)) != len(expected_ids):
        raise SubmissionError("the test file's ids repeat")
    missing = sorted(set(expected_ids) - set(ids))
    extra = sorted(set(ids) - set(expected_ids))
    if missing or extra:
        raise SubmissionError(f"prediction ids differ from the test file: {len(missing)} missing "
                              f"(e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})")
    probs = _as_table(probs, ids)
    if probs.shape != (len(ids), N_CLASSES):
        raise SubmissionError(f"expected probabilities of shape ({len(ids)}, {N_CLASSES}), got {probs.shape}")
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | (np.abs(probs.sum(axis=1) - 1) > SUM_TOLERANCE)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SubmissionError(f"{int(bad.sum())} rows are not finite probabilities summing to 1, "
                              f"e.g. id {ids[first]}: {probs[first].tolist()}")
    frame = pd.DataFrame(probs, columns=list(LABEL_COLUMNS))
    frame.insert(0, "id", ids)
    return frame.set_index("id").loc[list(expected_ids)].reset_index()

