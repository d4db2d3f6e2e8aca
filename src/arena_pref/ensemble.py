"""Blend two models' probabilities: a weighted geometric mean, then temperature scaling.

    p = softmax((w * log p_1 + (1 - w) * log p_2) / T)

w in [0, 1] and T > 0 are fitted by minimising log loss on out-of-fold predictions only. Reported
scores are cross-fitted: the blend applied to fold k was fitted on the other folds' rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from .metrics import kaggle_log_loss

# Probabilities are floored before the log so that a model's hard 0 cannot dominate the blend.
FLOOR = 1e-7
TEMPERATURE_BOUNDS = (0.25, 4.0)


@dataclass(frozen=True)
class Blend:
    weight: float  # of the first model
    temperature: float


def apply_blend(blend: Blend, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Blended probabilities (n, 3) of two (n, 3) probability arrays."""
    logits = blend.weight * np.log(np.maximum(first, FLOOR)) + (1 - blend.weight) * np.log(np.maximum(second, FLOOR))
    return np.exp(log_softmax(logits / blend.temperature, axis=1))


def fit_blend(labels: np.ndarray, first: np.ndarray, second: np.ndarray, fit_temperature: bool) -> Blend:
    """The weight (and temperature, if asked) minimising the log loss of the blend on these rows."""
    def loss(x: np.ndarray) -> float:
        return kaggle_log_loss(labels, apply_blend(Blend(x[0], x[1] if fit_temperature else 1.0), first, second))

    bounds = [(0.0, 1.0), TEMPERATURE_BOUNDS if fit_temperature else (1.0, 1.0)]
    best = minimize(loss, x0=np.array([0.5, 1.0]), bounds=bounds, method="L-BFGS-B")
    return Blend(weight=float(best.x[0]), temperature=float(best.x[1]))


def cross_fitted_blend(labels: np.ndarray, folds: np.ndarray, first: np.ndarray, second: np.ndarray,
                       fit_temperature: bool) -> np.ndarray:
    """Blended probabilities where each fold's rows use a blend fitted on the other folds' rows.
    With a single fold there are no other rows: the blend is fitted on that fold itself (optimistic)."""
    out = np.zeros_like(first)
    fold_values = np.unique(folds)
    for fold in fold_values:
        rows = folds == fold
        fit_rows = ~rows if len(fold_values) > 1 else rows
        blend = fit_blend(labels[fit_rows], first[fit_rows], second[fit_rows], fit_temperature)
        out[rows] = apply_blend(blend, first[rows], second[rows])
    return out
