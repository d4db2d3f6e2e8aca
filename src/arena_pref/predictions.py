"""Probability tables keyed by id: out-of-fold and test predictions of each model, as files.

Columns: id, then optional extras (fold, label), then winner_model_a, winner_model_b, winner_tie.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .data import LABEL_NAMES


def probs_frame(ids, probs: np.ndarray, **extra_columns) -> pd.DataFrame:
    frame = pd.DataFrame({"id": [str(i) for i in ids], **extra_columns})
    frame[list(LABEL_NAMES)] = np.asarray(probs, dtype=np.float64)
    return frame


def write_probs(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 17 significant digits: a float64 written and read back is the same number.
    frame.to_csv(path, index=False, float_format="%.17g")


def read_probs(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in ("id", *LABEL_NAMES) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return frame


def probs_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(LABEL_NAMES)].to_numpy(dtype=np.float64)
