"""Blend the members' probabilities: a weighted geometric mean, then temperature scaling.

    p = softmax((sum_k w_k log p_k) / T),   w_k >= 0, sum_k w_k = 1

The weights and T > 0 are fitted by minimising log loss on out-of-fold predictions only. Reported
scores are cross-fitted: the blend applied to fold k was fitted on the other folds' rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from .metrics import kaggle_log_loss

# Probabilities are floored before the log so that a model's hard 0 cannot dominate the blend.
FLOOR = 1e-7
TEMPERATURE_BOUNDS = (0.25, 4.0)


@dataclass(frozen=True)
class Blend:
    weights: tuple[float, ...]  # one per member, in the members' order; they sum to 1
    temperature: float


def apply_blend(blend: Blend, members: list[np.ndarray]) -> np.ndarray:
    """Blended probabilities (n, 3) of the members' (n, 3) probability arrays."""
    if len(members) != len(blend.weights):
        raise ValueError(f"blend of {len(blend.weights)} members applied to {len(members)}")
    logits = sum(w * np.log(np.maximum(p, FLOOR)) for w, p in zip(blend.weights, members))
    return np.exp(log_softmax(logits / blend.temperature, axis=1))


def _blend_of(x: np.ndarray, fit_temperature: bool) -> Blend:
    # Weights are a softmax of free parameters (so they stay on the simplex without constraints);
    # the last parameter is log T.
    return Blend(weights=tuple(float(w) for w in softmax(x[:-1])),
                 temperature=float(np.exp(x[-1])) if fit_temperature else 1.0)


def fit_blend(labels: np.ndarray, members: list[np.ndarray], fit_temperature: bool) -> Blend:
    """The weights (and temperature, if asked) minimising the log loss of the blend on these rows."""
    if not members:
        raise ValueError("no members to blend")

    def loss(x: np.ndarray) -> float:
        return kaggle_log_loss(labels, apply_blend(_blend_of(x, fit_temperature), members))

    log_t = np.log(TEMPERATURE_BOUNDS)
    bounds = [(-20.0, 20.0)] * len(members) + [tuple(log_t) if fit_temperature else (0.0, 0.0)]
    best = minimize(loss, x0=np.zeros(len(members) + 1), bounds=bounds, method="L-BFGS-B")
    return _blend_of(best.x, fit_temperature)


def cross_fitted_blend(labels: np.ndarray, folds: np.ndarray, members: list[np.ndarray],
                       fit_temperature: bool) -> np.ndarray:
    """Blended probabilities where each fold's rows use a blend fitted on the other folds' rows.
    With a single fold there are no other rows: the blend is fitted on that fold itself (optimistic)."""
    out = np.zeros_like(members[0])
    fold_values = np.unique(folds)
    for fold in fold_values:
        rows = folds == fold
        fit_rows = ~rows if len(fold_values) > 1 else rows
        blend = fit_blend(labels[fit_rows], [m[fit_rows] for m in members], fit_temperature)
        out[rows] = apply_blend(blend, [m[rows] for m in members])
    return out
