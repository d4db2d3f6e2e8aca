"""Which featurized pairs train and which validate, for one fold."""

from __future__ import annotations

import pandas as pd


def split_fold(pairs: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid) pairs for validation fold `fold`.

    Train: every pair outside the fold, swapped copies included. Valid: the fold's original pairs
    only (TTA swaps them at prediction time), in their original order.
    """
    in_fold = pairs["fold"] == fold
    train = pairs[~in_fold].reset_index(drop=True)
    valid = pairs[in_fold & ~pairs["swapped"]].reset_index(drop=True)
    if train.empty or valid.empty:
        raise ValueError(f"fold {fold} leaves {len(train)} training and {len(valid)} validation pairs")
    return train, valid
