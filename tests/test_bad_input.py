"""Malformed input, one table each: `data.read_rows` (train and test CSVs) and `submission.build_submission`.

Every `read_rows` case ends one of two ways, written out in the table:
  * a DataError whose message starts with "<file>[, row N][, column 'c']: " and holds the given
    substrings verbatim, or
  * every data row written comes back (row count in == row count out) and each repair is counted in
    RepairCounts, with the repaired cells given exactly.
Cases are bytes written to tmp_path, so BOMs, line endings, NULs and ragged rows are exactly as listed.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_row

from arena_pref.data import TEXT_COLUMNS, DataError, assign_folds, read_rows
from arena_pref.labels import LABEL_COLUMNS, NO_LABEL
from arena_pref.predictions import probs_frame, read_probs, write_probs
from arena_pref.submission import SubmissionError, build_submission

CLEAN_COLUMNS = ["id", "prompt", "response_a", "response_b", "label", "fold"]
ZERO_REPAIRS = {"null_turns": 0, "scalar_turns": 0, "lone_surrogates": 0, "nul_bytes": 0, "padded_turns": 0, "stripped_ids": 0,
                "ignored_columns": []}
ONE_HOT = "winner_model_a, winner_model_b, winner_tie"  # the column an error about all three labels names
MIN_READ_ROWS_CASES = 30


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    labelled: bool
    error: tuple[str, ...] = ()  # substrings of the DataError message; empty: the file is accepted
    row: int | None = None
    column: str | None = None
    rows_in: int = 0  # accepted files: data rows written, all of which must come out
    repairs: dict = field(default_factory=dict)  # accepted files: RepairCounts fields that are not zero
    cells: dict = field(default_factory=dict)  # accepted files: {(row index, column): value}


def refused(name: str, content: bytes, *message: str, row: int | None = None, column: str | None = None,
            labelled: bool = True) -> Case:
    return Case(name, content, labelled, error=message, row=row, column=column)


def accepted(name: str, content: bytes, rows_in: int, repairs: dict | None = None, cells: dict | None = None,
             labelled: bool = True) -> Case:
    return Case(name, content, labelled, rows_in=rows_in, repairs=repairs or {}, cells=cells or {})


# ----------------------------------------------------------------------------------------- file builders

def records_csv(records: list[list[str]], eol: str = "\n", encoding: str = "utf-8") -> bytes:
    """Records (ragged allowed) quoted as csv writes them; cells are written verbatim."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=eol).writerows(records)
    return out.getvalue().encode(encoding)


def rows_csv(*rows: dict, eol: str = "\n", encoding: str = "utf-8") -> bytes:
    """Dict rows under a header of the first row's keys."""
    columns = list(rows[0])
    return records_csv([columns] + [[str(row[c]) for c in columns] for row in rows], eol, encoding)


def train_row(row_id: str, label: int = 0, **cells: str) -> dict:
    """A Kaggle train.csv row; `cells` override columns verbatim (raw JSON text, label strings)."""
    return tiny_row(row_id, [f"Q{row_id}"], [f"A{row_id}"], [f"B{row_id}"], label) | cells


def unlabelled_row(row_id: str, **cells: str) -> dict:
    return tiny_row(row_id, [f"Q{row_id}"], [f"A{row_id}"], [f"B{row_id}"], None) | cells


def without(row: dict, *columns: str) -> dict:
    return {k: v for k, v in row.items() if k not in columns}


train = rows_csv  # a train file is dict rows with label columns


def two_train_rows(**cells_of_row_2: str) -> bytes:
    """A clean row 1 and a row 2 with `cells_of_row_2` written verbatim."""
    return train(train_row("1", 0), train_row("2", 1, **cells_of_row_2))


def two_test_rows(**cells_of_row_2: str) -> bytes:
    return rows_csv(unlabelled_row("1"), unlabelled_row("2", **cells_of_row_2))


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


NA_LIKE_IDS = ["NA", "null", "None", "#N/A", "n/a", "NaN", "nan", "-1.#IND", "<NA>"]
TEST_HEADER = ["id", "prompt", "response_a", "response_b"]
TRAIN_HEADER = list(train_row("1"))
OK_TEST = ["1", '["a"]', '["b"]', '["c"]']  # a clean test record
BIG_ANSWER = "0123456789" * 100_000 + " the end"  # a 1 MB answer, kept whole (encode cuts it later)
LARGE_ROWS = train(*[train_row(str(i), response_a=json.dumps(["x" * 2000])) for i in range(1, 1201)])
LARGE_BAD_ROW = b'1201,m,m,"[""caf\xe9""]","[""a""]","[""b""]",1,0,0\n'
LARGE_FILE_BAD_BYTE = len(LARGE_ROWS) + LARGE_BAD_ROW.index(b"\xe9")

CASES = [
    # --- columns and header
    refused("missing_column", train(without(train_row("1"), "response_b")), "missing column(s) response_b"),
    refused("missing_label_column", train(without(train_row("1"), "winner_tie")), "missing column(s) winner_tie"),
    refused("test_without_id_column", rows_csv(without(unlabelled_row("1"), "id")), "missing column(s) id",
            labelled=False),
    accepted("extra_unknown_column", train(train_row("1") | {"judge": "x"}, train_row("2") | {"judge": ""}), 2,
             repairs={"ignored_columns": ["judge"]}),
    accepted("trailing_comma_makes_an_unnamed_column",
             records_csv([TEST_HEADER + [""], OK_TEST + [""], ["2", '["d"]', '["e"]', '["f"]', ""]]), 2,
             repairs={"ignored_columns": ["Unnamed: 4"]}, labelled=False),
    refused("duplicated_header_column", records_csv([TEST_HEADER + ["prompt"], OK_TEST + ['["p"]']]),
            "duplicated column(s) prompt: which one holds the data?", labelled=False),
    # pandas skips the blank lines and renames the second "prompt" to "prompt.1": the check must not.
    refused("duplicated_header_after_blank_lines",
            b"\n\n" + records_csv([TEST_HEADER + ["prompt"], OK_TEST + ['["p"]']]),
            "duplicated column(s) prompt", labelled=False),
    accepted("test_file_with_label_columns", rows_csv(train_row("1", 0), train_row("2", 2)), 2,
             cells={(0, "label"): NO_LABEL, (1, "label"): NO_LABEL}, labelled=False),
    # --- empty files
    refused("empty_file_0_bytes", b"", "file is empty"),
    refused("empty_test_file_0_bytes", b"", "file is empty", labelled=False),
    refused("header_only", ",".join(TRAIN_HEADER).encode() + b"\n", "has a header but no rows"),
    refused("header_only_test_no_newline", ",".join(TEST_HEADER).encode(), "has a header but no rows", labelled=False),
    refused("whitespace_only", b"  \n\t\n \r\n", "file is empty"),
    # --- delimiters, encodings, line endings
    refused("semicolon_delimiter", b'id;prompt;response_a;response_b\n1;["a"];["b"];["c"]\n',
            "missing column(s) id, prompt, response_a, response_b", "is the file comma-separated?", labelled=False),
    refused("tab_delimiter", b'id\tprompt\tresponse_a\tresponse_b\n1\t["a"]\t["b"]\t["c"]\n',
            "missing column(s) id, prompt, response_a, response_b", "is the file comma-separated?", labelled=False),
    # Commas inside the JSON cells split row 1 into more fields than the one-column header.
    refused("semicolon_delimiter_commas_in_cells", b'id;prompt;response_a;response_b\n1;["a", "b"];["b"];["c"]\n',
            "more fields than the header", "is the file comma-separated?", row=1, labelled=False),
    refused("tab_delimiter_commas_in_cells", b'id\tprompt\tresponse_a\tresponse_b\n1\t["a"]\t["b", "c"]\t["c"]\n',
            "more fields than the header", "is the file comma-separated?", row=1, labelled=False),
    accepted("utf8_bom", b"\xef\xbb\xbf" + two_train_rows(), 2, cells={(0, "id"): "1", (1, "label"): 1}),
    refused("latin1_bytes", train(train_row("1"), train_row("2", prompt='["caf\u00e9"]'), encoding="latin-1"),
            "not UTF-8 (byte 171 of the file, 0xe9: invalid continuation byte); re-save the file as UTF-8",
            row=2, column="prompt"),
    accepted("windows_crlf", train(train_row("1"), train_row("2", 2), eol="\r\n"), 2,
             cells={(1, "id"): "2", (1, "response_b"): ["B2"], (1, "label"): 2}),
    accepted("bom_and_crlf", b"\xef\xbb\xbf" + rows_csv(unlabelled_row("1"), unlabelled_row("2"), eol="\r\n"), 2,
             cells={(0, "id"): "1", (1, "prompt"): ["Q2"]}, labelled=False),
    accepted("old_mac_cr_line_endings", train(train_row("1"), train_row("2", 1), eol="\r"), 2,
             cells={(1, "label"): 1}),
    accepted("quoted_newlines_in_cells", two_train_rows(prompt='["line 1\nline 2", "x"]', response_a='["\\n"]'), 2,
             repairs={"padded_turns": 2},
             cells={(1, "prompt"): ["line 1\nline 2", "x"], (1, "response_a"): ["\n", ""]}),
    accepted("quoted_crlf_in_cells_of_a_crlf_file", train(train_row("1"), train_row("2", prompt='["a\r\nb"]'),
                                                          eol="\r\n"), 2, cells={(1, "prompt"): ["a\r\nb"]}),
    accepted("blank_lines_between_rows", records_csv([TEST_HEADER, OK_TEST, [], [], ["2", '["d"]', '["e"]', '["f"]']]),
             2, cells={(1, "id"): "2"}, labelled=False),
    # --- ragged rows
    # pandas fills a short row's missing cells with "": the first check that reads one names it.
    refused("row_with_fewer_fields_test", records_csv([TEST_HEADER, OK_TEST, ["2", '["a"]', '["b"]']]),
            "not valid JSON (Expecting value at char 0)", row=2, column="response_b", labelled=False),
    refused("row_with_fewer_fields_train", records_csv([TRAIN_HEADER, list(train_row("1").values()),
                                                        list(train_row("2").values())[:-1]]),
            "label must be 0 or 1, got ''", row=2, column="winner_tie"),
    # Used to become pandas' implicit index and crash with a TypeError (cells shifted one column left).
    refused("first_row_with_more_fields",
            records_csv([TEST_HEADER, OK_TEST + ["extra"], ["2", '["d"]', '["e"]', '["f"]']]),
            "more fields than the header (an unquoted comma or an unclosed quote?)", row=1, labelled=False),
    refused("later_row_with_more_fields", records_csv([TRAIN_HEADER, list(train_row("1").values()),
                                                       list(train_row("2").values()) + ["extra"]]),
            "more fields than the header (an unquoted comma or an unclosed quote?)", row=2),
    # Row numbers count data rows: a quoted multi-line cell and blank lines do not shift them.
    refused("more_fields_after_multiline_cell_and_blank_line",
            records_csv([TEST_HEADER, ["1", '["a\nb\nc"]', '["b"]', '["c"]'], [], ["2"] + OK_TEST[1:],
                         ["3"] + OK_TEST[1:] + ["x"]]),
            "more fields than the header", row=3, labelled=False),
    refused("unclosed_quote",
            (",".join(TEST_HEADER) + '\n1,"[""a""]","[""b""]","[""c""]\n2,"[""a""]","[""b""]","[""c""]"\n').encode(),
            "more fields than the header", row=1, labelled=False),
    # --- list cells
    refused("invalid_json", two_train_rows(response_a='["unclosed"'), "not valid JSON", row=2, column="response_a"),
    refused("empty_cell", two_train_rows(prompt=""), "not valid JSON (Expecting value at char 0)", row=2,
            column="prompt"),
    refused("bare_string", two_train_rows(response_b='"just text"'),
            "expected a JSON list of strings, got a JSON str", row=2, column="response_b"),
    refused("json_object", two_train_rows(prompt='{"role": "user", "content": "hi"}'), "got a JSON dict", row=2,
            column="prompt"),
    refused("json_null_cell", two_test_rows(response_a="null"), "got a JSON NoneType", row=2, column="response_a",
            labelled=False),
    refused("nested_list", two_train_rows(response_a='[["a", "b"]]'),
            "turn 0 is a JSON list, expected a string, null, true, false or a number", row=2, column="response_a"),
    refused("bare_number", two_train_rows(response_b="42"), "expected a JSON list of strings, got a JSON number",
            row=2, column="response_b"),
    accepted("scalar_turns", two_train_rows(response_a="[true]", response_b='["ok", 42]'), 2,
             repairs={"scalar_turns": 2, "padded_turns": 2},
             cells={(1, "response_a"): ["true", ""], (1, "response_b"): ["ok", "42"]}),
    accepted("number_turns_keep_their_text", two_test_rows(prompt="[1.50, -2e3, false]"), 2,
             repairs={"scalar_turns": 3, "padded_turns": 4},
             cells={(1, "prompt"): ["1.50", "-2e3", "false"]}, labelled=False),
    refused("empty_list", two_train_rows(response_a="[]"), "empty JSON list: a conversation needs at least one turn",
            row=2, column="response_a"),
    accepted("null_turns", two_train_rows(prompt='["Q", null]', response_a="[null, null]", response_b='[null, "b"]'), 2,
             repairs={"null_turns": 4}, cells={(1, "prompt"): ["Q", ""], (1, "response_a"): ["", ""],
                                               (1, "response_b"): ["", "b"]}),
    accepted("lone_surrogate_escape", two_train_rows(prompt='["smile \\ud83d please", "\\udc00"]'), 2,
             repairs={"lone_surrogates": 2, "padded_turns": 2},
             cells={(1, "prompt"): ["smile \ufffd please", "\ufffd"]}),
    accepted("valid_surrogate_pair", two_test_rows(response_b='["\\ud83d\\ude00 ok"]'), 2,
             cells={(1, "response_b"): ["\U0001F600 ok"]}, labelled=False),
    accepted("escaped_nul", two_train_rows(response_a='["a\\u0000b\\u0000"]'), 2, repairs={"nul_bytes": 1},
             cells={(1, "response_a"): ["ab"]}),
    accepted("raw_nul_in_a_cell", two_train_rows(response_b='["x\x00y"]'), 2, repairs={"nul_bytes": 1},
             cells={(1, "response_b"): ["xy"]}),
    accepted("one_megabyte_answer", two_train_rows(response_a=json.dumps([BIG_ANSWER])), 2,
             cells={(1, "response_a"): [BIG_ANSWER]}),
    accepted("mismatched_turn_counts", two_train_rows(prompt='["q1", "q2", "q3"]', response_a='["a1"]'), 2,
             repairs={"padded_turns": 4}, cells={(1, "prompt"): ["q1", "q2", "q3"], (1, "response_a"): ["a1", "", ""],
                                                 (1, "response_b"): ["B2", "", ""]}),
    # --- ids
    refused("duplicate_ids", train(train_row("7"), train_row("8"), train_row("7", 1)),
            "duplicate id '7' (first seen at row 1)", row=3, column="id"),
    refused("duplicate_ids_after_strip", rows_csv(unlabelled_row("7"), unlabelled_row(" 7 ")), "duplicate id '7'",
            row=2, column="id", labelled=False),
    refused("empty_id", two_train_rows(id=""), "empty id", row=2, column="id"),
    refused("blank_id_in_test_file", two_test_rows(id="   "), "empty id", row=2, column="id", labelled=False),
    # --- labels
    refused("labels_two_ones", two_train_rows(winner_model_a="1", winner_model_b="1", winner_tie="0"),
            "labels must be one-hot (exactly one 1), got [1, 1, 0]", row=2, column=ONE_HOT),
    refused("labels_all_zero", two_train_rows(winner_model_a="0", winner_model_b="0", winner_tie="0"),
            "labels must be one-hot (exactly one 1), got [0, 0, 0]", row=2, column=ONE_HOT),
    refused("label_missing", two_train_rows(winner_model_b=""), "label must be 0 or 1, got ''", row=2,
            column="winner_model_b"),
    refused("label_non_numeric", two_train_rows(winner_tie="yes"), "label must be 0 or 1, got 'yes'", row=2,
            column="winner_tie"),
    refused("label_two", two_train_rows(winner_model_a="2", winner_model_b="0"), "label must be 0 or 1, got '2'",
            row=2, column="winner_model_a"),
    accepted("float_labels", two_train_rows(winner_model_a="0.0", winner_model_b="0.0", winner_tie="1.0"), 2,
             cells={(0, "label"): 0, (1, "label"): 2}),
    # --- issue 14: compressed inputs (recognised by their first bytes), read exactly like the plain file
    accepted("gzip", gzip.compress(two_train_rows(prompt='["caf\u00e9 \u2615"]')), 2, cells={(1, "prompt"): ["caf\u00e9 \u2615"]}),
    accepted("bzip2", bz2.compress(two_train_rows()), 2, cells={(1, "id"): "2"}),
    accepted("xz", lzma.compress(two_test_rows()), 2, cells={(1, "response_b"): ["B2"]}, labelled=False),
    accepted("zip_with_one_csv", zipped({"train.csv": two_train_rows()}), 2, cells={(1, "label"): 1}),
    refused("gzip_cut_short", gzip.compress(two_train_rows())[:-12], "gzip-compressed but cannot be decompressed",
            "cut short or damaged"),
    refused("zip_with_two_files", zipped({"a.csv": two_train_rows(), "b.csv": two_train_rows()}),
            "a zip input must hold exactly one file, this one holds 2: a.csv, b.csv"),
    refused("zstd", b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd-compressed, which is not supported"),
    # --- issue 14: raw crashes and misleading messages
    refused("json_nested_thousands_deep", two_train_rows(response_a="[" * 5000 + "]" * 5000),
            "JSON nested too deeply", row=2, column="response_a"),
    refused("excel_sep_line", b"sep=,\n" + two_train_rows(),
            "the first line 'sep=,' is Excel's separator hint, not the header: delete that line"),
    accepted("two_trailing_empty_columns",
             records_csv([TEST_HEADER + ["", ""], OK_TEST + ["", ""], ["2", '["d"]', '["e"]', '["f"]', "", ""]]), 2,
             repairs={"ignored_columns": ["Unnamed: 4", "Unnamed: 5"]}, labelled=False),
    refused("utf16_file", two_train_rows().decode().encode("utf-16"), "UTF-16 text", "re-save the file as UTF-8"),
    # The offset is the byte's place in the whole file, not in a read chunk (the file is 2.4 MB).
    refused("invalid_utf8_late_in_a_large_file",
            LARGE_ROWS + LARGE_BAD_ROW,
            f"not UTF-8 (byte {LARGE_FILE_BAD_BYTE} of the file, 0xe9: invalid continuation byte)", row=1201,
            column="prompt"),
    # --- issue 14: ids padded with tabs or no-break spaces are stripped and counted, never silently
    accepted("ids_padded_with_tab_and_no_break_space", two_train_rows(id="\t2\u00a0"), 2,
             repairs={"stripped_ids": 1}, cells={(1, "id"): "2"}),
    accepted("ids_that_look_like_missing_values",
             rows_csv(*[unlabelled_row(i) for i in NA_LIKE_IDS]), len(NA_LIKE_IDS),
             cells={(i, "id"): v for i, v in enumerate(NA_LIKE_IDS)}, labelled=False),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_read_rows_malformed_input(tmp_path, case):
    path = tmp_path / ("train.csv" if case.labelled else "test.csv")
    path.write_bytes(case.content)
    if case.error:
        with pytest.raises(DataError) as err:
            read_rows(path, labelled=case.labelled)
        where = str(path) + (f", row {case.row}" if case.row is not None else "") + (
            f", column '{case.column}'" if case.column is not None else "")
        message = str(err.value)
        assert message.startswith(where + ": "), message
        for part in case.error:
            assert part in message, message
        assert (err.value.file, err.value.row, err.value.column) == (str(path), case.row, case.column)
        return

    rows, counts = read_rows(path, labelled=case.labelled)
    assert len(rows) == case.rows_in  # nothing dropped, nothing invented
    assert list(rows.columns) == CLEAN_COLUMNS
    assert counts.as_dict() == ZERO_REPAIRS | case.repairs
    for (index, column), value in case.cells.items():
        assert rows.loc[index, column] == value, (index, column)
    for _, row in rows.iterrows():
        assert len({len(row[c]) for c in TEXT_COLUMNS}) == 1  # turns aligned
        for column in TEXT_COLUMNS:
            for turn in row[column]:
                turn.encode("utf-8")  # raises if a surrogate survived
                assert "\x00" not in turn
        assert row["label"] in ((0, 1, 2) if case.labelled else (NO_LABEL,))


def test_read_rows_table_size():
    # A cut to the table shows up here, not as silently missing coverage.
    assert len(CASES) >= MIN_READ_ROWS_CASES
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.labelled for case in CASES} == {True, False}
    assert any(case.error for case in CASES) and any(not case.error for case in CASES)


# ----------------------------------------------------------------------------------- build_submission

@dataclass(frozen=True)
class SubmissionCase:
    name: str
    ids: list
    probs: object
    expected_ids: list
    error: str | None = None  # substring of the SubmissionError; None: accepted
    out_ids: list | None = None  # accepted: the id column written


P3 = [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]


def _with_row_1(row: list[float]) -> list[list[float]]:
    return [P3[0], row, P3[2]]


SUBMISSION_CASES = [
    SubmissionCase("id_missing", ["a", "b"], P3[:2], ["a", "b", "c"], "1 missing (e.g. ['c']), 0 extra"),
    SubmissionCase("id_extra", ["a", "b", "c", "d"], P3 + [P3[0]], ["a", "b", "c"],
                   "0 missing (e.g. []), 1 extra (e.g. ['d'])"),
    SubmissionCase("id_nan", ["a", float("nan"), "c"], P3, ["a", "b", "c"],
                   "1 missing (e.g. ['b']), 1 extra (e.g. ['nan'])"),
    SubmissionCase("id_repeated", ["a", "b", "a"], P3, ["a", "b", "c"], "predictions hold repeated ids"),
    SubmissionCase("id_repeated_after_str", [1, "1", 2], P3, ["1", "2"], "predictions hold repeated ids"),
    SubmissionCase("expected_id_repeated", ["a", "b"], P3[:2], ["a", "b", "a"], "the test file's ids repeat"),
    SubmissionCase("nan", ["a", "b", "c"], _with_row_1([np.nan, 0.5, 0.5]), ["a", "b", "c"],
                   "1 rows are not finite probabilities summing to 1, e.g. id b: [nan, 0.5, 0.5]"),
    SubmissionCase("inf", ["a", "b", "c"], _with_row_1([np.inf, 0.0, 0.0]), ["a", "b", "c"],
                   "e.g. id b: [inf, 0.0, 0.0]"),
    SubmissionCase("negative", ["a", "b", "c"], _with_row_1([-0.1, 0.6, 0.5]), ["a", "b", "c"],
                   "e.g. id b: [-0.1, 0.6, 0.5]"),
    SubmissionCase("not_summing_to_1", ["a", "b", "c"], _with_row_1([0.3, 0.3, 0.3]), ["a", "b", "c"],
                   "e.g. id b: [0.3, 0.3, 0.3]"),
    SubmissionCase("logits_not_probabilities", ["a", "b", "c"], [[2.0, -1.0, 0.5]] * 3, ["a", "b", "c"],
                   "3 rows are not finite probabilities summing to 1, e.g. id a"),
    SubmissionCase("wrong_shape_two_columns", ["a", "b", "c"], [[0.5, 0.5]] * 3, ["a", "b", "c"],
                   "expected probabilities of shape (3, 3), got (3, 2)"),
    SubmissionCase("wrong_shape_flat", ["a", "b", "c"], sum(P3, []), ["a", "b", "c"],
                   "expected probabilities of shape (3, 3), got (9,)"),
    SubmissionCase("wrong_shape_too_few_rows", ["a", "b", "c"], P3[:2], ["a", "b", "c"],
                   "expected probabilities of shape (3, 3), got (2, 3)"),
    SubmissionCase("integer_expected_ids", ["136060", "211333"], P3[:2], [211333, 136060],
                   out_ids=["211333", "136060"]),
    SubmissionCase("integer_prediction_ids", np.array([3, 1, 2]), P3, ["1", "2", "3"], out_ids=["1", "2", "3"]),
]


@pytest.mark.parametrize("case", SUBMISSION_CASES, ids=[case.name for case in SUBMISSION_CASES])
def test_build_submission_malformed_input(case):
    if case.error is not None:
        with pytest.raises(SubmissionError) as err:
            build_submission(case.ids, case.probs, case.expected_ids)
        assert case.error in str(err.value)
        return
    out = build_submission(case.ids, case.probs, case.expected_ids)
    assert out["id"].tolist() == case.out_ids
    assert list(out.columns) == ["id", *LABEL_COLUMNS]
    by_id = dict(zip([str(i) for i in case.ids], np.asarray(case.probs, dtype=np.float64).tolist()))
    assert out[list(LABEL_COLUMNS)].to_numpy().tolist() == [by_id[i] for i in case.out_ids]
    assert isinstance(out.index, pd.RangeIndex)


# ------------------------------------------------------------------- issue 14: paths that are not files

def _fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    path = tmp_path / "train.csv"
    os.mkfifo(path)
    return str(path)


PATH_CASES = [
    ("directory", lambda tmp: str(tmp), lambda tmp: f"{tmp}: is a directory; expected a CSV file"),
    ("named_pipe", _fifo, lambda tmp: f"{tmp / 'train.csv'}: not a regular file (a named pipe, socket or device)"),
    ("tilde_path", lambda tmp: "~/no-such-dir-arena-pref/train.csv",
     lambda tmp: "~/no-such-dir-arena-pref/train.csv: file not found: '~' is not expanded here; write the full path "
                 f"({os.path.expanduser('~/no-such-dir-arena-pref/train.csv')})"),
    ("s3_url", lambda tmp: "s3://bucket/train.csv",
     lambda tmp: "s3://bucket/train.csv: s3:// is not supported: only local paths and http(s) URLs are read"),
    ("missing_file", lambda tmp: str(tmp / "nope.csv"), lambda tmp: f"{tmp / 'nope.csv'}: file not found"),
]


@pytest.mark.parametrize("make_path, expected", [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_read_rows_path_that_is_not_a_csv_file(tmp_path, make_path, expected):
    # A FIFO must be refused before it is opened: opening one blocks until a writer appears.
    with pytest.raises(DataError) as err:
        read_rows(make_path(tmp_path), labelled=True)
    assert str(err.value).startswith(expected(tmp_path)), str(err.value)


# ------------------------------------------------ issue 14: folds, probability files, ragged submissions

def test_assign_folds_with_fewer_rows_of_every_class_than_folds_names_file_and_param(tmp_path):
    # 3 rows of each class, 9 distinct prompts, 5 folds: scikit-learn's own message named neither.
    path = tmp_path / "train.csv"
    path.write_bytes(train(*[train_row(str(i), i % 3) for i in range(9)]))
    rows, _ = read_rows(path, labelled=True)
    with pytest.raises(DataError) as err:
        assign_folds(rows, 5, seed=0, source=path)
    assert str(err.value) == (f"{path}: every class has fewer rows than prepare.n_folds=5 (winner_model_a 3, "
                              "winner_model_b 3, winner_tie 3): the folds cannot be stratified; lower "
                              "prepare.n_folds or add rows")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_probability_file_ids_survive_write_and_read(tmp_path, suffix):
    ids = NA_LIKE_IDS + ["007", " padded ", "1e3"]
    probs = np.tile([[0.2, 0.3, 0.5]], (len(ids), 1))
    path = tmp_path / f"oof{suffix}"
    write_probs(probs_frame(ids, probs, fold=np.arange(len(ids)) % 3, label=np.zeros(len(ids), int)), path)
    back = read_probs(path)
    assert back["id"].tolist() == ids  # not NaN, not "repeated ids", not stripped
    assert back["fold"].tolist() == [i % 3 for i in range(len(ids))]
    assert back[list(LABEL_COLUMNS)].to_numpy().tolist() == probs.tolist()
    assert str(back["fold"].dtype) == "int64" and str(back["winner_tie"].dtype) == "float64"


PROBS_HEADER = "id,fold,winner_model_a,winner_model_b,winner_tie\n"
PROB_FILE_CASES = [
    ("not_a_number", PROBS_HEADER + "a,0,0.2,0.3,0.5\nb,0,x,0.3,0.5\n", 2, "winner_model_a",
     "expected a probability in [0, 1], got 'x'"),
    ("empty_cell", PROBS_HEADER + "a,0,0.2,0.3,\n", 1, "winner_tie", "expected a probability in [0, 1], got ''"),
    ("above_one", PROBS_HEADER + "a,0,1.5,0.3,0.5\n", 1, "winner_model_a",
     "expected a probability in [0, 1], got '1.5'"),
    ("nan", PROBS_HEADER + "a,0,nan,0.3,0.5\n", 1, "winner_model_a",
     "expected a probability in [0, 1], got 'nan'"),
    ("fractional_fold", PROBS_HEADER + "a,0.5,0.2,0.3,0.5\n", 1, "fold", "expected an integer, got '0.5'"),
    ("repeated_id", PROBS_HEADER + "NA,0,0.2,0.3,0.5\nNA,1,0.2,0.3,0.5\n", 2, "id", "repeated id 'NA' (first at row 1)"),
    ("empty_id", PROBS_HEADER + ",0,0.2,0.3,0.5\n", 1, "id", "empty id"),
]


@pytest.mark.parametrize("content, row, column, message", [c[1:] for c in PROB_FILE_CASES],
                         ids=[c[0] for c in PROB_FILE_CASES])
def test_read_probs_refuses_bad_cells_with_row_and_column(tmp_path, content, row, column, message):
    path = tmp_path / "oof.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_probs(path)
    assert str(err.value) == f"{path}, row {row}, column '{column}': {message}"


def test_read_probs_missing_column(tmp_path):
    path = tmp_path / "oof.csv"
    path.write_text("id,winner_model_a,winner_model_b\na,0.5,0.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"oof.csv: missing column\(s\) winner_tie"):
        read_probs(path)


@pytest.mark.parametrize("probs, message", [
    ([[0.2, 0.5, 0.3], [0.5, 0.5], [0.1, 0.1, 0.8]],
     "row 1 (id b) holds 2 values, expected 3 (winner_model_a, winner_model_b, winner_tie)"),
    ([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.4, 0.4]], "row 2 (id c) holds 4 values, expected 3 (winner_model_a, winner_model_b, winner_tie)"),
    ([[0.2, 0.5, 0.3], ["x", 0.3, 0.1], [0.1, 0.1, 0.8]], "row 1 (id b) is not a list of numbers: ['x', 0.3, 0.1]"),
], ids=["short_row", "long_row", "text_cell"])
def test_build_submission_ragged_probabilities(probs, message):
    with pytest.raises(SubmissionError) as err:
        build_submission(["a", "b", "c"], probs, ["a", "b", "c"])
    assert str(err.value) == message


# ------------------------------------------------------------------------- the stages' entry point

def test_run_stage_prints_one_line_and_exits_2(capsys, monkeypatch):
    from arena_pref.errors import EXIT_INPUT_ERROR, run_stage
    monkeypatch.delenv("ARENA_PREF_DEBUG", raising=False)

    def main(path):
        raise DataError(path, "cell holds\na newline", 3, "prompt")

    with pytest.raises(SystemExit) as exit_:
        run_stage(main, "f.csv")
    assert exit_.value.code == EXIT_INPUT_ERROR == 2
    assert capsys.readouterr().err == "error: f.csv, row 3, column 'prompt': cell holds a newline\n"


def test_run_stage_debug_switch_and_bugs_keep_the_traceback(monkeypatch):
    from arena_pref.errors import run_stage
    monkeypatch.setenv("ARENA_PREF_DEBUG", "1")
    with pytest.raises(DataError):
        run_stage(lambda: (_ for _ in ()).throw(DataError("f.csv", "bad")))
    monkeypatch.delenv("ARENA_PREF_DEBUG")
    with pytest.raises(KeyError):  # not an input error: a bug, raised as it is
        run_stage(lambda: {}["missing"])


def test_members_with_different_ids_are_a_data_error_naming_the_file():
    """The ensemble stage lines members up by id (predictions.align_to): another id set stops with the
    file named (it was a bare ValueError with a traceback), never an inner join."""
    from arena_pref.predictions import align_to

    reference = pd.Series(["a", "b", "c"])
    frame = pd.DataFrame({"id": ["c", "a", "b"], "winner_model_a": [0.1, 0.2, 0.3]})
    assert align_to(frame, reference, "x.csv")["id"].tolist() == ["a", "b", "c"]
    assert align_to(frame, reference, "x.csv")["winner_model_a"].tolist() == [0.2, 0.3, 0.1]
    with pytest.raises(DataError, match=r"oof_gbdt.csv, column 'id': 2 rows for the 3 expected ids; missing e.g. "
                                        r"\['c'\]"):
        align_to(frame.iloc[1:], reference, "oof_gbdt.csv")
    with pytest.raises(DataError, match="3 rows for the 3 expected ids; extra ids"):
        align_to(frame.assign(id=["a", "b", "z"]), pd.Series(["a", "b", "c"]).iloc[[0, 1, 1]], "oof_gbdt.csv")
