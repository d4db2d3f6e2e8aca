"""End to end: `dvc repro` of the whole pipeline on tiny params in a temp git + DVC repo, then an
experiment with `dvc exp run -S`. Takes a minute: every stage is a fresh Python process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import fixture_train_rows, tiny_row, write_csv

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "prepare": {"n_folds": 3},
    "featurize": {"max_tokens_per_side": 48},
    "train": {"fold": -1, "epochs": 1, "batch_size": 4, "grad_accum_steps": 2, "eval_every_steps": 2,
              "device": "cpu"},
    "gbdt": {"max_iter": 10, "min_samples_leaf": 3},
    "tfidf": {"min_df": 1, "max_features": 2000},
    "evaluate": {"batch_size": 8},
    "predict": {"batch_size": 8},
}


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env |= {"DVC_NO_ANALYTICS": "true", "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
            # Stage commands say `python`: make it this interpreter, whatever PATH holds.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    return env


def _run(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_backbone_dir) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("pipeline")
    repo = tmp / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    raw = repo / "data" / "raw"
    raw.mkdir(parents=True)
    write_csv(raw / "train.csv", fixture_train_rows(30))
    test_rows = [tiny_row(str(i), [f"test question {i}"], [f"answer a {i}"], [f"answer b {i}"], None)
                 for i in (7, 3, 5)]
    write_csv(raw / "test.csv", test_rows)

    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    params["data"].update({"train_csv": "data/raw/train.csv", "test_csv": "data/raw/test.csv"})
    params["model"]["backbone"] = str(tiny_backbone_dir)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    env = _env(tmp)
    _run(["git", "init", "-q"], repo, env)
    _run(_dvc("init", "-q"), repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "tiny pipeline"], repo, env)
    _run(_dvc("repro"), repo, env)
    return repo, env


@pytest.mark.slow
def test_repro_writes_a_valid_submission(repo):
    path, _ = repo
    submission = pd.read_csv(path / "submission.csv", dtype={"id": str})
    assert submission["id"].tolist() == ["7", "3", "5"]  # test.csv order
    assert list(submission.columns) == ["id", "winner_model_a", "winner_model_b", "winner_tie"]
    probs = submission.iloc[:, 1:].to_numpy()
    assert ((probs > 0) & (probs < 1)).all()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-6


@pytest.mark.slow
def test_repro_writes_metrics_and_plot_data(repo):
    path, _ = repo
    report = json.loads((path / "metrics/prepare/report.json").read_text())
    assert report["train"]["rows"] == 30 and report["test"]["rows"] == 3
    assert report["train"]["repairs"]["null_turns"] > 0
    evaluation = json.loads((path / "metrics/evaluate/metrics.json").read_text())
    for key in ("log_loss", "accuracy", "with_tta", "no_tta", "swap_flip_rate", "per_class", "cv"):
        assert key in evaluation
    assert evaluation["folds"] == [0, 1, 2] and evaluation["rows"] == 30  # every row predicted out of fold
    assert set(evaluation["cv"]["per_fold"]) == {"0", "1", "2"}
    for fold in range(3):
        assert (path / f"models/fold_{fold}/best.pt").is_file()
        summary = json.loads((path / f"metrics/train/fold_{fold}/metrics.json").read_text())
        assert summary["step"] >= 2 and "val" in summary and "best" in summary
        for tsv in ("train/loss.tsv", "train/acc.tsv", "val/loss.tsv", "val/acc.tsv"):
            table = pd.read_csv(path / f"metrics/train/fold_{fold}/plots/metrics" / tsv, sep="\t")
            assert len(table) >= 1 and "step" in table.columns
    confusion = pd.read_csv(path / "metrics/evaluate/confusion.csv")
    assert len(confusion) == evaluation["rows"]
    assert set(pd.read_csv(path / "metrics/evaluate/calibration.csv").columns) == {"confidence", "accuracy", "count"}


@pytest.mark.slow
def test_out_of_fold_predictions_cover_every_labelled_row_once(repo):
    path, _ = repo
    train_ids = set(pd.read_csv(path / "data/raw/train.csv", dtype={"id": str})["id"])
    for member in ("siamese", "gbdt", "tfidf", "ensemble"):
        oof = pd.read_csv(path / f"data/predictions/oof_{member}.csv", dtype={"id": str})
        assert oof["id"].is_unique and set(oof["id"]) == train_ids, member
        probs = oof[["winner_model_a", "winner_model_b", "winner_tie"]].to_numpy()
        assert abs(probs.sum(axis=1) - 1).max() < 1e-9
    ensemble = json.loads((path / "metrics/ensemble/metrics.json").read_text())
    assert ensemble["cross_fitted"] is True
    for member in ("siamese", "gbdt", "tfidf", "ensemble"):
        assert set(ensemble[member]["cv"]["per_fold"]) == {"0", "1", "2"}
    weights = ensemble["blend"]["weights"]
    assert list(weights) == ["siamese", "gbdt", "tfidf"] and abs(sum(weights.values()) - 1.0) < 1e-9
    assert all(0.0 <= w <= 1.0 for w in weights.values())
    tfidf = json.loads((path / "metrics/tfidf/metrics.json").read_text())
    assert tfidf["folds"] == [0, 1, 2] and tfidf["rows"] == 30


@pytest.mark.slow
def test_plots_render_all_four_plots(repo):
    path, env = repo
    _run(_dvc("plots", "show", "-o", "plots_html"), path, env)
    html = (path / "plots_html" / "index.html").read_text()
    for name in ("loss", "accuracy", "confusion", "calibration"):
        assert name in html


@pytest.mark.slow
def test_exp_run_with_set_param_records_a_new_experiment(repo):
    path, env = repo
    _run(_dvc("exp", "run", "-S", "train.lr=1.0e-5"), path, env)
    shown = json.loads(_run(_dvc("exp", "show", "--json"), path, env))
    lrs = []
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for revision in exp.get("revs", []):
                params = revision["data"]["params"]["params.yaml"]["data"]
                lrs.append(params["train"]["lr"])
    assert 1.0e-5 in lrs
