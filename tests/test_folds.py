import numpy as np
import pandas as pd
import pytest

from arena_pref.folds import ALL_FOLDS, split_fold, validation_folds


def pairs_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["1", "2", "3", "x", "1", "2", "3", "x"],
        "fold": [0, 1, 1, -2, 0, 1, 1, -2],
        "swapped": [False] * 4 + [True] * 4,
    })


def test_split_trains_outside_the_fold_and_validates_its_original_pairs():
    train, valid = split_fold(pairs_frame(), 1)
    assert valid["id"].tolist() == ["2", "3"] and not valid["swapped"].any()
    assert train["id"].tolist() == ["1", "x", "1", "x"]  # extra rows (fold -2) train, swapped copies too


def test_split_can_leave_the_swapped_copies_out_of_training():
    train, _ = split_fold(pairs_frame(), 1, train_on_swapped=False)
    assert train["id"].tolist() == ["1", "x"] and not train["swapped"].any()


def test_validation_folds_all_or_one():
    folds = np.array([0, 1, 2, -2, 1])
    assert validation_folds(folds, ALL_FOLDS) == [0, 1, 2]
    assert validation_folds(folds, 2) == [2]
    with pytest.raises(ValueError, match="train.fold=4"):
        validation_folds(folds, 4)


def test_a_fold_without_rows_is_an_error():
    with pytest.raises(ValueError, match="fold 5 leaves"):
        split_fold(pairs_frame(), 5)
