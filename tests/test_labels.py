"""The class order (arena_pref.labels) that labels, probability columns and Kaggle's files share."""

from __future__ import annotations

from arena_pref.data import TRAIN_COLUMNS
from arena_pref.labels import A_WINS, B_WINS, CLASSES, LABEL_COLUMNS, N_CLASSES, NO_LABEL, TIE


def test_classes_are_the_indices_of_their_columns():
    assert (A_WINS, B_WINS, TIE) == CLASSES == tuple(range(N_CLASSES)) == (0, 1, 2)
    assert LABEL_COLUMNS == ("winner_model_a", "winner_model_b", "winner_tie")  # Kaggle's names, in class order
    assert NO_LABEL not in CLASSES


def test_train_csv_header_ends_with_the_label_columns():
    assert TRAIN_COLUMNS[-N_CLASSES:] == LABEL_COLUMNS
