"""The bundle written by `dvc repro` (conftest.pipeline_repo) scores the pipeline's own test rows to the
pipeline's submission.csv: through arena_pref.Scorer and through the `arena-pref score` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arena_pref import Scorer
from arena_pref.data import DataError, read_rows
from arena_pref.labels import LABEL_COLUMNS
from arena_pref.predictions import probs_of, read_probs

pytestmark = pytest.mark.slow
NUMBER = r"[-+]?\d+(?:\.\d+)?"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arena_pref.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def scorer(pipeline_repo) -> Scorer:
    path, _ = pipeline_repo
    return Scorer.load(path / "models/bundle", device="cpu")


def test_scorer_reproduces_the_pipelines_submission(pipeline_repo, scorer):
    path, _ = pipeline_repo
    submission = pd.read_csv(path / "submission.csv", dtype={"id": str})
    test = pd.read_csv(path / "data/raw/test.csv", dtype=str)
    predicted = scorer.predict(test)
    assert predicted["id"].tolist() == submission["id"].tolist() == ["7", "3", "5"]
    np.testing.assert_allclose(probs_of(predicted), probs_of(submission), rtol=0, atol=1e-6)
    assert scorer.members == ["siamese", "gbdt", "tfidf"]


def test_each_member_alone_reproduces_its_stage_before_the_blend(pipeline_repo, scorer):
    path, _ = pipeline_repo
    rows, _ = read_rows(path / "data/raw/test.csv", labelled=False)
    for member in ("siamese", "gbdt", "tfidf"):
        stage = read_probs(path / f"data/predictions/test_{member}.csv").set_index("id").loc[rows["id"]]
        np.testing.assert_allclose(scorer.predictors[member].predict(rows), probs_of(stage), rtol=0, atol=1e-6,
                                   err_msg=member)


def test_a_subset_uses_its_own_blend_fitted_on_out_of_fold_rows(pipeline_repo):
    path, _ = pipeline_repo
    siamese = Scorer.load(path / "models/bundle", device="cpu", members=["siamese"])
    blend = next(b for b in siamese.description["blends"] if b["members"] == ["siamese"])
    assert siamese.blend.weights == (1.0,) and siamese.blend.temperature == blend["temperature"]
    rows, _ = read_rows(path / "data/raw/test.csv", labelled=False)
    raw = probs_of(read_probs(path / "data/predictions/test_siamese.csv").set_index("id").loc[rows["id"]])
    # weight 1 and temperature T: softmax(log p / T)
    expected = np.exp(np.log(raw) / blend["temperature"])
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(siamese.predict_rows(rows), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"members \['llm'\]: this bundle holds \['siamese', 'gbdt', 'tfidf'\]"):
        Scorer.load(path / "models/bundle", members=["llm"])


def test_compare_takes_strings_or_turns_and_agrees_with_predict(pipeline_repo, scorer):
    path, _ = pipeline_repo
    test = pd.read_csv(path / "data/raw/test.csv", dtype=str)
    first = test.iloc[0]
    expected = probs_of(scorer.predict(test.iloc[:1]))[0]
    turns = [json.loads(first[c]) for c in ("prompt", "response_a", "response_b")]
    assert turns[0] == ["test question 7"]
    np.testing.assert_allclose(scorer.compare(*turns), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scorer.compare(*(t[0] for t in turns)), expected, rtol=0, atol=1e-12)
    p_a, p_b, p_tie = scorer.compare(["Hi", "And?"], ["Hello!", "More."], ["Go away.", None])
    assert abs(p_a + p_b + p_tie - 1.0) < 1e-9


def test_predict_reports_bad_cells_like_the_prepare_stage(scorer):
    frame = pd.DataFrame({"id": ["a", "b"], "prompt": ['["q"]', '["q"]'], "response_a": ['["x"]', "not json"],
                          "response_b": ['["y"]', '["y"]']})
    with pytest.raises(DataError, match=r"^<input frame>, row 2, column 'response_a': not valid JSON"):
        scorer.predict(frame)
    # lists of turns are accepted as cells, and repaired like the CSV's (null turn -> "")
    frame["response_a"] = [["x"], ["x", None]]
    assert len(scorer.predict(frame)) == 2


def test_cli_writes_the_same_submission(pipeline_repo, tmp_path):
    path, _ = pipeline_repo
    out = tmp_path / "sub.csv"
    done = cli("score", str(path / "models/bundle"), str(path / "data/raw/test.csv"), "-o", str(out), "--device", "cpu",
               "--batch-size", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    written = pd.read_csv(out, dtype={"id": str})
    expected = pd.read_csv(path / "submission.csv", dtype={"id": str})
    assert list(written.columns) == ["id", *LABEL_COLUMNS] and written["id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(probs_of(written), probs_of(expected), rtol=0, atol=1e-6)
    assert "3 pairs scored by siamese+gbdt+tfidf" in done.stderr


def test_cli_bad_input_names_file_row_and_column_and_writes_nothing(pipeline_repo, tmp_path):
    path, _ = pipeline_repo
    bad = tmp_path / "bad.csv"
    bad.write_text('id,prompt,response_a,response_b\n1,"[""q""]","[""a""]","[""b""]"\n2,"[""q""]",oops,"[""b""]"\n')
    out = tmp_path / "sub.csv"
    done = cli("score", str(path / "models/bundle"), str(bad), "-o", str(out), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{bad}, row 2, column 'response_a': not valid JSON" in done.stderr, done.stderr[-2000:]
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_score_speed_bench_checks_equality_and_ends_with_its_line(pipeline_repo):
    path, _ = pipeline_repo
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(repo / "bench" / "score_speed.py"), "--bundle", str(path / "models/bundle"),
                           "--models", str(path / "models/siamese"), "--csv", str(path / "data/raw/train.csv"), "--rows", "6",
                           "--repeats", "1", "--device", "cpu"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"6 pairs, 3 fold model\(s\), TTA True, device cpu; bundle == stage within", done.stdout)
    for name in ("stage", "featurize+stage", "bundle_siamese", "bundle_all"):
        assert re.search(rf"^{re.escape(name)} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$", done.stdout, re.M), name
    line = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(rf"bundle_pairs_per_s=({NUMBER}) stage_pairs_per_s=({NUMBER}) speed_ratio=({NUMBER}) "
                         rf"projected_25k_s=({NUMBER})", line)
    assert match, line
    bundle_rate, stage_rate, ratio, _ = (float(x) for x in match.groups())
    assert ratio == pytest.approx(bundle_rate / stage_rate, rel=1e-2)
