"""The bias report's inputs: probability tables keyed by id, checked and aligned to the labelled rows.

A probability file (a CSV read by csvfile.read_table: columns id, winner_model_a, winner_model_b,
winner_tie, and optionally fold and label; other columns are ignored) must give each of its ids once,
probabilities in [0, 1] summing to 1, ids that the labelled rows have, and, when it has a label
column, the same label as the labelled rows.
Anything else stops with a DataError naming the file, the row (data rows from 1) and the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .csvfile import read_table, require_columns
from .data import LABEL_NAMES
from .errors import DataError
from .predictions import probs_of

SUM_TOLERANCE = 1e-4  # rows written with 6 decimals (a scorer's CSV) sum to 1 within a few 1e-6
OPTIONAL_INT_COLUMNS = ("fold", "label")


def _number(path: str | Path, cell: str, row: int, column: str, kind: type) -> float | int:
    try:
        return kind(cell.strip())
    except ValueError:
        raise DataError(path, f"expected {'an integer' if kind is int else 'a number'}, got {cell!r}", row,
                        column) from None


def has_rows(path: str | Path) -> bool:
    """Whether the CSV at `path` has a data row (a switched-off member's placeholder has only a header)."""
    return bool(read_table(path).rows)


def read_probability_table(path: str | Path) -> pd.DataFrame:
    """A probability file as a frame: id (str), the three probabilities (float64), and fold and label
    (int) when the file has them. Cells that are not numbers stop with a DataError (file, row, column)."""
    table = read_table(path)
    require_columns(path, table.header, ("id", *LABEL_NAMES))
    columns = ["id", *LABEL_NAMES, *(c for c in OPTIONAL_INT_COLUMNS if c in table.header)]
    where = {name: table.header.index(name) for name in columns}
    records = []
    for row, cells in enumerate(table.rows, start=1):
        record = {"id": cells[where["id"]].strip()}
        if not record["id"]:
            raise DataError(path, "empty id", row, "id")
        for name in columns[1:]:
            kind = int if name in OPTIONAL_INT_COLUMNS else float
            record[name] = _number(path, cells[where[name]], row, name, kind)
        records.append(record)
    if not records:
        raise DataError(path, "has a header but no rows")
    return pd.DataFrame.from_records(records, columns=columns)


def checked_probs(path: str | Path, labelled: pd.DataFrame) -> pd.DataFrame:
    """The probability file at `path` (`read_probability_table`), checked against `labelled` (columns
    id, label) as the module docstring says. Row order of the file."""
    frame = read_probability_table(path)
    duplicated = frame["id"].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise DataError(path, f"duplicate id {frame['id'].iloc[row]!r}", row + 1, "id")
    probs = probs_of(frame)
    bad = ~np.isfinite(probs) | (probs < 0) | (probs > 1)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(path, f"probability must be in [0, 1], got {probs[row, column]!r}", row + 1,
                        LABEL_NAMES[column])
    off = np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(path, f"probabilities sum to {probs[row].sum():.6g}, not 1", row + 1, ", ".join(LABEL_NAMES))
    labels = labelled.set_index("id")["label"]
    unknown = ~frame["id"].isin(labels.index)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(path, f"id {frame['id'].iloc[row]!r} is not among the labelled rows "
                              f"({int(unknown.sum())} such ids)", row + 1, "id")
    if "label" in frame.columns:
        differs = frame["label"].to_numpy() != labels.loc[frame["id"]].to_numpy()
        if differs.any():
            row = int(np.flatnonzero(differs)[0])
            raise DataError(path, f"label {frame['label'].iloc[row]} but the labelled rows say "
                                  f"{labels.loc[frame['id'].iloc[row]]}", row + 1, "label")
    return frame


def aligned_probs(frame: pd.DataFrame, ids: pd.Series, path: str | Path) -> np.ndarray:
    """(n, 3) probabilities of `frame` in the order of `ids`; `frame` must hold exactly those ids."""
    if len(frame) != len(ids) or set(frame["id"]) != set(ids):
        missing = sorted(set(ids) - set(frame["id"]))
        raise DataError(path, f"{len(frame)} rows for the report's {len(ids)} ids"
                              + (f"; missing e.g. {missing[:3]}" if missing else "; extra ids"), column="id")
    return probs_of(frame.set_index("id").loc[ids].reset_index())
