"""The blend of the members (arena_pref.ensemble): weights on the simplex, the temperature, and
cross-fitting that scores each fold with a blend fitted on the other folds only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from arena_pref.ensemble import Blend, apply_blend, cross_fitted_blend, fit_blend
from arena_pref.metrics import kaggle_log_loss


def members(n: int = 600, seed: int = 0):
    """Labels, a member that knows them (logits 1.5 toward the truth plus noise) and two that do not."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    informed = softmax(1.5 * np.eye(3)[labels] + rng.normal(0, 1, (n, 3)), axis=1)
    noise = [softmax(rng.normal(0, 1, (n, 3)), axis=1) for _ in range(2)]
    return labels, [noise[0], informed, noise[1]]


def test_apply_blend_is_the_weighted_geometric_mean_tempered():
    p1 = np.array([[0.5, 0.3, 0.2]])
    p2 = np.array([[0.2, 0.2, 0.6]])
    expected = softmax((0.25 * np.log(p1) + 0.75 * np.log(p2)) / 2.0, axis=1)
    np.testing.assert_allclose(apply_blend(Blend(weights=(0.25, 0.75), temperature=2.0), [p1, p2]), expected)
    # One member with weight 1 and T = 1 gives that member back.
    np.testing.assert_allclose(apply_blend(Blend(weights=(1.0, 0.0), temperature=1.0), [p1, p2]), p1)


def test_fit_puts_the_weight_on_the_informed_member():
    labels, probs = members()
    blend = fit_blend(labels, probs, fit_temperature=True)
    assert len(blend.weights) == 3 and abs(sum(blend.weights) - 1.0) < 1e-12
    assert blend.weights[1] > 0.8
    blended = apply_blend(blend, probs)
    assert kaggle_log_loss(labels, blended) <= min(kaggle_log_loss(labels, p) for p in probs) + 1e-9


def test_temperature_is_one_unless_fitted():
    labels, probs = members()
    assert fit_blend(labels, probs, fit_temperature=False).temperature == 1.0
    # Overconfident inputs (logits doubled) need a temperature above 1.
    sharp = [softmax(2 * np.log(p), axis=1) for p in probs]
    assert fit_blend(labels, sharp, fit_temperature=True).temperature > 1.2


def test_cross_fitted_blend_uses_a_blend_fitted_on_the_other_folds():
    labels, probs = members()
    folds = np.arange(len(labels)) % 3
    out = cross_fitted_blend(labels, folds, probs, fit_temperature=True)
    for fold in range(3):
        rows = folds == fold
        blend = fit_blend(labels[~rows], [p[~rows] for p in probs], fit_temperature=True)
        np.testing.assert_allclose(out[rows], apply_blend(blend, [p[rows] for p in probs]))
    # The held-out fold's labels play no part in its own blend.
    changed = labels.copy()
    changed[folds == 0] = (changed[folds == 0] + 1) % 3
    again = cross_fitted_blend(changed, folds, probs, fit_temperature=True)
    np.testing.assert_array_equal(again[folds == 0], out[folds == 0])


def test_a_blend_applied_to_the_wrong_number_of_members_is_an_error():
    with pytest.raises(ValueError, match="blend of 2 members applied to 3"):
        apply_blend(Blend(weights=(0.5, 0.5), temperature=1.0), [np.full((1, 3), 1 / 3)] * 3)
