"""The teacher prior (model.teacher_prior): each side's statistics carry the teacher's log-probabilities,
exactly, swapped with their side, and the stats prior can express the teacher itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from arena_pref.backbone import pretrained_siamese
from arena_pref.model import StatsPrior
from arena_pref.params import load_params
from arena_pref.side_stats import SIDE_STATS
from arena_pref.soft_targets import VALID_FOLD, Teacher, with_fold_teacher_stats
from arena_pref.swap import swap_probs
from arena_pref.teacher_prior import MIN_PROB, TEACHER_STATS, with_teacher_stats
from conftest import REPO_ROOT

PROBS = np.array([[0.5, 0.2, 0.3], [0.1, 0.7, 0.2]])


def featurized(a_stats, b_stats, swapped=(False, False)) -> pd.DataFrame:
    return pd.DataFrame({"id": ["p", "q"], "fold": [1, 2], "label": [0, 1], "swapped": list(swapped),
                         "a_stats": [np.asarray(s, dtype=np.float32) for s in a_stats],
                         "b_stats": [np.asarray(s, dtype=np.float32) for s in b_stats]})


def test_each_side_gets_its_win_and_the_tie_log_probability():
    pairs = featurized([[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]])
    out = with_teacher_stats(pairs, PROBS)
    expected_a = np.array([[0.1, 0.2, np.log(0.5), np.log(0.3)], [0.3, 0.4, np.log(0.1), np.log(0.2)]], np.float32)
    expected_b = np.array([[0.5, 0.6, np.log(0.2), np.log(0.3)], [0.7, 0.8, np.log(0.7), np.log(0.2)]], np.float32)
    np.testing.assert_array_equal(np.stack(out["a_stats"]), expected_a)
    np.testing.assert_array_equal(np.stack(out["b_stats"]), expected_b)
    assert np.stack(out["a_stats"]).dtype == np.float32
    np.testing.assert_array_equal(np.stack(pairs["a_stats"]), np.float32([[0.1, 0.2], [0.3, 0.4]]))  # input unchanged
    # A zero probability is clipped, not an infinite input.
    clipped = with_teacher_stats(pairs, np.array([[1.0, 0.0, 0.0], [0.1, 0.7, 0.2]]))
    assert clipped["b_stats"][0][2] == np.float32(np.log(MIN_PROB))


def test_missing_teacher_probabilities_are_refused():
    pairs = featurized([[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]])
    with pytest.raises(ValueError, match=r"teacher probabilities for 2 pairs \(1 missing\)"):
        with_teacher_stats(pairs, np.array([[0.5, 0.2, 0.3], [np.nan, np.nan, np.nan]]))
    with pytest.raises(ValueError, match="not for each of the 2 pairs"):
        with_teacher_stats(pairs, PROBS[:1])


def test_a_swapped_copy_carries_the_teacher_with_its_sides():
    teacher = Teacher(pd.DataFrame({VALID_FOLD: [0, 0], "id": ["p", "q"], "winner_model_a": PROBS[:, 0],
                                    "winner_model_b": PROBS[:, 1], "winner_tie": PROBS[:, 2]}), "t.parquet", None)
    a, b = [[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]
    original = with_fold_teacher_stats(featurized(a, b), teacher, 0)
    copy = with_fold_teacher_stats(featurized(b, a, swapped=(True, True)), teacher, 0)
    np.testing.assert_array_equal(np.stack(copy["a_stats"]), np.stack(original["b_stats"]))
    np.testing.assert_array_equal(np.stack(copy["b_stats"]), np.stack(original["a_stats"]))


def test_the_stats_prior_can_express_the_teacher_exactly():
    """The weights the module docstring names turn the teacher entries back into the teacher's
    probabilities, for a pair and (swapped) for its copy: the prior starts from the fast members."""
    pairs = with_teacher_stats(featurized([[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]), PROBS)
    k = len(SIDE_STATS) + len(TEACHER_STATS)
    prior = StatsPrior(k)
    win, tie = torch.zeros(3 * k), torch.zeros(2 * k)
    win[len(SIDE_STATS)] = win[2 * k + len(SIDE_STATS)] = 0.5  # d and s of log p(side wins)
    tie[k + len(SIDE_STATS) + 1] = 0.5  # s of log p(tie)
    with torch.no_grad():
        prior.win.weight.copy_(win[None])
        prior.tie.weight.copy_(tie[None])
    a, b = (torch.as_tensor(np.stack(pairs[side]), dtype=torch.float64) for side in ("a_stats", "b_stats"))
    prior = prior.double()
    np.testing.assert_allclose(torch.softmax(prior(a, b), -1).numpy(), PROBS, rtol=1e-6)
    np.testing.assert_allclose(torch.softmax(prior(b, a), -1).numpy(), swap_probs(PROBS), rtol=1e-6)


def test_the_model_reads_the_teacher_entries_after_the_side_statistics(tiny_backbone_dir):
    p = load_params(REPO_ROOT / "params.yaml")
    m = dataclasses.replace(p.model, backbone=str(tiny_backbone_dir), teacher_prior=True)
    assert pretrained_siamese(m, seed=0).n_side_stats == len(SIDE_STATS) + len(TEACHER_STATS)
    assert pretrained_siamese(dataclasses.replace(m, teacher_prior=False), seed=0).n_side_stats == len(SIDE_STATS)
    assert pretrained_siamese(dataclasses.replace(m, dropout_samples=4), seed=0).dropout_samples == 4
