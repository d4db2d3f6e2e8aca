"""Read Kaggle-schema CSVs into clean rows, repair what can be repaired, and assign folds.

Every row that goes in comes out, or the read stops with a `DataError` that names the file, the row
and the column. Repairs (null turns, true/false/number turns, lone surrogates, NUL bytes, uneven turn
counts) are counted in a `RepairCounts` so the data report shows them.

Clean rows are a DataFrame with columns:
    id (str), prompt, response_a, response_b (list[str], one element per turn, all the same length),
    label (int: 0 = A wins, 1 = B wins, 2 = tie, -1 = unknown), fold (int, -1 = not assigned).
"""

from __future__ import annotations

import csv
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from .folds import EXTRA_FOLD, NO_FOLD

TEXT_COLUMNS = ("prompt", "response_a", "response_b")
LABEL_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")
TEST_COLUMNS = ("id",) + TEXT_COLUMNS
TRAIN_COLUMNS = TEST_COLUMNS + LABEL_COLUMNS
# Columns Kaggle ships that the model does not use; accepted and ignored without comment.
KNOWN_UNUSED_COLUMNS = ("model_a", "model_b")
LABEL_NAMES = ("winner_model_a", "winner_model_b", "winner_tie")
NO_LABEL = -1


class DataError(ValueError):
    """Input that cannot be read without losing or inventing data."""

    def __init__(self, file: str | Path, message: str, row: int | None = None, column: str | None = None):
        where = str(file)
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.column = str(file), row, column


@dataclass
class RepairCounts:
    """How many cells or turns each repair touched (for the data report)."""

    null_turns: int = 0
    scalar_turns: int = 0
    lone_surrogates: int = 0
    nul_bytes: int = 0
    padded_turns: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "null_turns": self.null_turns,
            "scalar_turns": self.scalar_turns,
            "lone_surrogates": self.lone_surrogates,
            "nul_bytes": self.nul_bytes,
            "padded_turns": self.padded_turns,
            "ignored_columns": list(self.ignored_columns),
        }


def repair_text(text: str, counts: RepairCounts) -> str:
    """Return `text` encodable as UTF-8: lone UTF-16 surrogates become U+FFFD, NUL bytes are removed.

    A valid surrogate *pair* (as `json.loads` produces from "\\ud83d\\ude00") is joined into its
    character, not replaced.
    """
    if "\x00" in text:
        counts.nul_bytes += 1
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        counts.lone_surrogates += 1
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class _JsonNumber(str):
    """A JSON number kept as the text the file wrote (json.loads hook), so "1.50" stays "1.50"."""


def parse_turns(cell: str, counts: RepairCounts) -> list[str]:
    """Parse one JSON-list cell (`["Hi", null]`) into a list of strings; `null` turns become "".

    A turn written as a JSON true, false or number (PandaLM's converted test set answers "true" as
    `[true]`) becomes the text the file wrote for it ("true", "42", "1.50"): an answer that was that word
    or number, which a converter decoded one level too far. Lists and objects inside a turn are refused.

    Raises ValueError (with the reason) for anything that is not a non-empty JSON list of such turns.
    """
    try:
        # strict=False: a raw control character inside a string (a NUL byte or tab written unescaped
        # by some exporter) is text to keep or repair, not a reason to refuse the row.
        value = json.loads(cell, strict=False, parse_int=_JsonNumber, parse_float=_JsonNumber,
                           parse_constant=_JsonNumber)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg} at char {err.pos}); expected a list like [\"text\"]") from None
    if not isinstance(value, list):
        kind = "number" if isinstance(value, _JsonNumber) else type(value).__name__
        raise ValueError(f"expected a JSON list of strings, got a JSON {kind}")
    if not value:
        raise ValueError("empty JSON list: a conversation needs at least one turn")
    turns = []
    for i, turn in enumerate(value):
        if turn is None:
            counts.null_turns += 1
            turns.append("")
        elif isinstance(turn, (bool, _JsonNumber)):
            counts.scalar_turns += 1
            turns.append(json.dumps(turn) if isinstance(turn, bool) else str(turn))
        elif isinstance(turn, str):
            turns.append(repair_text(turn, counts))
        else:
            raise ValueError(f"turn {i} is a JSON {type(turn).__name__}, expected a string, null, true, false "
                             "or a number")
    return turns


def _csv_records(f):
    """csv records of an open file, blank lines skipped as pandas skips them (so numbers agree)."""
    return (record for record in csv.reader(f) if record)


def _delimiter_hint(header: list[str]) -> str | None:
    """A hint when the header is one column holding another separator, else None."""
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
        return "the header is one column: is the file comma-separated?"
    return None


def _first_long_row(path: Path) -> tuple[list[str], int | None]:
    """The header and the number (from 1) of the first data row with more fields than it (or None).

    Only called once pandas has refused the file: its messages count blank lines and the header, so
    they do not give the row number that the other errors use.
    """
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # answers of a megabyte exceed csv's default 128 KiB per field
    header: list[str] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            records = _csv_records(f)
            header = next(records, [])
            for number, record in enumerate(records, start=1):
                if len(record) > len(header):
                    return header, number
    except csv.Error:
        pass
    finally:
        csv.field_size_limit(limit)
    return header, None


def _read_raw_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    try:
        # dtype=str and keep_default_na=False: read every cell verbatim, so "null", "NA" and ids with
        # leading zeros survive; encoding utf-8-sig strips a BOM that Excel exports add.
        # index_col=False: when the first data row has more fields than the header, pandas would
        # otherwise make its first field the index and shift every cell one column left; with
        # index_col=False it drops the extra field with a ParserWarning instead, made an error here.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", index_col=False)
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 (byte {err.start}: {err.reason}); re-save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, csv.Error) as err:
        header, row = _first_long_row(path)
        if row is not None:
            # A semicolon- or tab-separated file lands here when its cells hold commas.
            reason = _delimiter_hint(header) or "an unquoted comma or an unclosed quote?"
            raise DataError(path, f"more fields than the header ({reason})", row) from None
        raise DataError(path, f"not a readable CSV: {err}") from None
    except pd.errors.EmptyDataError:
        raise DataError(path, "file is empty") from None
    return frame


def _check_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...], optional: tuple[str, ...],
                   counts: RepairCounts) -> None:
    columns = list(frame.columns)
    missing = [c for c in required if c not in columns]
    if missing:
        hint = _delimiter_hint(columns)
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found {columns}"
                        + (f" ({hint})" if hint else ""))
    # pandas renames a repeated header to "name.1", so look at the header line as written.
    # Blank lines before the header are skipped, as pandas skips them.
    with open(path, encoding="utf-8-sig", newline="") as f:
        header = next(_csv_records(f), [])
    duplicated = [c for c, n in Counter(header).items() if n > 1]
    if duplicated:
        raise DataError(path, f"duplicated column(s) {', '.join(duplicated)}: which one holds the data?")
    counts.ignored_columns = [c for c in columns if c not in required and c not in optional]


def _parse_label(path: Path, row_number: int, row: pd.Series) -> int:
    values = []
    for column in LABEL_COLUMNS:
        cell = row[column].strip()
        if cell in ("0", "1", "0.0", "1.0"):
            values.append(int(float(cell)))
        else:
            raise DataError(path, f"label must be 0 or 1, got {row[column]!r}", row_number, column)
    if sum(values) != 1:
        raise DataError(path, f"labels must be one-hot (exactly one 1), got {values}", row_number,
                        ", ".join(LABEL_COLUMNS))
    return values.index(1)


def _even_turns(turns: dict[str, list[str]], counts: RepairCounts) -> dict[str, list[str]]:
    """Pad the shorter conversations with empty turns so prompt and both answers align turn by turn."""
    n = max(len(t) for t in turns.values())
    for column, values in turns.items():
        if len(values) < n:
            counts.padded_turns += n - len(values)
            turns[column] = values + [""] * (n - len(values))
    return turns


def read_rows(path: str | Path, labelled: bool) -> tuple[pd.DataFrame, RepairCounts]:
    """Read a Kaggle train.csv (`labelled=True`) or test.csv into clean rows (see module docstring).

    Row numbers in errors count data rows from 1 (the header is row 0).
    """
    path = Path(path)
    counts = RepairCounts()
    frame = _read_raw_csv(path)
    required = TRAIN_COLUMNS if labelled else TEST_COLUMNS
    optional = KNOWN_UNUSED_COLUMNS + (() if labelled else LABEL_COLUMNS)
    _check_columns(path, frame, required, optional, counts)
    if frame.empty:
        raise DataError(path, "has a header but no rows")

    seen_ids: dict[str, int] = {}
    records = []
    for index, row in frame.iterrows():
        row_number = index + 1
        row_id = row["id"].strip()
        if not row_id:
            raise DataError(path, "empty id", row_number, "id")
        if row_id in seen_ids:
            raise DataError(path, f"duplicate id {row_id!r} (first seen at row {seen_ids[row_id]})", row_number, "id")
        seen_ids[row_id] = row_number
        turns = {}
        for column in TEXT_COLUMNS:
            try:
                turns[column] = parse_turns(row[column], counts)
            except ValueError as err:
                raise DataError(path, str(err), row_number, column) from None
        turns = _even_turns(turns, counts)
        label = _parse_label(path, row_number, row) if labelled else NO_LABEL
        records.append({"id": row_id, **turns, "label": label, "fold": NO_FOLD})
    return pd.DataFrame.from_records(records), counts


def assign_folds(rows: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Return a copy of labelled `rows` with `fold` in [0, n_folds), stratified by label and grouped
    by prompt, so the same prompt never sits on both sides of a split."""
    groups = rows["prompt"].map(lambda turns: "\x1f".join(turns))
    n_groups = groups.nunique()
    if n_groups < n_folds:
        raise ValueError(f"{n_groups} distinct prompts cannot fill prepare.n_folds={n_folds} folds")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(rows), -1, dtype=np.int64)
    for fold, (_, valid_index) in enumerate(splitter.split(rows, rows["label"], groups)):
        folds[valid_index] = fold
    out = rows.copy()
    out["fold"] = folds
    return out


def add_extra_rows(rows: pd.DataFrame, extra: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """`rows` followed by labelled `extra` rows marked EXTRA_FOLD (training only, never validated).
    An id that both files use is an error: predictions are keyed by id."""
    clash = sorted(set(rows["id"]) & set(extra["id"]))
    if clash:
        raise DataError(source, f"{len(clash)} id(s) also in the main training file, e.g. {clash[:3]}", column="id")
    return pd.concat([rows, extra.assign(fold=EXTRA_FOLD)], ignore_index=True)


def data_report(rows: pd.DataFrame, counts: RepairCounts) -> dict:
    """Rows, repairs, label balance and character-length percentiles of a set of clean rows."""
    report = {"rows": int(len(rows)), "repairs": counts.as_dict()}
    report["multi_turn_rows"] = int((rows["prompt"].map(len) > 1).sum())
    identical = [a == b for a, b in zip(rows["response_a"], rows["response_b"])]
    report["identical_responses"] = int(sum(identical))
    labelled = rows["label"] >= 0
    if labelled.any():
        balance = rows.loc[labelled, "label"].value_counts(normalize=True)
        report["label_share"] = {name: round(float(balance.get(i, 0.0)), 4) for i, name in enumerate(LABEL_NAMES)}
    for column in TEXT_COLUMNS:
        lengths = rows[column].map(lambda turns: sum(len(t) for t in turns))
        report[f"{column}_chars"] = {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 99)} | {
            "max": int(lengths.max())}
    return report
