"""Probability tables keyed by id: out-of-fold and test predictions of each model, as files.

Columns: id, then optional extras (fold, label), then winner_model_a, winner_model_b, winner_tie.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .crossfit import CrossFit
from .data import LABEL_NAMES
from .files import write_json
from .metrics import fold_spread, score


def probs_frame(ids, probs: np.ndarray, **extra_columns) -> pd.DataFrame:
    frame = pd.DataFrame({"id": [str(i) for i in ids], **extra_columns})
    frame[list(LABEL_NAMES)] = np.asarray(probs, dtype=np.float64)
    return frame


def write_probs(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 17 significant digits: a float64 written and read back is the same number.
    frame.to_csv(path, index=False, float_format="%.17g")


def read_probs(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in ("id", *LABEL_NAMES) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return frame


def probs_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(LABEL_NAMES)].to_numpy(dtype=np.float64)


def write_cross_fit(member: str, fit: CrossFit, rows: pd.DataFrame, valid_folds: list[int], test_ids,
                    metrics_path: str | Path, oof_path: str | Path, test_path: str | Path) -> dict:
    """Write a cross-fitted member's outputs: its scores over the validated rows (pooled and per fold)
    as metrics JSON, its out-of-fold probabilities (id, fold, label) and its test probabilities, and
    log the scores. `rows` (columns id, fold, label) is in the order of `fit.oof`. Returns the metrics."""
    validated = rows["fold"].isin(valid_folds).to_numpy()
    labels, folds = rows["label"].to_numpy()[validated], rows["fold"].to_numpy()[validated]
    oof = fit.oof[validated]
    metrics = {"rows": int(validated.sum()), "folds": list(valid_folds)} | score(labels, oof)
    metrics["cv"] = fold_spread(labels, oof, folds)
    write_json(metrics, metrics_path)
    write_probs(probs_frame(rows["id"][validated], oof, fold=folds, label=labels), oof_path)
    write_probs(probs_frame(test_ids, fit.test), test_path)
    logging.getLogger(member).info(
        "folds %s: log loss %.4f (fold mean %.4f +- %.4f), accuracy %.4f", list(valid_folds), metrics["log_loss"],
        metrics["cv"]["log_loss_mean"], metrics["cv"]["log_loss_std"], metrics["accuracy"])
    return metrics
