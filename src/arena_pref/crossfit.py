"""Out-of-fold predictions for the members that train in seconds (gbdt, tfidf): one model per
validation fold, trained on every other row, predicting its fold and the test rows. Also the pieces
both of those scikit-learn members share: the label checks and the (n, 3) probability table.

Rows of the extra training files (fold -2) train every fold's model and are never predicted out of fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .folds import NO_FOLD
from .labels import CLASSES, N_CLASSES, TIE
from .metrics import kaggle_log_loss

KEY_COLUMNS = ["id", "fold", "label"]  # what a member's training table holds besides its inputs


def check_class_labels(labels: np.ndarray) -> None:
    """Labels a classifier can be fitted on: each a class (0, 1 or 2), and not all ties (swapped copies
    turn a lone A or B class into both, but a tie stays a tie)."""
    if not np.isin(labels, CLASSES).all():
        raise ValueError(f"labels must be 0, 1 or 2; got {sorted(set(labels.tolist()) - set(CLASSES))}")
    if (labels == TIE).all():
        raise ValueError("every label is a tie: the classifier needs at least two classes")


def class_probs(classifier, x) -> np.ndarray:
    """(n, 3) probabilities of a fitted scikit-learn classifier; a class absent from its training
    labels gets probability 0."""
    probs = np.zeros((x.shape[0], N_CLASSES), dtype=np.float64)
    if x.shape[0]:
        probs[:, classifier.classes_] = classifier.predict_proba(x)
    return probs


@dataclass
class CrossFit:
    """Out-of-fold probabilities (n, 3), NaN outside the validation folds; log loss per validation
    fold; test probabilities (m, 3) averaged over the fold models (None when nothing was asked of test);
    the fitted model of each validation fold (the stage writes them for the bundle)."""

    oof: np.ndarray
    fold_losses: dict[int, float]
    test: np.ndarray | None
    models: dict[int, Any] = field(default_factory=dict)


def cross_fit(rows: pd.DataFrame, valid_folds: list[int],
              fit: Callable[[np.ndarray], Any],
              predict: Callable[[Any, np.ndarray], np.ndarray],
              predict_test: Callable[[Any], np.ndarray] | None = None, desc: str = "folds") -> CrossFit:
    """`rows` has columns fold and label. For each fold in `valid_folds`:
    model = fit(positions of the training rows); oof[fold rows] = predict(model, positions of the fold
    rows); predict_test(model), when given, is averaged over the folds. Positions index `rows`.
    `desc` labels the progress bar (one step per fold)."""
    folds = rows["fold"].to_numpy()
    labels = rows["label"].to_numpy(dtype=np.int64)
    if (folds == NO_FOLD).any():
        raise ValueError(f"{int((folds == NO_FOLD).sum())} rows have no fold (fold -1): assign folds first")
    missing = sorted(set(valid_folds) - set(folds.tolist()))
    if missing or not valid_folds:
        raise ValueError(f"validation folds {valid_folds}: folds {missing} have no rows")
    oof = np.full((len(rows), N_CLASSES), np.nan)
    losses, test_probs, models = {}, [], {}
    for fold in tqdm(valid_folds, desc=desc, unit="fold"):
        valid = folds == fold
        model = models[fold] = fit(np.flatnonzero(~valid))
        oof[valid] = predict(model, np.flatnonzero(valid))
        losses[fold] = kaggle_log_loss(labels[valid], oof[valid])
        if predict_test is not None:
            test_probs.append(predict_test(model))
    return CrossFit(oof=oof, fold_losses=losses, test=np.mean(test_probs, axis=0) if test_probs else None,
                    models=models)
