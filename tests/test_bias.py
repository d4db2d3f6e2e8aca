"""The bias report (arena_pref.bias, bias_inputs, length_blend, src/bias_report.py) on a hand-built set of
seven pairs whose figures are worked out by hand below, for three models: one that always picks the
longer answer, a uniform one, and one that always predicts a tie."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import tiny_row, write_csv

from arena_pref.bias import (
    human_figures,
    length_controlled_log_loss,
    length_ratio,
    length_ratio_plot,
    longer_side,
    model_figures,
    outcomes,
    pair_traits,
    position_figures,
    tie_calibration_plot,
)
from arena_pref.data import read_rows
from arena_pref.ensemble import cross_fitted_blend
from arena_pref.errors import DataError, InputError
from arena_pref.length_blend import length_conditioned_blend, paired_difference
from arena_pref.params import ParamsError, parse_params

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import bias_report

EDGES = [1.25, 1.5, 2.0, 3.0]


def words(n: int, width: int = 1) -> str:
    """n words of `width` x's: n * width + n - 1 characters."""
    return " ".join(["x" * width] * n)


# (prompt turns, A turns, B turns, label); characters / words and the outcome by characters:
ROWS = [
    (["q0"], [words(4)], [words(2)], 0),                         # 7/4 vs 3/2, A won: longer won
    (["q1"], [words(1)], [words(5)], 1),                         # 1/1 vs 9/5, B won: longer won
    (["q2"], [words(6)], ["I'm sorry"], 1),                      # 11/6 vs 9/2, B won: shorter won; refusal
    (["q3", "and?"], ["x", "x"], [words(3), words(3)], 2),       # 2/2 vs 10/6, tie; multi-turn
    (["q4"], [words(3)], [words(3)], 0),                         # 5/3 both, A won: same length; identical
    (["q5"], [words(1, 20)], [words(4)], 1),                     # 20/1 vs 7/4, B won: shorter (chars), longer (words)
    (["q6"], [words(6)], [words(1)], 0),                         # 11/6 vs 1/1, A won: longer won
]
LABELS = np.array([r[3] for r in ROWS])
# Length ratios (longer + 1) / (shorter + 1): 2.0, 5.0, 1.2, 11/3, 1.0, 21/8, 6.0 -> bins of EDGES:
# 3 ("100-200%"), 4 ("200%+"), 0 ("0-25%"), 4, 0, 3, 4.
A_LONGER = np.array([0.8, 0.1, 0.1])
B_LONGER = np.array([0.1, 0.8, 0.1])
TIE_08 = np.array([0.1, 0.1, 0.8])
ALWAYS_LONGER = np.array([A_LONGER, B_LONGER, A_LONGER, B_LONGER, TIE_08, A_LONGER, A_LONGER])
UNIFORM = np.full((7, 3), 1 / 3)
ALWAYS_TIE = np.tile(TIE_08, (7, 1))
LN = {p: -math.log(p) for p in (0.8, 0.1)}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(7)], "prompt": [r[0] for r in ROWS],
                         "response_a": [r[1] for r in ROWS], "response_b": [r[2] for r in ROWS], "label": LABELS})


@pytest.fixture(scope="module")
def traits(rows) -> pd.DataFrame:
    return pair_traits(rows)


def test_pair_traits_count_characters_words_and_flags(traits):
    assert traits["chars_a"].tolist() == [7, 1, 11, 2, 5, 20, 11]
    assert traits["chars_b"].tolist() == [3, 9, 9, 10, 5, 7, 1]
    assert traits["words_a"].tolist() == [4, 1, 6, 2, 3, 1, 6]
    assert traits["words_b"].tolist() == [2, 5, 2, 6, 3, 4, 1]
    assert traits["multi_turn"].tolist() == [False, False, False, True, False, False, False]
    assert traits["identical"].tolist() == [False, False, False, False, True, False, False]
    assert traits["refusal"].tolist() == [False, False, True, False, False, False, False]
    assert longer_side(traits, "chars").tolist() == [1, -1, 1, -1, 0, 1, 1]
    assert longer_side(traits, "words").tolist() == [1, -1, 1, -1, 0, -1, 1]
    assert length_ratio(traits) == pytest.approx([2.0, 5.0, 1.2, 11 / 3, 1.0, 21 / 8, 6.0])
    assert outcomes(LABELS, longer_side(traits)).tolist() == [
        "longer_won", "longer_won", "shorter_won", "tie", "same_length", "shorter_won", "longer_won"]


def test_human_figures(traits):
    human = human_figures(traits, LABELS)
    # Decided rows of unequal length: r0 r1 r6 longer won, r2 r5 shorter (by characters); by words r5 is longer.
    assert human["human_longer_chars"] == pytest.approx(3 / 5)
    assert human["human_longer_words"] == pytest.approx(4 / 5)
    assert human["tie_rate"] == pytest.approx(1 / 7)
    assert human["outcomes"] == {"longer_won": 3, "shorter_won": 2, "tie": 1, "same_length": 1}
    assert human["slices"] == {"multi_turn": 1, "identical": 1, "refusal": 1}


def test_a_model_that_always_picks_the_longer_answer(traits):
    f = model_figures(traits, LABELS, ALWAYS_LONGER, EDGES, 10)
    assert f["length"]["picks_longer_chars"] == 1.0
    assert f["length"]["picks_longer_words"] == pytest.approx(5 / 6)  # r5: it picks A, longer in characters only
    assert f["length"]["prob_longer_chars"] == pytest.approx(8 / 9)  # 0.8 / (0.8 + 0.1) on every unequal row
    by = f["by_outcome"]
    assert by["longer_won"] == {"rows": 3, "accuracy": 1.0, "log_loss": pytest.approx(LN[0.8])}
    assert by["shorter_won"] == {"rows": 2, "accuracy": 0.0, "log_loss": pytest.approx(LN[0.1])}
    assert by["tie"] == {"rows": 1, "accuracy": 0.0, "log_loss": pytest.approx(LN[0.1])}
    assert by["same_length"] == {"rows": 1, "accuracy": 0.0, "log_loss": pytest.approx(LN[0.1])}
    assert f["log_loss"] == pytest.approx((3 * LN[0.8] + 4 * LN[0.1]) / 7)
    # N_L = 3, N_S = 2: weights 5/6 and 5/4, so each group carries 2.5; tie and same-length rows weigh 1.
    assert f["length_controlled_log_loss"] == pytest.approx((2.5 * LN[0.8] + 4.5 * LN[0.1]) / 7)
    assert f["slices"]["refusal"] == {"rows": 1, "accuracy": 0.0, "log_loss": pytest.approx(LN[0.1]),
                                      "true_tie_rate": 0.0, "predicted_tie_rate": 0.0, "picks_longer": 1.0,
                                      "human_longer": 0.0}
    assert f["slices"]["identical"]["predicted_tie_rate"] == 1.0
    assert f["slices"]["identical"]["picks_longer"] is None  # no side is longer
    assert list(f["by_length_ratio"]) == ["0-25%", "25-50%", "50-100%", "100-200%", "200%+"]
    assert f["by_length_ratio"]["100-200%"]["rows"] == 2 and f["by_length_ratio"]["100-200%"]["human_longer"] == 0.5
    assert f["by_length_ratio"]["25-50%"] == {
        "rows": 0, "accuracy": None, "log_loss": None, "true_tie_rate": None, "predicted_tie_rate": None,
        "picks_longer": None, "human_longer": None}


def test_a_uniform_model(traits):
    f = model_figures(traits, LABELS, UNIFORM, EDGES, 10)
    assert f["log_loss"] == pytest.approx(math.log(3))
    assert f["length_controlled_log_loss"] == pytest.approx(math.log(3))
    assert f["length"]["prob_longer_chars"] == pytest.approx(0.5)
    # argmax of a uniform row is A: A is longer in 4 of the 6 unequal rows by characters, 3 by words.
    assert f["length"]["picks_longer_chars"] == pytest.approx(4 / 6)
    assert f["length"]["picks_longer_words"] == pytest.approx(3 / 6)
    assert f["position"] == {"predicts_a": 1.0, "predicts_b": 0.0, "predicts_tie": 0.0,
                             "a_share_of_predicted_winners": 1.0, "a_share_of_human_winners": 0.5,
                             "mean_p_a_minus_p_b": 0.0, "swap_flip_rate": None}


def test_a_model_that_always_predicts_a_tie(traits):
    f = model_figures(traits, LABELS, ALWAYS_TIE, EDGES, 10)
    assert f["length"]["picks_longer_chars"] is None  # it never picks a side
    assert f["ties"] == {"true_tie_rate": pytest.approx(1 / 7), "predicted_tie_rate": 1.0,
                         "mean_tie_prob": pytest.approx(0.8), "tie_calibration_error": pytest.approx(0.8 - 1 / 7),
                         "tie_brier": pytest.approx((6 * 0.64 + 0.04) / 7)}
    table = tie_calibration_plot(LABELS, {"tie": ALWAYS_TIE, "uniform": UNIFORM}, 10)
    assert table["bin_mid"].tolist() == pytest.approx([0.05 + 0.1 * b for b in range(10)])
    assert table["ideal"].tolist() == table["bin_mid"].tolist()
    assert table["tie"].isna().tolist() == [b != 8 for b in range(10)]
    assert table["tie"][8] == pytest.approx(1 / 7)
    assert table["uniform"][3] == pytest.approx(1 / 7) and table["uniform"].notna().sum() == 1


def test_length_controlled_log_loss_is_none_without_both_groups():
    labels = np.array([0, 2])
    probs = np.array([A_LONGER, TIE_08])
    assert length_controlled_log_loss(labels, probs, np.array(["longer_won", "tie"])) is None


def test_length_ratio_plot_table(traits):
    table = length_ratio_plot(traits, LABELS, {"longer": ALWAYS_LONGER, "uniform": UNIFORM}, EDGES)
    assert table["ratio_low"].tolist() == [1.0, 1.25, 1.5, 2.0, 3.0]
    assert table["rows"].tolist() == [2, 0, 0, 2, 3]
    expected = {"human": [0.0, None, None, 0.5, 1.0], "longer": [1.0, None, None, 1.0, 1.0],
                "uniform": [1.0, None, None, 1.0, 1 / 3]}
    for column, values in expected.items():
        assert table[column].isna().tolist() == [v is None for v in values], column
        assert table[column].dropna().tolist() == pytest.approx([v for v in values if v is not None]), column


def test_swap_flip_rate_of_a_position_biased_and_a_symmetric_model():
    labels = np.array([0, 1, 2])
    always_a = np.tile(A_LONGER, (3, 1))
    # Shown (B, A), a model that always says "A" says "B" of the original order: every prediction flips.
    assert position_figures(labels, always_a, swapped_back=always_a[:, [1, 0, 2]])["swap_flip_rate"] == 1.0
    assert position_figures(labels, always_a, swapped_back=always_a)["swap_flip_rate"] == 0.0


def test_length_conditioned_blend_with_one_bin_is_the_plain_blend():
    rng = np.random.default_rng(0)
    labels, folds = rng.integers(0, 3, 60), np.repeat([0, 1, 2], 20)
    members = [rng.dirichlet([1, 1, 1], 60) for _ in range(2)]
    conditioned = length_conditioned_blend(labels, folds, members, np.zeros(60, dtype=int), True)
    np.testing.assert_allclose(conditioned, cross_fitted_blend(labels, folds, members, True))
    with pytest.raises(ValueError, match=r"length-ratio bin 1 has rows in fold\(s\) \[2\] only"):
        length_conditioned_blend(labels, folds, members, (folds == 2).astype(int), True)


def test_length_conditioned_blend_finds_the_member_that_is_right_in_each_bin():
    # Member 0 is right in bin 0 and wrong in bin 1, member 1 the reverse: one weight per bin wins.
    rng = np.random.default_rng(1)
    n = 120
    labels, folds, bins = rng.integers(0, 2, n), np.tile([0, 1, 2], n // 3), np.repeat([0, 1], n // 2)
    right, wrong = np.eye(3)[labels] * 0.6 + 0.4 / 3, np.eye(3)[1 - labels] * 0.6 + 0.4 / 3
    members = [np.where(bins[:, None] == 0, right, wrong), np.where(bins[:, None] == 1, right, wrong)]
    result = paired_difference(labels, folds, length_conditioned_blend(labels, folds, members, bins, False),
                               cross_fitted_blend(labels, folds, members, False))
    assert result["diff"] < -0.3 and result["folds_better"] == 3


def test_paired_difference_by_hand():
    labels, folds = np.array([0, 0, 0, 0]), np.array([0, 0, 1, 1])
    base = np.tile([0.5, 0.25, 0.25], (4, 1))
    candidate = np.array([[0.8, 0.1, 0.1], [0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.5, 0.25, 0.25]])
    diff = np.array([math.log(0.5) - math.log(0.8), 0.0, math.log(0.5) - math.log(0.25), 0.0])
    result = paired_difference(labels, folds, candidate, base)
    assert result["diff"] == pytest.approx(diff.mean())
    assert result["diff_row_se"] == pytest.approx(diff.std(ddof=1) / 2)
    assert result["diff_per_fold"] == {"0": pytest.approx(diff[:2].mean()), "1": pytest.approx(diff[2:].mean())}
    assert result["diff_fold_se"] == pytest.approx(np.std([diff[:2].mean(), diff[2:].mean()], ddof=1) / math.sqrt(2))
    assert result["folds_better"] == 1


# ------------------------------------------------------------------------------------- the command line

def _labelled_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "pairs.csv", [tiny_row(f"r{i}", p, a, b, label)
                                              for i, (p, a, b, label) in enumerate(ROWS)])


def _probs_csv(path: Path, probs: np.ndarray, order=range(7), **extra) -> Path:
    frame = pd.DataFrame({"id": [f"r{i}" for i in order], **extra})
    frame[["winner_model_a", "winner_model_b", "winner_tie"]] = probs[list(order)]
    frame.to_csv(path, index=False)
    return path


def _params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["bias"]["length_ratio_edges"] = EDGES
    path.write_text(yaml.safe_dump(raw))
    return path


def test_cli_on_a_labelled_csv_writes_the_report(tmp_path, traits):
    labelled = _labelled_csv(tmp_path)
    longer = _probs_csv(tmp_path / "longer.csv", ALWAYS_LONGER, order=[6, 5, 4, 3, 2, 1, 0])  # any row order
    uniform = _probs_csv(tmp_path / "uniform.csv", UNIFORM)
    out = tmp_path / "report"
    metrics = bias_report.main(["--labelled", str(labelled), "--probs", f"longer={longer}",
                                "--probs", f"uniform={uniform}", "--out-dir", str(out), "--params",
                                str(_params(tmp_path))])
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["rows"] == 7 and list(metrics["models"]) == ["longer", "uniform"]
    assert metrics["human"] == human_figures(traits, LABELS)
    expected = model_figures(traits, LABELS, ALWAYS_LONGER, EDGES, 10)
    assert metrics["models"]["longer"]["length_controlled_log_loss"] == pytest.approx(
        expected["length_controlled_log_loss"])
    assert metrics["models"]["longer"]["by_outcome"] == expected["by_outcome"]
    assert "length_blend" not in metrics
    plot = pd.read_csv(out / "length_ratio.csv")
    assert list(plot.columns) == ["ratio_low", "rows", "human", "longer", "uniform"]
    outcome = pd.read_csv(out / "outcome_accuracy.csv")
    assert outcome["group"].tolist()[:4] == ["longer: longer won", "longer: shorter won", "longer: tie",
                                             "longer: same length"]
    assert outcome["accuracy"].tolist()[:2] == [1.0, 0.0]
    assert list(pd.read_csv(out / "tie_calibration.csv").columns) == ["bin_mid", "ideal", "longer", "uniform"]


def test_cli_length_blend_and_swapped_predictions(tmp_path):
    labelled = _labelled_csv(tmp_path)
    folds = [0, 1, 0, 1, 0, 1, 0]
    longer = _probs_csv(tmp_path / "longer.csv", ALWAYS_LONGER, fold=folds, label=LABELS)
    uniform = _probs_csv(tmp_path / "uniform.csv", UNIFORM, fold=folds)
    swapped = _probs_csv(tmp_path / "swapped.csv", ALWAYS_LONGER[:, [1, 0, 2]])  # a symmetric model
    params = _params(tmp_path)
    raw = yaml.safe_load(params.read_text())
    raw["bias"]["blend_ratio_edges"] = []  # one bin: the conditioned blend is the plain blend
    params.write_text(yaml.safe_dump(raw))
    metrics = bias_report.main(["--labelled", str(labelled), "--probs", f"longer={longer}", "--probs",
                                f"uniform={uniform}", "--swapped", f"longer={swapped}", "--length-blend",
                                "longer,uniform", "--out-dir", str(tmp_path / "out"), "--params", str(params)])
    assert metrics["models"]["longer"]["position"]["swap_flip_rate"] == 0.0
    assert metrics["models"]["uniform"]["position"]["swap_flip_rate"] is None
    blend = metrics["length_blend"]
    assert blend["members"] == ["longer", "uniform"] and blend["rows"] == 7
    assert blend["diff"] == pytest.approx(0.0, abs=1e-12) and blend["diff_per_fold"].keys() == {"0", "1"}


@pytest.mark.parametrize("content, row, column, message", [
    ("id,winner_model_a,winner_model_b,winner_tie\nr0,0.5,oops,0.5\n", 1, "winner_model_b",
     "expected a probability in [0, 1], got 'oops'"),
    ("id,winner_model_a,winner_model_b,winner_tie\nr0,0.5,0.25,0.5\n", 1,
     "winner_model_a, winner_model_b, winner_tie", "sum to 1.25"),
    ("id,winner_model_a,winner_model_b,winner_tie\nr0,1.5,-0.5,0\n", 1, "winner_model_a", "in [0, 1]"),
    ("id,winner_model_a,winner_model_b,winner_tie\nr0,1,0,0\nr0,1,0,0\n", 2, "id", "repeated id 'r0' (first at row 1)"),
    ("id,winner_model_a,winner_model_b,winner_tie\nr0,1,0,0\nzz,1,0,0\n", 2, "id", "'zz' is not among"),
    ("id,winner_model_a,winner_model_b,winner_tie,label\nr0,1,0,0,0\nr1,1,0,0,0\n", 2, "label",
     "label 0 but the labelled rows say 1"),
])
def test_bad_probability_files_name_file_row_and_column(tmp_path, content, row, column, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        bias_report.main(["--labelled", str(_labelled_csv(tmp_path)), "--probs", f"m={bad}",
                          "--out-dir", str(tmp_path / "out"), "--params", str(_params(tmp_path))])
    assert (err.value.file, err.value.row, err.value.column) == (str(bad), row, column)


def test_probs_if_any_leaves_out_a_placeholder_and_reports_a_filled_file(tmp_path):
    labelled, params = _labelled_csv(tmp_path), _params(tmp_path)
    folds = [0, 1] * 3 + [0]
    uniform = _probs_csv(tmp_path / "uniform.csv", UNIFORM, fold=folds)
    placeholder = tmp_path / "off.csv"
    placeholder.write_text("id,fold,label,winner_model_a,winner_model_b,winner_tie\n")
    filled = _probs_csv(tmp_path / "on.csv", ALWAYS_LONGER, fold=folds)
    for path, expected_models, expected_members in ((placeholder, ["uniform"], ["uniform"]),
                                                    (filled, ["uniform", "extra"], ["uniform", "extra"])):
        metrics = bias_report.main(["--labelled", str(labelled), "--probs", f"uniform={uniform}", "--probs-if-any",
                                    f"extra={path}", "--length-blend", "uniform,extra", "--out-dir",
                                    str(tmp_path / "out"), "--params", str(params)])
        assert list(metrics["models"]) == expected_models
        assert metrics["length_blend"]["members"] == expected_members


@pytest.mark.parametrize("option", ["--swapped", "--flip-rate", "--length-blend"])
def test_options_naming_an_unknown_model_are_refused(tmp_path, option):
    uniform = _probs_csv(tmp_path / "uniform.csv", UNIFORM, fold=[0, 1] * 3 + [0])
    value = "other" if option == "--length-blend" else f"other={uniform}"
    with pytest.raises(InputError, match=re.escape(f"{option}: ['other'] not among the --probs names ['uniform']")):
        bias_report.main(["--labelled", str(_labelled_csv(tmp_path)), "--probs", f"uniform={uniform}", option, value,
                          "--out-dir", str(tmp_path / "out"), "--params", str(_params(tmp_path))])


def test_a_second_model_missing_rows_is_an_error(tmp_path):
    labelled = _labelled_csv(tmp_path)
    full = _probs_csv(tmp_path / "full.csv", UNIFORM)
    part = _probs_csv(tmp_path / "part.csv", UNIFORM, order=range(5))
    with pytest.raises(DataError, match=r"part.csv, column 'id': 5 rows for the 7 expected ids; missing e.g. "
                                        r"\['r5', 'r6'\]"):
        bias_report.main(["--labelled", str(labelled), "--probs", f"a={full}", "--probs", f"b={part}",
                          "--out-dir", str(tmp_path / "out"), "--params", str(_params(tmp_path))])


def test_the_labelled_rows_reach_the_report_through_the_projects_reader(tmp_path, rows):
    read, _ = read_rows(_labelled_csv(tmp_path), labelled=True)
    pd.testing.assert_frame_equal(pair_traits(read), pair_traits(rows))


@pytest.mark.parametrize("key, value, message", [
    ("length_ratio_edges", [1.5, 1.25], "bias.length_ratio_edges must be increasing, each > 1"),
    ("blend_ratio_edges", [1.0], "bias.blend_ratio_edges must be increasing, each > 1"),
    ("tie_calibration_bins", 1, "bias.tie_calibration_bins must be >= 2"),
])
def test_bias_params_are_checked(key, value, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["bias"][key] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)
