"""Scores of probability predictions against labels, as plain numbers and plot tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from .labels import CLASSES, LABEL_COLUMNS, N_CLASSES


def row_log_losses(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-row log loss as Kaggle scores it: rows renormalised, then clipped to [eps, 1 - eps] with eps
    the float64 machine epsilon (sklearn's former eps="auto"). Shape (n,)."""
    # float64 first: float32's eps (1.2e-7) would cap a confident miss at 15.9 instead of 36.0.
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    eps = np.finfo(np.float64).eps
    picked = np.clip(probs[np.arange(len(labels)), np.asarray(labels)], eps, 1 - eps)
    return -np.log(picked)


def kaggle_log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean of `row_log_losses`: the competition metric."""
    return float(row_log_losses(labels, probs).mean())


def score(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Log loss, accuracy and per-class precision / recall / F1 / mean predicted probability."""
    predicted = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=list(CLASSES),
                                                                     zero_division=0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i]), "mean_prob": float(probs[:, i].mean())}
        for i, name in enumerate(LABEL_COLUMNS)
    }
    return {"log_loss": kaggle_log_loss(labels, probs), "accuracy": float((predicted == labels).mean()),
            "per_class": per_class}


def flip_rate(forward: np.ndarray, swapped_back: np.ndarray) -> float:
    """Share of pairs whose predicted class changes when A and B are exchanged (0 = no position bias)."""
    return float((forward.argmax(axis=1) != swapped_back.argmax(axis=1)).mean())


def confusion_rows(labels: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """One row per pair (actual, predicted class names): the input of DVC's confusion template."""
    names = np.asarray(LABEL_COLUMNS)
    return pd.DataFrame({"actual": names[labels], "predicted": names[probs.argmax(axis=1)]})


def calibration_table(labels: np.ndarray, probs: np.ndarray, bins: int) -> pd.DataFrame:
    """Reliability curve of the top prediction: per confidence bin, mean confidence vs accuracy.

    Bins are equal-width on [1/N_CLASSES, 1] (an argmax is never below 1/N_CLASSES); empty bins are left out.
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(1.0 / N_CLASSES, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = [{"confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean()),
             "count": int((which == b).sum())} for b in range(bins) if (which == b).any()]
    return pd.DataFrame(rows, columns=["confidence", "accuracy", "count"])


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Count-weighted mean |confidence - accuracy| over the bins of `calibration_table`."""
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["confidence"] - table["accuracy"]).abs()).sum())


def fold_spread(labels: np.ndarray, probs: np.ndarray, folds: np.ndarray) -> dict:
    """Log loss and accuracy of each fold, and their mean and standard deviation across folds."""
    per_fold = {}
    for fold in sorted(set(folds.tolist())):
        rows = folds == fold
        per_fold[str(fold)] = {"log_loss": kaggle_log_loss(labels[rows], probs[rows]),
                               "accuracy": float((probs[rows].argmax(axis=1) == labels[rows]).mean()),
                               "rows": int(rows.sum())}
    losses = np.array([f["log_loss"] for f in per_fold.values()])
    accuracies = np.array([f["accuracy"] for f in per_fold.values()])
    return {"per_fold": per_fold, "log_loss_mean": float(losses.mean()), "log_loss_std": float(losses.std()),
            "accuracy_mean": float(accuracies.mean()), "accuracy_std": float(accuracies.std())}
