"""Probability tables keyed by id: out-of-fold and test predictions of each model, as files.

Columns: id, then optional extras (fold, label), then winner_model_a, winner_model_b, winner_tie.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .crossfit import CrossFit
from .csvfile import read_table, require_columns
from .errors import DataError
from .files import write_json
from .labels import LABEL_COLUMNS
from .metrics import fold_spread, score


def probs_frame(ids, probs: np.ndarray, **extra_columns) -> pd.DataFrame:
    frame = pd.DataFrame({"id": [str(i) for i in ids], **extra_columns})
    frame[list(LABEL_COLUMNS)] = np.asarray(probs, dtype=np.float64)
    return frame


def write_probs(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 17 significant digits: a float64 written and read back is the same number.
    frame.to_csv(path, index=False, float_format="%.17g")


INT_COLUMNS = ("fold", "label")


def read_probs(path: str | Path) -> pd.DataFrame:
    """A probability table written by write_probs (plain or compressed), ids exactly as written: an id
    such as "NA", "null" or "#N/A" stays that text. A cell that is not what its column holds (a
    probability in [0, 1], an integer fold or label), an empty or repeated id, is a DataError naming the
    file, row and column."""
    table = read_table(path)
    require_columns(path, table.header, ("id", *LABEL_COLUMNS))
    if not table.rows:
        raise DataError(path, "has a header but no rows")
    frame = pd.DataFrame(table.rows, columns=table.header, dtype=object)
    seen: dict[str, int] = {}
    for number, row_id in enumerate(frame["id"], start=1):
        if not row_id:
            raise DataError(path, "empty id", number, "id")
        if row_id in seen:
            raise DataError(path, f"repeated id {row_id!r} (first at row {seen[row_id]})", number, "id")
        seen[row_id] = number
    for column in frame.columns:
        if column == "id":
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if column in LABEL_COLUMNS:
            bad = ~numbers.between(0.0, 1.0)  # NaN (not a number, "nan", "") is not between either
            expected = "a probability in [0, 1]"
        elif column in INT_COLUMNS:
            bad = numbers.isna() | (numbers != numbers.round())
            expected = "an integer"
        else:  # a column some other writer added: numbers when every cell is one, else text
            frame[column] = numbers if not numbers.isna().any() else frame[column].astype(str)
            continue
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"expected {expected}, got {frame[column].iloc[first]!r}", first + 1, column)
        frame[column] = numbers.astype(np.int64) if column in INT_COLUMNS else numbers.astype(np.float64)
    frame["id"] = frame["id"].astype(str)
    return frame


def probs_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(LABEL_COLUMNS)].to_numpy(dtype=np.float64)


def align_to(frame: pd.DataFrame, ids: pd.Series, path: str | Path) -> pd.DataFrame:
    """`frame` (read from `path`) with its rows in the order of `ids`. It must hold exactly those ids:
    a different set is a DataError naming the file, never a silent inner join."""
    if len(frame) != len(ids) or set(frame["id"]) != set(ids):
        missing = sorted(set(ids) - set(frame["id"]))
        raise DataError(path, f"{len(frame)} rows for the {len(ids)} expected ids"
                              + (f"; missing e.g. {missing[:3]}" if missing else "; extra ids"), column="id")
    return frame.set_index("id").loc[ids].reset_index()


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
