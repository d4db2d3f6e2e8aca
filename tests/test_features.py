"""Hand-made pair features (arena_pref.features): exact values on hand-written text, refusals,
overlap, empty and very long answers, and the A/B swap property."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from conftest import fixture_train_rows, tiny_row, write_csv

from arena_pref.data import read_rows
from arena_pref.features import (
    PAIR_KEYS,
    RATIO_KEYS,
    SIDE_KEYS,
    count_refusals,
    feature_columns,
    jaccard,
    pair_features,
    side_features,
    swap_feature_frame,
)

MARKDOWN = (
    "# Title\n"
    "\n"
    "Some **bold** text.\n"
    "\n"
    "## Steps\n"
    "\n"
    "- one\n"
    "- two\n"
    "- three\n"
    "\n"
    "```python\n"
    "# not a header\n"
    "- not an item\n"
    "print(1)\n"
    "```\n"
)


def _rows(*pairs) -> pd.DataFrame:
    """Clean rows from (prompt turns, answer A turns, answer B turns) tuples, label 0."""
    return pd.DataFrame([{"id": str(i), "prompt": p, "response_a": a, "response_b": b, "label": 0, "fold": -1}
                         for i, (p, a, b) in enumerate(pairs)],
                        columns=["id", "prompt", "response_a", "response_b", "label", "fold"])


def _swap_rows(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["response_a"], out["response_b"] = rows["response_b"], rows["response_a"]
    return out


# ------------------------------------------------------------------------------------------ one side

def test_side_features_markdown_exact():
    f = side_features(["How do I print?"], [MARKDOWN])
    assert list(f) == list(SIDE_KEYS)
    assert all(isinstance(v, float) for v in f.values())
    assert f["chars"] == len(MARKDOWN) == 113
    # Title Some bold text Steps one two three python not a header not an item print 1
    assert f["words"] == 17
    assert f["tokens"] == 23  # ceil(17 * 1.3)
    assert f["lines"] == 11
    assert f["paragraphs"] == 5
    assert f["last_turn_chars"] == 113
    # Inside the code block, "# not a header" and "- not an item" are neither a header nor a list item.
    assert (f["headers"], f["list_items"], f["bold"], f["code_blocks"]) == (2, 3, 1, 1)
    assert (f["inline_code"], f["table_rows"], f["links"]) == (0, 0, 0)
    # Prose sentences: "# Title", "Some **bold** text.", "## Steps", "- one", "- two", "- three".
    assert f["sentences"] == 6
    assert f["mean_sentence_words"] == pytest.approx(8 / 6)
    assert f["digits"] == 1
    assert (f["questions"], f["exclamations"], f["non_ascii_share"]) == (0, 0, 0)
    assert (f["refusal_phrases"], f["refuses"], f["empty"], f["answered_turns"]) == (0, 0, 0, 1)


def test_side_features_plain_text_exact():
    f = side_features(["Tell me"], ["Hello world. It is sunny! Is it?"])
    assert (f["chars"], f["words"], f["sentences"]) == (32, 7, 3)
    assert f["mean_sentence_words"] == pytest.approx(7 / 3)
    assert f["mean_word_chars"] == pytest.approx(len("HelloworldItissunnyIsit") / 7)
    assert f["unique_word_ratio"] == pytest.approx(5 / 7)  # "It"/"it" and "is"/"Is" are one word each
    assert (f["questions"], f["exclamations"], f["lines"], f["paragraphs"]) == (1, 1, 1, 1)


def test_side_features_inline_code_table_links():
    text = "Use `ls` and `pwd`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nSee [docs](https://x.org) or https://y.org"
    f = side_features(["?"], [text])
    assert (f["inline_code"], f["table_rows"], f["links"]) == (2, 3, 2)


def test_unclosed_code_fence_is_one_block_and_hides_its_lines():
    f = side_features(["?"], ["Intro\n```\n# comment\n- x\n"])
    assert (f["code_blocks"], f["headers"], f["list_items"]) == (1, 0, 0)


def test_multi_turn_answers_count_all_turns():
    f = side_features(["Q1", "Q2", "Q3"], ["# A\n- x", "", "- y\n- z"])
    assert f["chars"] == len("# A\n- x") + len("- y\n- z")
    assert (f["headers"], f["list_items"], f["answered_turns"], f["empty"]) == (1, 3, 2, 0)
    assert f["last_turn_chars"] == len("- y\n- z")


@pytest.mark.parametrize("answer", [[""], ["   \n\n "], ["", ""]])
def test_empty_answer(answer):
    f = side_features(["Hi"] * len(answer), answer)
    assert f["empty"] == 1.0 and f["answered_turns"] == 0.0
    for key in ("words", "tokens", "lines", "sentences", "mean_sentence_words", "mean_word_chars",
                "unique_word_ratio", "prompt_jaccard", "refuses", "headers"):
        assert f[key] == 0.0, key
    assert all(np.isfinite(v) for v in f.values())


def test_empty_prompt_and_answer_are_finite():
    f = side_features([""], [""])
    assert all(np.isfinite(v) for v in f.values())
    assert f["prompt_jaccard"] == 0.0


def test_non_ascii_share():
    f = side_features(["?"], ["héllo 😀"])  # é and the emoji out of 7 characters
    assert f["non_ascii_share"] == pytest.approx(2 / 7)
    assert f["chars"] == 7


def test_very_long_text_is_fast_and_finite():
    long_answer = ("# H\n- item **b** `c` [l](http://u) word. " * 20_000) + "\n```\nunclosed " + "x\n" * 50_000
    start = time.perf_counter()
    f = side_features(["prompt " * 10_000], [long_answer])
    assert time.perf_counter() - start < 5.0
    assert all(np.isfinite(v) for v in f.values())
    assert f["chars"] == len(long_answer)
    assert f["code_blocks"] == 1


# ------------------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("text, refuses", [
    ("I'm sorry, but I cannot help with that.", True),
    ("I\u2019m sorry, I can\u2019t do that.", True),  # curly apostrophes
    ("As an AI language model, I do not have personal opinions.", True),
    ("I am unable to browse the internet.", True),
    ("I apologize for the confusion.", True),
    ("That request is against my guidelines.", True),
    ("Sure! Here is the poem you asked for.", False),
    ("The cannon fired. Sorry state of affairs, said the AI-powered robot.", False),
    ("", False),
])
def test_refusal_detection(text, refuses):
    assert side_features(["Q"], [text])["refuses"] == float(refuses)


def test_count_refusals_counts_each_phrase():
    assert count_refusals("I'm sorry, but I cannot help. As an AI, I can't.") == 4
    assert count_refusals("Happy to help.") == 0


# ------------------------------------------------------------------------------------------ overlap

def test_jaccard_exact():
    assert jaccard({"the", "cat", "sat"}, {"the", "cat", "ran"}) == 0.5
    assert jaccard(set(), set()) == 0.0
    assert jaccard({"a"}, set()) == 0.0


def test_prompt_jaccard_is_case_insensitive_word_sets():
    f = side_features(["The cat sat."], ["the CAT ran, the cat!"])
    assert f["prompt_jaccard"] == 0.5  # {the, cat, sat} vs {the, cat, ran}
    assert side_features(["Ab cd"], ["ab CD"])["prompt_jaccard"] == 1.0


# ------------------------------------------------------------------------------------------ pairs

def test_pair_features_columns_and_values():
    rows = _rows(
        (["Tell me about cats"], ["Cats purr."], ["Cats are cute animals that purr a lot."]),
        (["Help"], ["I'm sorry, I cannot."], ["I'm sorry, I cannot."]),
        (["Hi"], [""], [""]),
    )
    frame = pair_features(rows)
    assert list(frame.columns) == feature_columns()
    assert len(feature_columns()) == len(set(feature_columns())) == 3 * len(SIDE_KEYS) + len(RATIO_KEYS) + len(
        PAIR_KEYS)
    assert (frame.dtypes == np.float64).all()
    assert list(frame.index) == [0, 1, 2]
    assert frame.loc[0, "a_words"] == 2 and frame.loc[0, "b_words"] == 8
    assert frame.loc[0, "diff_words"] == -6
    assert frame.loc[0, "ratio_words"] == pytest.approx(np.log(3 / 9))
    assert frame.loc[0, "pair_abs_ratio_words"] == pytest.approx(np.log(3))
    assert frame.loc[0, "pair_ab_jaccard"] == 2 / 8  # {cats, purr} of 8 distinct words
    assert frame.loc[0, "pair_prompt_words"] == 4 and frame.loc[0, "pair_turns"] == 1
    assert frame["pair_identical"].tolist() == [0.0, 1.0, 1.0]
    assert frame["pair_both_refuse"].tolist() == [0.0, 1.0, 0.0]
    assert frame["pair_both_empty"].tolist() == [0.0, 0.0, 1.0]
    assert frame["pair_any_empty"].tolist() == [0.0, 0.0, 1.0]
    # Identical sides: every difference is exactly +0.0.
    diffs = frame.loc[1, [c for c in frame.columns if c.startswith(("diff_", "ratio_"))]].to_numpy()
    assert (diffs == 0).all() and not np.signbit(diffs).any()


def test_pair_features_keeps_row_order_of_a_non_default_index():
    rows = _rows((["Q"], ["a"], ["bb bb"]), (["Q"], ["ccc ccc ccc"], ["d"]))
    rows.index = [7, 3]
    frame = pair_features(rows)
    assert list(frame.index) == [0, 1]
    assert frame["a_words"].tolist() == [1.0, 3.0]


def test_pair_features_empty_frame():
    frame = pair_features(_rows())
    assert frame.shape == (0, len(feature_columns()))


def _fixture_rows(tmp_path) -> pd.DataFrame:
    rows, _ = read_rows(write_csv(tmp_path / "train.csv", fixture_train_rows(24)), labelled=True)
    return rows


def test_swap_feature_frame_equals_features_of_swapped_rows(tmp_path):
    rows = _fixture_rows(tmp_path)
    rows = pd.concat([rows, _rows(
        (["x"], [MARKDOWN], ["I'm sorry, I cannot."]),
        (["y", "z"], ["", "one"], ["two three", ""]),
        (["w"], [""], ["\u00e9t\u00e9 \U0001F600"]),
    )], ignore_index=True)
    frame = pair_features(rows)
    swapped = pair_features(_swap_rows(rows))
    pd.testing.assert_frame_equal(swap_feature_frame(frame), swapped, check_exact=True)
    # Exact, including the sign of zero.
    assert (np.signbit(swap_feature_frame(frame).to_numpy()) == np.signbit(swapped.to_numpy())).all()


def test_swap_feature_frame_twice_is_identity_and_does_not_modify_input(tmp_path):
    frame = pair_features(_fixture_rows(tmp_path))
    original = frame.copy()
    pd.testing.assert_frame_equal(swap_feature_frame(swap_feature_frame(frame)), frame, check_exact=True)
    pd.testing.assert_frame_equal(frame, original, check_exact=True)


def test_swap_feature_frame_exact_small():
    frame = pd.DataFrame({"a_x": [1.0, 0.0], "b_x": [3.0, 0.0], "diff_x": [-2.0, 0.0], "ratio_x": [-0.5, 0.0],
                          "pair_y": [7.0, 1.0]}, index=[5, 9])
    out = swap_feature_frame(frame)
    expected = pd.DataFrame({"a_x": [3.0, 0.0], "b_x": [1.0, 0.0], "diff_x": [2.0, 0.0], "ratio_x": [0.5, 0.0],
                             "pair_y": [7.0, 1.0]}, index=[5, 9])
    pd.testing.assert_frame_equal(out, expected, check_exact=True)
    assert not np.signbit(out["diff_x"].to_numpy()).any()  # -0.0 is not produced


@pytest.mark.parametrize("columns, message", [
    (["a_x"], "no twin 'b_x'"),
    (["b_y"], "no twin 'a_y'"),
    (["length"], "unknown prefix"),
    (["label"], "unknown prefix"),
])
def test_swap_feature_frame_rejects_unknown_columns(columns, message):
    with pytest.raises(ValueError, match=message):
        swap_feature_frame(pd.DataFrame({c: [1.0] for c in columns}))


def test_fixture_rows_through_csv(tmp_path):
    # Null turns, padded turns and identical answers from a real CSV read give finite features.
    path = write_csv(tmp_path / "t.csv", [tiny_row("1", ["Q1", "Q2"], ["A", None], ["A"], 2)])
    rows, _ = read_rows(path, labelled=True)
    frame = pair_features(rows)
    assert np.isfinite(frame.to_numpy()).all()
    assert frame.loc[0, "pair_identical"] == 1.0  # ["A", ""] vs ["A", ""] after padding
    assert frame.loc[0, "a_answered_turns"] == 1.0 and frame.loc[0, "pair_turns"] == 2.0


def test_pair_features_accept_turns_read_back_from_parquet(tmp_path):
    from arena_pref.files import write_parquet
    rows, _ = read_rows(write_csv(tmp_path / "train.csv", fixture_train_rows(6)), labelled=True)
    write_parquet(rows, tmp_path / "rows.parquet")
    round_tripped = pd.read_parquet(tmp_path / "rows.parquet")
    pd.testing.assert_frame_equal(pair_features(round_tripped), pair_features(rows))
