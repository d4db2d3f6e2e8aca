"""Reading Kaggle-schema CSVs (arena_pref.data): repairs, refusals, folds and the data report.

Every fixture is a small CSV written in tmp_path; expected values are written out by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_row, write_csv

from arena_pref.data import (
    DataError,
    RepairCounts,
    assign_folds,
    data_report,
    parse_turns,
    read_rows,
    repair_text,
)
from arena_pref.labels import LABEL_COLUMNS, NO_LABEL

CLEAN_COLUMNS = ["id", "prompt", "response_a", "response_b", "label", "fold"]
ZERO_REPAIRS = {"null_turns": 0, "scalar_turns": 0, "lone_surrogates": 0, "nul_bytes": 0, "padded_turns": 0, "stripped_ids": 0,
                "ignored_columns": []}


def _raw_row(row_id: str, prompt: str, a: str, b: str, label: int | None = 0) -> dict:
    """A row whose JSON cells are written verbatim (for cells `json.dumps` would never produce)."""
    row = tiny_row(row_id, ["x"], ["x"], ["x"], label)
    row |= {"prompt": prompt, "response_a": a, "response_b": b}
    return row


# ------------------------------------------------------------------------------------------ happy path

def test_read_rows_clean_file_exact(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("10", ["Hi?"], ["Hello."], ["Hey."], 0),
        tiny_row("11", ["Sum 2+2"], ["4"], ["5"], 1),
        tiny_row("12", ["Name a colour"], ["Red"], ["Blue"], 2),
    ])
    rows, counts = read_rows(path, labelled=True)
    assert list(rows.columns) == CLEAN_COLUMNS
    assert rows.to_dict("records") == [
        {"id": "10", "prompt": ["Hi?"], "response_a": ["Hello."], "response_b": ["Hey."], "label": 0, "fold": -1},
        {"id": "11", "prompt": ["Sum 2+2"], "response_a": ["4"], "response_b": ["5"], "label": 1, "fold": -1},
        {"id": "12", "prompt": ["Name a colour"], "response_a": ["Red"], "response_b": ["Blue"], "label": 2,
         "fold": -1},
    ]
    # model_a / model_b are known Kaggle columns: accepted without being listed as ignored.
    assert counts.as_dict() == ZERO_REPAIRS


def test_read_rows_keeps_multi_turn_rows(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("1", ["Q1", "Q2", "Q3"], ["A1", "A2", "A3"], ["B1", "B2", "B3"], 1)])
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "prompt"] == ["Q1", "Q2", "Q3"]
    assert rows.loc[0, "response_a"] == ["A1", "A2", "A3"]
    assert rows.loc[0, "response_b"] == ["B1", "B2", "B3"]
    assert counts.padded_turns == 0


def test_read_rows_ids_read_verbatim(tmp_path):
    # Cells are text: leading zeros and "NA" survive; surrounding spaces are stripped and counted.
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("007", ["a"], ["b"], ["c"], 0), tiny_row("NA", ["a"], ["b"], ["c"], 0),
        tiny_row(" 42 ", ["a"], ["b"], ["c"], 0)])
    rows, counts = read_rows(path, labelled=True)
    assert rows["id"].tolist() == ["007", "NA", "42"]
    assert counts.stripped_ids == 1


def test_read_rows_null_turns_become_empty_and_are_counted(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("1", ["Q1", "Q2"], ["A1", None], [None, None], 2),
        tiny_row("2", [None], ["A"], ["B"], 0),
    ])
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "response_a"] == ["A1", ""]
    assert rows.loc[0, "response_b"] == ["", ""]
    assert rows.loc[1, "prompt"] == [""]
    assert counts.null_turns == 4
    assert len(rows) == 2


def test_read_rows_string_null_is_text_not_a_null_turn(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["null"], ["None"], ["NA"], 0)])
    rows, counts = read_rows(path, labelled=True)
    assert (rows.loc[0, "prompt"], rows.loc[0, "response_a"], rows.loc[0, "response_b"]) == (["null"], ["None"], ["NA"])
    assert counts.null_turns == 0


def test_read_rows_empty_answers_kept_without_repair(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], [""], ["B"], 1)])
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "response_a"] == [""]
    assert counts.as_dict() == ZERO_REPAIRS


def test_read_rows_lone_surrogate_repaired_and_counted_valid_pair_joined(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("1", ["hi \ud83d there"], ["smile \ud83d\ude00"], ["ok"], 0),
        tiny_row("2", ["tail \udc00"], ["fine"], ["ok"], 1),
    ])
    text = path.read_text(encoding="utf-8")
    # The CSV holds JSON escapes (pure ASCII), as Kaggle's file does.
    assert "\\ud83d there" in text and "\\ud83d\\ude00" in text
    rows, counts = read_rows(path, labelled=True)
    assert len(rows) == 2  # rows are kept, not dropped
    assert rows.loc[0, "prompt"] == ["hi \ufffd there"]
    assert rows.loc[0, "response_a"] == ["smile \U0001F600"]
    assert rows.loc[1, "prompt"] == ["tail \ufffd"]
    assert counts.lone_surrogates == 2  # the pair is not counted
    for column in ("prompt", "response_a", "response_b"):
        for turns in rows[column]:
            for turn in turns:
                turn.encode("utf-8")  # raises if a surrogate survived


def test_read_rows_escaped_nul_bytes_removed_and_counted(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["a\x00b"], ["\x00\x00x"], ["ok"], 0)])
    assert "\\u0000" in path.read_text(encoding="utf-8")
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "prompt"] == ["ab"]
    assert rows.loc[0, "response_a"] == ["x"]
    assert counts.nul_bytes == 2  # counted per cell turn, not per byte


def test_read_rows_raw_nul_byte_in_file_removed_and_counted(tmp_path):
    path = write_csv(tmp_path / "train.csv", [_raw_row("1", '["a\x00b"]', '["x"]', '["y"]', 0)])
    assert b"\x00" in path.read_bytes()
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "prompt"] == ["ab"]
    assert counts.nul_bytes == 1


def test_read_rows_identical_answers_kept(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], ["same"], ["same"], 2)])
    rows, _ = read_rows(path, labelled=True)
    assert rows.loc[0, "response_a"] == rows.loc[0, "response_b"] == ["same"]
    assert rows.loc[0, "label"] == 2


def test_read_rows_strips_utf8_bom(tmp_path):
    row = tiny_row("1", ["Q"], ["A"], ["B"], 0)
    path = tmp_path / "train.csv"
    write_csv(path, [row])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    rows, counts = read_rows(path, labelled=True)
    assert rows["id"].tolist() == ["1"]
    assert counts.ignored_columns == []  # not "\ufeffid" as an unknown column


def test_read_rows_non_ascii_text_round_trips(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Ça va? 你好"], ["Très bien 👍"], ["Ну"], 0)])
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "prompt"] == ["Ça va? 你好"]
    assert rows.loc[0, "response_a"] == ["Très bien 👍"]
    assert counts.lone_surrogates == 0


def test_read_rows_uneven_turn_counts_padded_and_counted(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("1", ["Q1", "Q2"], ["A1"], ["B1", "B2", "B3"], 0),
        tiny_row("2", ["Q"], ["A"], ["B"], 1),
    ])
    rows, counts = read_rows(path, labelled=True)
    assert rows.loc[0, "prompt"] == ["Q1", "Q2", ""]
    assert rows.loc[0, "response_a"] == ["A1", "", ""]
    assert rows.loc[0, "response_b"] == ["B1", "B2", "B3"]
    assert counts.padded_turns == 3
    assert [len(t) for t in rows.loc[1, ["prompt", "response_a", "response_b"]]] == [1, 1, 1]


def test_read_rows_float_labels_accepted(tmp_path):
    row = tiny_row("1", ["Q"], ["A"], ["B"], None) | {"winner_model_a": "0.0", "winner_model_b": " 1.0 ",
                                                      "winner_tie": "0"}
    rows, _ = read_rows(write_csv(tmp_path / "train.csv", [row]), labelled=True)
    assert rows.loc[0, "label"] == 1


# --------------------------------------------------------------------------------------------- columns

def test_read_rows_missing_column_names_file_and_column(tmp_path):
    row = tiny_row("1", ["Q"], ["A"], ["B"], 0)
    del row["response_b"]
    path = write_csv(tmp_path / "train.csv", [row])
    with pytest.raises(DataError) as err:
        read_rows(path, labelled=True)
    message = str(err.value)
    assert message.startswith(str(path))
    assert "missing column(s) response_b" in message
    assert err.value.file == str(path)


def test_read_rows_missing_label_column_in_train_file(tmp_path):
    row = tiny_row("1", ["Q"], ["A"], ["B"], 0)
    del row["winner_tie"]
    path = write_csv(tmp_path / "train.csv", [row])
    with pytest.raises(DataError, match="missing column\\(s\\) winner_tie"):
        read_rows(path, labelled=True)


def test_read_rows_semicolon_file_gets_a_hint(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id;prompt;response_a;response_b\n1;[\"a\"];[\"b\"];[\"c\"]\n", encoding="utf-8")
    with pytest.raises(DataError, match="is the file comma-separated"):
        read_rows(path, labelled=False)


def test_read_rows_duplicated_column_is_an_error(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('id,prompt,response_a,response_b,prompt\n1,"[""a""]","[""b""]","[""c""]","[""d""]"\n',
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"duplicated column\(s\) prompt"):
        read_rows(path, labelled=False)


def test_read_rows_extra_column_ignored_and_listed(tmp_path):
    rows_in = [tiny_row("1", ["Q"], ["A"], ["B"], 0) | {"judge_notes": "x", "language": "en"}]
    path = write_csv(tmp_path / "train.csv", rows_in)
    rows, counts = read_rows(path, labelled=True)
    assert counts.ignored_columns == ["judge_notes", "language"]
    assert counts.as_dict()["ignored_columns"] == ["judge_notes", "language"]
    assert list(rows.columns) == CLEAN_COLUMNS


# ------------------------------------------------------------------------------------- empty / missing

def test_read_rows_header_only_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(",".join(tiny_row("1", ["Q"], ["A"], ["B"], 0)) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="has a header but no rows") as err:
        read_rows(path, labelled=True)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"\n", b"\n\n"])
def test_read_rows_empty_file(tmp_path, content):
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="file is empty") as err:
        read_rows(path, labelled=True)
    assert str(err.value).startswith(str(path))


def test_read_rows_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_rows(tmp_path / "nope.csv", labelled=True)


def test_read_rows_not_utf8(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], ["A"], ["B"], 0)])
    path.write_bytes(path.read_bytes().replace(b'""Q""', b'""caf\xe9""'))
    with pytest.raises(DataError, match="not UTF-8"):
        read_rows(path, labelled=True)


# ------------------------------------------------------------------------------------------- bad cells

@pytest.mark.parametrize("cell, reason", [
    ('["unclosed"', "not valid JSON"),
    ("plain text", "not valid JSON"),
    ("", "not valid JSON"),
    ('"a bare string"', "got a JSON str"),
    ('{"turn": "x"}', "got a JSON dict"),
    ("42", "got a JSON number"),
    ('["ok", {"x": 1}]', "turn 1 is a JSON dict"),
    ('[["nested"]]', "turn 0 is a JSON list"),
    ("[]", "empty JSON list"),
])
@pytest.mark.parametrize("column", ["prompt", "response_a", "response_b"])
def test_read_rows_bad_turn_cell_names_file_row_and_column(tmp_path, cell, reason, column):
    bad = tiny_row("2", ["Q"], ["A"], ["B"], 1) | {column: cell}
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], ["A"], ["B"], 0), bad])
    with pytest.raises(DataError) as err:
        read_rows(path, labelled=True)
    message = str(err.value)
    assert message.startswith(f"{path}, row 2, column '{column}': ")
    assert reason in message
    assert (err.value.row, err.value.column) == (2, column)


def test_read_rows_empty_id_refused(tmp_path):
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], ["A"], ["B"], 0), tiny_row(" ", ["Q"], ["A"], ["B"], 0)])
    with pytest.raises(DataError, match="row 2, column 'id': empty id"):
        read_rows(path, labelled=True)


def test_read_rows_duplicate_ids_name_both_rows(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("7", ["Q"], ["A"], ["B"], 0), tiny_row("8", ["Q"], ["A"], ["B"], 0),
        tiny_row("7", ["Other"], ["A"], ["B"], 1)])
    with pytest.raises(DataError) as err:
        read_rows(path, labelled=True)
    assert str(err.value) == f"{path}, row 3, column 'id': duplicate id '7' (first seen at row 1)"


@pytest.mark.parametrize("labels", [(1, 1, 0), (0, 0, 0), (1, 1, 1)])
def test_read_rows_labels_not_one_hot(tmp_path, labels):
    bad = tiny_row("2", ["Q"], ["A"], ["B"], None) | dict(zip(LABEL_COLUMNS, labels))
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], ["A"], ["B"], 0), bad])
    with pytest.raises(DataError) as err:
        read_rows(path, labelled=True)
    assert str(err.value) == (f"{path}, row 2, column 'winner_model_a, winner_model_b, winner_tie': "
                              f"labels must be one-hot (exactly one 1), got {list(labels)}")


@pytest.mark.parametrize("value", ["yes", "", "2", "-1", "0.5", "nan"])
def test_read_rows_non_numeric_or_non_binary_label(tmp_path, value):
    bad = tiny_row("2", ["Q"], ["A"], ["B"], 0) | {"winner_tie": value}
    path = write_csv(tmp_path / "train.csv", [tiny_row("1", ["Q"], ["A"], ["B"], 0), bad])
    with pytest.raises(DataError) as err:
        read_rows(path, labelled=True)
    assert str(err.value) == f"{path}, row 2, column 'winner_tie': label must be 0 or 1, got {value!r}"


# --------------------------------------------------------------------------------------- the test file

def test_read_rows_test_file_without_label_columns(tmp_path):
    path = write_csv(tmp_path / "test.csv", [tiny_row("136060", ["Q"], ["A"], ["B"], None),
                                             tiny_row("211333", ["Q2"], ["A2"], ["B2"], None)])
    rows, counts = read_rows(path, labelled=False)
    assert rows["id"].tolist() == ["136060", "211333"]
    assert rows["label"].tolist() == [NO_LABEL, NO_LABEL]
    assert rows["fold"].tolist() == [-1, -1]
    assert counts.ignored_columns == []


def test_read_rows_test_file_with_label_columns_ignores_them(tmp_path):
    # Label columns are optional in a test file: neither read (even malformed) nor reported as unknown.
    row = tiny_row("1", ["Q"], ["A"], ["B"], 0) | {"winner_tie": "garbage"}
    rows, counts = read_rows(write_csv(tmp_path / "test.csv", [row]), labelled=False)
    assert rows["label"].tolist() == [NO_LABEL]
    assert counts.ignored_columns == []


def test_read_rows_test_file_without_model_columns(tmp_path):
    row = {k: v for k, v in tiny_row("1", ["Q"], ["A"], ["B"], None).items() if k not in ("model_a", "model_b")}
    rows, _ = read_rows(write_csv(tmp_path / "test.csv", [row]), labelled=False)
    assert rows.loc[0, "prompt"] == ["Q"]


def test_read_rows_test_file_still_requires_text_columns(tmp_path):
    row = tiny_row("1", ["Q"], ["A"], ["B"], None)
    del row["prompt"]
    path = write_csv(tmp_path / "test.csv", [row])
    with pytest.raises(DataError, match="missing column\\(s\\) prompt"):
        read_rows(path, labelled=False)


# ---------------------------------------------------------------------------- parse_turns / repair_text

def test_parse_turns_direct():
    counts = RepairCounts()
    assert parse_turns('["a", null, "", "b\\u0000"]', counts) == ["a", "", "", "b"]
    assert (counts.null_turns, counts.nul_bytes, counts.lone_surrogates) == (1, 1, 0)
    # Raw (unescaped) control characters inside a string are kept as text.
    assert parse_turns('["a\tb", "c\nd"]', counts) == ["a\tb", "c\nd"]


def test_parse_turns_error_carries_the_reason():
    with pytest.raises(ValueError, match="turn 0 is a JSON dict"):
        parse_turns('[{"text": "hi"}]', RepairCounts())
    with pytest.raises(ValueError, match="got a JSON NoneType"):
        parse_turns("null", RepairCounts())


def test_parse_turns_keeps_true_false_and_numbers_as_written():
    counts = RepairCounts()
    assert parse_turns('[true, false, 7, 1.50, -2E3, "x"]', counts) == ["true", "false", "7", "1.50", "-2E3", "x"]
    assert counts.scalar_turns == 5


def test_repair_text_direct():
    counts = RepairCounts()
    assert repair_text("plain", counts) == "plain"
    assert counts.as_dict() == ZERO_REPAIRS
    assert repair_text("x\ud800y\udfff", counts) == "x\ufffdy\ufffd"
    assert counts.lone_surrogates == 1  # one repaired cell turn
    assert repair_text("\x00a\ud83d", counts) == "a\ufffd"
    assert (counts.nul_bytes, counts.lone_surrogates) == (1, 2)
    # Two code points forming a valid pair are joined into the character, not replaced.
    assert repair_text("\ud83d\ude00", RepairCounts()) == "\U0001F600"


def test_data_error_formatting():
    assert str(DataError("f.csv", "bad")) == "f.csv: bad"
    assert str(DataError("f.csv", "bad", 3)) == "f.csv, row 3: bad"
    assert str(DataError("f.csv", "bad", 3, "prompt")) == "f.csv, row 3, column 'prompt': bad"
    assert isinstance(DataError("f.csv", "bad"), ValueError)


# ---------------------------------------------------------------------------------------- assign_folds

def _fold_rows(n_prompts: int = 15, per_prompt: int = 2) -> pd.DataFrame:
    """`n_prompts` prompts, each used by `per_prompt` rows with one label; labels cycle A, B, tie."""
    records = []
    for g in range(n_prompts):
        for k in range(per_prompt):
            records.append({"id": f"{g}-{k}", "prompt": [f"prompt {g}", "follow-up"], "response_a": [f"a{k}", ""],
                            "response_b": ["b", ""], "label": g % 3, "fold": -1})
    return pd.DataFrame.from_records(records)


def test_assign_folds_every_row_gets_a_fold():
    rows = _fold_rows()
    out = assign_folds(rows, 5, seed=42)
    assert len(out) == len(rows)
    assert set(out["fold"]) == {0, 1, 2, 3, 4}
    assert out["fold"].dtype == np.int64
    assert rows["fold"].tolist() == [-1] * 30  # the input is not modified
    pd.testing.assert_frame_equal(out.drop(columns="fold"), rows.drop(columns="fold"))


def test_assign_folds_same_prompt_same_fold():
    rows = _fold_rows(n_prompts=15, per_prompt=3)
    out = assign_folds(rows, 5, seed=0)
    per_prompt = out.groupby(out["prompt"].map(tuple))["fold"].nunique()
    assert (per_prompt == 1).all()
    assert len(per_prompt) == 15


def test_assign_folds_groups_by_all_turns_of_the_prompt():
    # Same first turn, different second turn: different prompts, may sit in different folds; every
    # distinct full prompt must still be whole in one fold.
    rows = _fold_rows()
    rows["prompt"] = [["shared first turn", f"second {i // 2}"] for i in range(len(rows))]
    out = assign_folds(rows, 5, seed=1)
    assert out.groupby(out["prompt"].map(tuple))["fold"].nunique().max() == 1
    assert out["fold"].nunique() == 5  # 15 distinct prompts, not 1


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_assign_folds_spreads_classes(seed):
    out = assign_folds(_fold_rows(), 5, seed=seed)
    # 5 prompts per class, 2 rows each: every fold gets one prompt of each class.
    counts = pd.crosstab(out["fold"], out["label"])
    assert counts.to_numpy().tolist() == [[2, 2, 2]] * 5


def test_assign_folds_deterministic_per_seed():
    rows = _fold_rows()
    first = assign_folds(rows, 5, seed=42)["fold"].tolist()
    assert assign_folds(rows, 5, seed=42)["fold"].tolist() == first
    assert assign_folds(rows, 5, seed=0)["fold"].tolist() != first


def test_assign_folds_too_few_prompts():
    rows = _fold_rows(n_prompts=2, per_prompt=5)
    with pytest.raises(ValueError, match="2 distinct prompts cannot fill prepare.n_folds=3 folds"):
        assign_folds(rows, 3, seed=0)


def test_assign_folds_on_read_rows(tmp_path):
    from conftest import fixture_train_rows
    rows, _ = read_rows(write_csv(tmp_path / "train.csv", fixture_train_rows(24)), labelled=True)
    out = assign_folds(rows, 3, seed=42)
    assert sorted(out["fold"].unique().tolist()) == [0, 1, 2]
    assert out["id"].tolist() == rows["id"].tolist()


# ----------------------------------------------------------------------------------------- data_report

def test_data_report_figures():
    rows = pd.DataFrame.from_records([
        {"id": "1", "prompt": ["ab"], "response_a": ["xyz"], "response_b": ["xyz"], "label": 0, "fold": -1},
        {"id": "2", "prompt": ["a", "bcd"], "response_a": ["1234", ""], "response_b": ["12", "3"], "label": 1,
         "fold": -1},
        {"id": "3", "prompt": ["abcdef"], "response_a": ["x"], "response_b": [""], "label": 0, "fold": -1},
        {"id": "4", "prompt": ["q"], "response_a": ["aa"], "response_b": ["bb"], "label": -1, "fold": -1},
    ])
    counts = RepairCounts(null_turns=2, lone_surrogates=1, nul_bytes=0, padded_turns=3, ignored_columns=["x"])
    report = data_report(rows, counts)
    assert report == {
        "rows": 4,
        "repairs": {"null_turns": 2, "scalar_turns": 0, "lone_surrogates": 1, "nul_bytes": 0, "padded_turns": 3,
                    "stripped_ids": 0, "ignored_columns": ["x"]},
        "multi_turn_rows": 1,
        "identical_responses": 1,
        # the unlabelled row is left out of the balance: 2 A, 1 B, 0 ties out of 3
        "label_share": {"winner_model_a": 0.6667, "winner_model_b": 0.3333, "winner_tie": 0.0},
        # character totals per row: prompt [2, 4, 6, 1], response_a [3, 4, 1, 2], response_b [3, 3, 0, 2];
        # linear percentiles truncated to int (p90 of [1, 2, 4, 6] is 5.4 -> 5)
        "prompt_chars": {"p50": 3, "p90": 5, "p99": 5, "max": 6},
        "response_a_chars": {"p50": 2, "p90": 3, "p99": 3, "max": 4},
        "response_b_chars": {"p50": 2, "p90": 3, "p99": 3, "max": 3},
    }
    json.dumps(report)  # written to a JSON report: plain Python types only


def test_data_report_unlabelled_rows_have_no_label_share():
    rows = pd.DataFrame.from_records([
        {"id": "1", "prompt": ["q"], "response_a": ["a"], "response_b": ["b"], "label": -1, "fold": -1}])
    report = data_report(rows, RepairCounts())
    assert "label_share" not in report
    assert report["rows"] == 1 and report["identical_responses"] == 0 and report["multi_turn_rows"] == 0


def test_data_report_on_read_rows(tmp_path):
    path = write_csv(tmp_path / "train.csv", [
        tiny_row("1", ["Q1", "Q2"], ["A", None], ["A", None], 2),
        tiny_row("2", ["Q"], ["A"], ["B"], 2),
    ])
    rows, counts = read_rows(path, labelled=True)
    report = data_report(rows, counts)
    assert report["repairs"]["null_turns"] == 2
    assert report["identical_responses"] == 1
    assert report["multi_turn_rows"] == 1
    assert report["label_share"] == {"winner_model_a": 0.0, "winner_model_b": 0.0, "winner_tie": 1.0}
