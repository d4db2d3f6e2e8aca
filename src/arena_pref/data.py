"""Read Kaggle-schema CSVs into clean rows, repair what can be repaired, and assign folds.

Every row that goes in comes out, or the read stops with a `DataError` that names the file, the row
and the column. Repairs (null turns, true/false/number turns, lone surrogates, NUL bytes, uneven turn
counts, padded ids) are counted in a `RepairCounts` so the data report shows them. `DataError` lives in
arena_pref.errors and is imported from here by older code.

Clean rows are a DataFrame with columns:
    id (str), prompt, response_a, response_b (list[str], one element per turn, all the same length),
    label (int, a class of arena_pref.labels: 0 = A wins, 1 = B wins, 2 = tie, NO_LABEL = -1 = unknown),
    fold (int, -1 = not assigned).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from .csvfile import read_header, read_table, require_columns
from .errors import DataError
from .folds import EXTRA_FOLD, NO_FOLD
from .labels import LABEL_COLUMNS, NO_LABEL

TEXT_COLUMNS = ("prompt", "response_a", "response_b")
TEST_COLUMNS = ("id",) + TEXT_COLUMNS
TRAIN_COLUMNS = TEST_COLUMNS + LABEL_COLUMNS
# Columns Kaggle ships that the model does not use; accepted and ignored without comment.
KNOWN_UNUSED_COLUMNS = ("model_a", "model_b")


@dataclass
class RepairCounts:
    """How many cells or turns each repair touched (for the data report)."""

    null_turns: int = 0
    scalar_turns: int = 0
    lone_surrogates: int = 0
    nul_bytes: int = 0
    padded_turns: int = 0
    stripped_ids: int = 0  # ids written with surrounding spaces, tabs or no-break spaces
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "null_turns": self.null_turns,
            "scalar_turns": self.scalar_turns,
            "lone_surrogates": self.lone_surrogates,
            "nul_bytes": self.nul_bytes,
            "padded_turns": self.padded_turns,
            "stripped_ids": self.stripped_ids,
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
    except RecursionError:
        # json recurses once per nesting level; a turn is never a list, so no real cell comes close.
        raise ValueError("JSON nested too deeply (thousands of levels); expected a list like [\"text\"]") from None
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


def _check_columns(path: Path, header: list[str], required: tuple[str, ...], optional: tuple[str, ...],
                   counts: RepairCounts) -> None:
    require_columns(path, header, required)
    counts.ignored_columns = [c for c in header if c not in required and c not in optional]


def check_header(path: Path, labelled: bool) -> None:
    """Raise a DataError unless `path` starts with the header of a train.csv (`labelled`) or test.csv.
    Reads the first bytes only: the check a download passes before it enters the cache."""
    require_columns(path, read_header(path), TRAIN_COLUMNS if labelled else TEST_COLUMNS)


def _parse_label(path: Path, row_number: int, row: dict[str, str]) -> int:
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
    Plain or compressed (gzip, bzip2, xz, zip); what else is accepted or refused: arena_pref.csvfile.

    Row numbers in errors count data rows from 1 (the header is row 0).
    """
    table = read_table(path)  # given as written, so that an s3:// path is named as the user wrote it
    path = Path(path)
    counts = RepairCounts()
    required = TRAIN_COLUMNS if labelled else TEST_COLUMNS
    optional = KNOWN_UNUSED_COLUMNS + (() if labelled else LABEL_COLUMNS)
    _check_columns(path, table.header, required, optional, counts)
    if not table.rows:
        raise DataError(path, "has a header but no rows")

    seen_ids: dict[str, int] = {}
    records = []
    for row_number, cells in enumerate(table.rows, start=1):
        row = dict(zip(table.header, cells))
        row_id = row["id"].strip()
        if row_id != row["id"]:
            counts.stripped_ids += 1
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


def assign_folds(rows: pd.DataFrame, n_folds: int, seed: int, source: str | Path = "the training rows"
                 ) -> pd.DataFrame:
    """Return a copy of labelled `rows` with `fold` in [0, n_folds), stratified by label and grouped
    by prompt, so the same prompt never sits on both sides of a split. `source` (the file the rows
    came from) is named in the error when the rows cannot fill prepare.n_folds folds."""
    groups = rows["prompt"].map(lambda turns: "\x1f".join(turns))
    n_groups = groups.nunique()
    if n_groups < n_folds:
        raise DataError(source, f"{n_groups} distinct prompts cannot fill prepare.n_folds={n_folds} folds; "
                                "lower prepare.n_folds or add rows")
    per_class = rows["label"].value_counts()
    if per_class.max() < n_folds:
        # scikit-learn refuses to stratify when every class has fewer rows than folds.
        shares = ", ".join(f"{LABEL_COLUMNS[int(label)]} {int(n)}" for label, n in sorted(per_class.items()))
        raise DataError(source, f"every class has fewer rows than prepare.n_folds={n_folds} ({shares}): "
                                "the folds cannot be stratified; lower prepare.n_folds or add rows")
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
    labelled = rows["label"] != NO_LABEL
    if labelled.any():
        balance = rows.loc[labelled, "label"].value_counts(normalize=True)
        report["label_share"] = {name: round(float(balance.get(i, 0.0)), 4) for i, name in enumerate(LABEL_COLUMNS)}
    for column in TEXT_COLUMNS:
        lengths = rows[column].map(lambda turns: sum(len(t) for t in turns))
        report[f"{column}_chars"] = {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 99)} | {
            "max": int(lengths.max())}
    return report
