"""Scores of probability predictions (arena_pref.metrics), checked against hand computations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from arena_pref.metrics import (
    calibration_table,
    confusion_rows,
    expected_calibration_error,
    flip_rate,
    kaggle_log_loss,
    score,
)

EPS = np.finfo(np.float64).eps


# ------------------------------------------------------------------------------------ kaggle_log_loss

def test_kaggle_log_loss_hand_computation():
    labels = np.array([0, 1, 2])
    probs = np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    expected = -(math.log(0.5) + math.log(0.6) + math.log(0.8)) / 3
    assert kaggle_log_loss(labels, probs) == pytest.approx(expected, rel=1e-12)


def test_kaggle_log_loss_renormalises_rows():
    # [2, 1, 1] is read as [0.5, 0.25, 0.25]; [1, 1, 2] as [0.25, 0.25, 0.5].
    loss = kaggle_log_loss(np.array([0, 2]), np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 2.0]]))
    assert loss == pytest.approx(-math.log(0.5), rel=1e-12)


def test_kaggle_log_loss_clips_a_zero_probability_to_float64_eps():
    loss = kaggle_log_loss(np.array([0]), np.array([[0.0, 1.0, 0.0]]))
    assert loss == pytest.approx(-math.log(EPS), rel=1e-9)
    assert loss == pytest.approx(36.04365338911715, rel=1e-9)


def test_kaggle_log_loss_mixed_rows_with_clipping():
    labels = np.array([0, 1])
    probs = np.array([[0.0, 1.0, 0.0], [0.2, 0.5, 0.3]])
    assert kaggle_log_loss(labels, probs) == pytest.approx((-math.log(EPS) - math.log(0.5)) / 2, rel=1e-9)


def test_kaggle_log_loss_float32_input_uses_float64_eps():
    # The documented eps is float64's whatever dtype the caller passes (float32 eps would cap a
    # confident miss at 15.9 instead of 36.0).
    probs = np.array([[0.0, 1.0, 0.0], [0.2, 0.5, 0.3]], dtype=np.float32)
    expected = (-math.log(EPS) - math.log(np.float32(0.5))) / 2
    assert kaggle_log_loss(np.array([0, 1]), probs) == pytest.approx(expected, rel=1e-6)


def test_kaggle_log_loss_certain_and_right_is_almost_zero():
    assert kaggle_log_loss(np.array([2]), np.array([[0.0, 0.0, 1.0]])) == pytest.approx(0.0, abs=1e-12)


def test_kaggle_log_loss_labels_missing_a_class():
    # Only class 1 present in the labels: still scored over 3 classes, no error, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = kaggle_log_loss(np.array([1, 1]), np.array([[0.1, 0.8, 0.1], [0.3, 0.4, 0.3]]))
    assert loss == pytest.approx(-(math.log(0.8) + math.log(0.4)) / 2, rel=1e-12)


def test_kaggle_log_loss_uniform_is_log3():
    probs = np.full((4, 3), 1.0 / 3.0)
    assert kaggle_log_loss(np.array([0, 1, 2, 0]), probs) == pytest.approx(math.log(3), rel=1e-12)


# ---------------------------------------------------------------------------------------------- score

def test_score_hand_computation():
    labels = np.array([0, 0, 1, 2])
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]])
    out = score(labels, probs)
    # predicted = [0, 1, 1, 0]
    assert out["accuracy"] == 0.5
    assert out["log_loss"] == pytest.approx(-(math.log(0.6) + math.log(0.2) + math.log(0.8) + math.log(0.4)) / 4)
    assert out["per_class"]["winner_model_a"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "mean_prob": 0.35})
    assert out["per_class"]["winner_model_b"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1, "mean_prob": 0.475})
    # No tie is ever predicted: precision 0 by the zero_division rule, not a warning or NaN.
    assert out["per_class"]["winner_tie"] == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "mean_prob": 0.175})
    assert isinstance(out["per_class"]["winner_tie"]["support"], int)


# ------------------------------------------------------------------------------------------ flip_rate

def test_flip_rate_exact():
    forward = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    swapped_back = np.array([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4], [0.4, 0.5, 0.1]])
    # Rows 1 (B -> A) and 3 (A -> B) change class: 2 of 4.
    assert flip_rate(forward, swapped_back) == 0.5


def test_flip_rate_bounds():
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    assert flip_rate(probs, probs.copy()) == 0.0
    assert flip_rate(probs, probs[:, [1, 2, 0]]) == 1.0


# ------------------------------------------------------------------------------------- confusion_rows

def test_confusion_rows_exact():
    labels = np.array([0, 1, 2, 2])
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]])
    expected = pd.DataFrame({
        "actual": ["winner_model_a", "winner_model_b", "winner_tie", "winner_tie"],
        "predicted": ["winner_model_a", "winner_tie", "winner_tie", "winner_model_b"],
    })
    pd.testing.assert_frame_equal(confusion_rows(labels, probs), expected)


# ------------------------------------------------------------------------ calibration_table and ECE

def _calibration_data():
    # Top confidences 0.4 (right), 0.5 (wrong), 0.9 (right), 1.0 (right), 0.7 (wrong).
    labels = np.array([0, 0, 1, 2, 2])
    probs = np.array([
        [0.4, 0.3, 0.3],
        [0.25, 0.5, 0.25],
        [0.05, 0.9, 0.05],
        [0.0, 0.0, 1.0],
        [0.7, 0.2, 0.1],
    ])
    return labels, probs


def test_calibration_table_two_bins_exact():
    labels, probs = _calibration_data()
    table = calibration_table(labels, probs, bins=2)
    # Edges [1/3, 2/3, 1]: bin 0 holds 0.4 and 0.5, bin 1 holds 0.9, 1.0 and 0.7.
    assert list(table.columns) == ["confidence", "accuracy", "count"]
    assert table["count"].tolist() == [2, 3]
    assert table["confidence"].tolist() == pytest.approx([0.45, 2.6 / 3])
    assert table["accuracy"].tolist() == pytest.approx([0.5, 2 / 3])
    # ECE = 2/5 * |0.45 - 0.5| + 3/5 * |0.8667 - 0.6667| = 0.02 + 0.12
    assert expected_calibration_error(table) == pytest.approx(0.14)


def test_calibration_table_empty_bins_left_out():
    labels, probs = _calibration_data()
    table = calibration_table(labels[[0, 2, 3]], probs[[0, 2, 3]], bins=4)
    # Edges [1/3, 1/2, 2/3, 5/6, 1]: 0.4 in bin 0; 0.9 and 1.0 in bin 3; bins 1 and 2 are empty.
    assert table["count"].tolist() == [1, 2]
    assert table["confidence"].tolist() == pytest.approx([0.4, 0.95])
    assert table["accuracy"].tolist() == [1.0, 1.0]
    assert expected_calibration_error(table) == pytest.approx(1 / 3 * 0.6 + 2 / 3 * 0.05)


def test_calibration_table_edges():
    # Exactly 1/3 falls in the first bin, exactly 1.0 in the last, an inner edge (0.5) in the upper bin.
    labels = np.array([0, 0, 0])
    probs = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.3, 0.2]])
    table = calibration_table(labels, probs, bins=4)
    assert table["count"].tolist() == [1, 1, 1]
    assert table["confidence"].tolist() == pytest.approx([1 / 3, 0.5, 1.0])


def test_calibration_counts_sum_to_rows():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=200)
    labels = rng.integers(0, 3, size=200)
    table = calibration_table(labels, probs, bins=10)
    assert table["count"].sum() == 200
    assert len(table) <= 10
    assert table["confidence"].is_monotonic_increasing


def test_expected_calibration_error_perfect_is_zero():
    table = pd.DataFrame({"confidence": [0.5, 0.9], "accuracy": [0.5, 0.9], "count": [10, 30]})
    assert expected_calibration_error(table) == 0.0
