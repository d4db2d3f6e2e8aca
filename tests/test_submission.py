"""Kaggle submission building and checks (arena_pref.submission)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arena_pref.submission import SUM_TOLERANCE, SubmissionError, build_submission

COLUMNS = ["id", "winner_model_a", "winner_model_b", "winner_tie"]
PROBS = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])


def test_build_submission_follows_expected_order():
    out = build_submission(["b", "a", "c"], PROBS, expected_ids=["a", "b", "c"])
    expected = pd.DataFrame({
        "id": ["a", "b", "c"],
        "winner_model_a": [0.6, 0.2, 0.1],
        "winner_model_b": [0.3, 0.5, 0.1],
        "winner_tie": [0.1, 0.3, 0.8],
    })
    pd.testing.assert_frame_equal(out, expected)
    assert list(out.columns) == COLUMNS
    assert isinstance(out.index, pd.RangeIndex)


def test_build_submission_same_order_is_unchanged():
    out = build_submission(["x", "y", "z"], PROBS, expected_ids=["x", "y", "z"])
    assert out["id"].tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(out[COLUMNS[1:]].to_numpy(), PROBS)


def test_build_submission_numeric_prediction_ids_compared_as_strings():
    out = build_submission([136060, 211333], [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]],
                           expected_ids=["211333", "136060"])
    assert out["id"].tolist() == ["211333", "136060"]
    assert out["winner_tie"].tolist() == [0.7, 0.25]


def test_build_submission_round_trips_through_csv(tmp_path):
    out = build_submission(["b", "a", "c"], PROBS, expected_ids=["a", "b", "c"])
    out.to_csv(tmp_path / "submission.csv", index=False)
    back = pd.read_csv(tmp_path / "submission.csv", dtype={"id": str})
    assert list(back.columns) == COLUMNS
    np.testing.assert_allclose(back[COLUMNS[1:]].sum(axis=1), 1.0)


def test_build_submission_missing_id():
    with pytest.raises(SubmissionError) as err:
        build_submission(["a", "b"], PROBS[:2], expected_ids=["a", "b", "c"])
    assert str(err.value) == ("prediction ids differ from the test file: 1 missing (e.g. ['c']), "
                              "0 extra (e.g. [])")


def test_build_submission_extra_id():
    with pytest.raises(SubmissionError) as err:
        build_submission(["a", "b", "zz"], PROBS, expected_ids=["a", "b"])
    assert str(err.value) == ("prediction ids differ from the test file: 0 missing (e.g. []), "
                              "1 extra (e.g. ['zz'])")


def test_build_submission_missing_and_extra_listed_sorted_and_capped():
    ids = ["e1", "e2", "e3", "e4"]
    with pytest.raises(SubmissionError, match=r"4 missing \(e\.g\. \['m1', 'm2', 'm3'\]\), "
                                              r"4 extra \(e\.g\. \['e1', 'e2', 'e3'\]\)"):
        build_submission(ids, np.full((4, 3), 1 / 3), expected_ids=["m4", "m3", "m2", "m1"])


def test_build_submission_repeated_id():
    with pytest.raises(SubmissionError, match="predictions hold repeated ids"):
        build_submission(["a", "a", "b"], PROBS, expected_ids=["a", "b"])


def test_build_submission_repeated_id_after_string_conversion():
    with pytest.raises(SubmissionError, match="repeated ids"):
        build_submission([1, "1", 2], PROBS, expected_ids=["1", "2"])


def test_submission_error_is_a_value_error():
    assert issubclass(SubmissionError, ValueError)


@pytest.mark.parametrize("bad_row", [
    [np.nan, 0.5, 0.5],
    [np.inf, 0.0, 0.0],
    [-0.1, 0.6, 0.5],        # sums to 1 but negative
    [0.5, 0.5, 0.5],         # sums to 1.5
    [0.2, 0.2, 0.2],         # sums to 0.6
    [0.0, 0.0, 0.0],
])
def test_build_submission_refuses_bad_probability_rows(bad_row):
    probs = PROBS.copy()
    probs[1] = bad_row
    with pytest.raises(SubmissionError) as err:
        build_submission(["a", "b", "c"], probs, expected_ids=["a", "b", "c"])
    assert str(err.value) == (f"1 rows are not finite probabilities summing to 1, "
                              f"e.g. id b: {probs[1].tolist()}")


def test_build_submission_counts_all_bad_rows_names_first():
    probs = np.array([[0.2, 0.5, 0.3], [0.5, 0.5, 0.5], [np.nan, 0.0, 1.0]])
    with pytest.raises(SubmissionError, match=r"^2 rows are not finite probabilities summing to 1, e\.g\. id b:"):
        build_submission(["a", "b", "c"], probs, expected_ids=["a", "b", "c"])


def test_build_submission_sum_tolerance():
    ok = np.array([[0.5, 0.5 + SUM_TOLERANCE / 2, 0.0]])
    assert build_submission(["a"], ok, ["a"])["winner_model_b"].tolist() == [0.5 + SUM_TOLERANCE / 2]
    with pytest.raises(SubmissionError):
        build_submission(["a"], np.array([[0.5, 0.5 + SUM_TOLERANCE * 3, 0.0]]), ["a"])


@pytest.mark.parametrize("shape", [(3, 2), (3, 4), (2, 3), (4, 3), (3,), (1, 3, 3)])
def test_build_submission_wrong_shape(shape):
    probs = np.full(shape, 1.0 / shape[-1])
    with pytest.raises(SubmissionError) as err:
        build_submission(["a", "b", "c"], probs, expected_ids=["a", "b", "c"])
    assert str(err.value) == f"expected probabilities of shape (3, 3), got {shape}"
