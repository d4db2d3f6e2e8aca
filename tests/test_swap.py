"""Swapping A and B (arena_pref.swap): labels, probability arrays and featurized pair frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arena_pref.swap import SWAPPED_CLASS, swap_label, swap_labels, swap_pairs, swap_probs


@pytest.mark.parametrize("label, expected", [(0, 1), (1, 0), (2, 2), (-1, -1)])
def test_swap_label_exact(label, expected):
    assert swap_label(label) == expected


@pytest.mark.parametrize("label", [0, 1, 2, -1])
def test_swap_label_twice_is_identity(label):
    assert swap_label(swap_label(label)) == label


def test_swap_labels_maps_an_array_as_swap_label_maps_each_label():
    labels = np.array([0, 1, 2, 2, 1, 0, 0])
    np.testing.assert_array_equal(swap_labels(labels), [1, 0, 2, 2, 0, 1, 1])
    np.testing.assert_array_equal(swap_labels(swap_labels(labels)), labels)


def test_swap_label_numpy_ints():
    assert swap_label(np.int64(0)) == 1
    assert swap_label(np.int64(-1)) == -1


def test_swapped_class_exchanges_the_win_classes():
    assert SWAPPED_CLASS == (1, 0, 2)


def test_swap_probs_exact():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.25, 0.5]])
    original = probs.copy()
    out = swap_probs(probs)
    np.testing.assert_array_equal(out, [[0.2, 0.7, 0.1], [0.3, 0.1, 0.6], [0.25, 0.25, 0.5]])
    np.testing.assert_array_equal(probs, original)  # the input is not modified
    assert out.shape == (3, 3)


def test_swap_probs_twice_is_identity_and_tie_column_unchanged():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=20)
    np.testing.assert_array_equal(swap_probs(swap_probs(probs)), probs)
    np.testing.assert_array_equal(swap_probs(probs)[:, 2], probs[:, 2])
    np.testing.assert_allclose(swap_probs(probs).sum(axis=1), 1.0)


def test_swap_probs_empty():
    assert swap_probs(np.zeros((0, 3))).shape == (0, 3)


def _pairs() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "a_ids": [[1, 2], [3], [4, 5, 6], [7]],
        "b_ids": [[9], [8, 8], [10], [11, 12]],
        "label": [0, 1, 2, -1],
        "swapped": [False, False, True, False],
        "fold": [0, 1, 2, -1],
    })


def test_swap_pairs_exact():
    pairs = _pairs()
    out = swap_pairs(pairs)
    assert out["a_ids"].tolist() == [[9], [8, 8], [10], [11, 12]]
    assert out["b_ids"].tolist() == [[1, 2], [3], [4, 5, 6], [7]]
    assert out["label"].tolist() == [1, 0, 2, -1]  # a tie stays a tie, unknown stays unknown
    assert out["swapped"].tolist() == [True, True, False, True]
    assert out["id"].tolist() == ["a", "b", "c", "d"]
    assert out["fold"].tolist() == [0, 1, 2, -1]
    assert list(out.columns) == list(pairs.columns)


def test_swap_pairs_does_not_modify_input():
    pairs = _pairs()
    swap_pairs(pairs)
    pd.testing.assert_frame_equal(pairs, _pairs())


def test_swap_pairs_twice_is_identity():
    pairs = _pairs()
    pd.testing.assert_frame_equal(swap_pairs(swap_pairs(pairs)), pairs)


def test_swap_pairs_numpy_id_arrays():
    # Parquet round trips give numpy arrays, not lists, in the id columns.
    pairs = pd.DataFrame({"a_ids": [np.array([1, 2])], "b_ids": [np.array([3])], "label": [0], "swapped": [False]})
    out = swap_pairs(pairs)
    np.testing.assert_array_equal(out.loc[0, "a_ids"], [3])
    np.testing.assert_array_equal(out.loc[0, "b_ids"], [1, 2])
    assert out.loc[0, "label"] == 1
    assert bool(out.loc[0, "swapped"]) is True
