"""Which rows train and which validate: fold numbers and the folds a run validates on.

Fold values: 0..n_folds-1 for rows of the main training file, EXTRA_FOLD for rows of the extra
training files (they train in every fold and are never validated on), NO_FOLD for test rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError

NO_FOLD = -1
EXTRA_FOLD = -2
ALL_FOLDS = -1  # train.fold value asking for k-fold cross-validation


def validation_folds(folds: np.ndarray, requested: int) -> list[int]:
    """The folds to validate on: [requested], or every fold present when requested is ALL_FOLDS."""
    present = sorted(int(f) for f in np.unique(folds) if f >= 0)
    if requested == ALL_FOLDS:
        return present
    if requested not in present:
        raise InputError(f"train.fold={requested} but the data has folds {present}; set train.fold to one of them "
                         "or -1 (all)")
    return [requested]


def split_fold(pairs: pd.DataFrame, fold: int, train_on_swapped: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid) pairs for validation fold `fold`.

    Train: every pair outside the fold (extra rows included; swapped copies when `train_on_swapped`).
    Valid: the fold's original pairs only (TTA swaps them at prediction time), in their original order.
    """
    in_fold = pairs["fold"] == fold
    train = pairs[~in_fold & (train_on_swapped | ~pairs["swapped"])].reset_index(drop=True)
    valid = pairs[in_fold & ~pairs["swapped"]].reset_index(drop=True)
    if train.empty or valid.empty:
        raise InputError(f"fold {fold} leaves {len(train)} training and {len(valid)} validation pairs")
    return train, valid


def fold_dir(root: str, fold: int) -> str:
    """Where the outputs of one fold go (models/siamese/fold_0, metrics/train/fold_0, ...)."""
    return f"{root}/fold_{fold}"
