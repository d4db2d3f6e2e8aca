"""End to end: `dvc repro` of the whole pipeline on tiny params in a temp git + DVC repo (conftest's
pipeline_repo, shared with the bundle tests), then an experiment with `dvc exp run -S`. Takes a minute:
every stage is a fresh Python process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from arena_pref import Scorer
from arena_pref.checkpoint import load_checkpoint
from arena_pref.model import spec_of
from arena_pref.data import read_rows
from arena_pref.predictions import probs_of, read_probs
from arena_pref.side_stats import SIDE_STATS
from arena_pref.teacher_prior import TEACHER_STATS
from conftest import dvc_args as _dvc
from conftest import run_checked as _run

@pytest.fixture(scope="module")
def repo(pipeline_repo) -> tuple[Path, dict]:
    """The session's tiny pipeline repository (conftest.pipeline_repo), after `dvc repro`."""
    return pipeline_repo


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
        assert (path / f"models/siamese/fold_{fold}/best.pt").is_file()
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
    done = subprocess.run(_dvc("plots", "show", "-o", "plots_html"), cwd=path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # With llm.enabled false the llm stage leaves a placeholder, which must not read as a broken plot.
    assert "failed to load" not in done.stdout + done.stderr
    html = (path / "plots_html" / "index.html").read_text()
    for name in ("loss", "accuracy", "confusion", "calibration"):
        assert name in html


@pytest.mark.slow
def test_bias_report_covers_every_member_and_the_blend(repo):
    path, env = repo
    bias = json.loads((path / "metrics/bias/metrics.json").read_text())
    assert bias["rows"] == 30 and list(bias["models"]) == ["siamese", "gbdt", "tfidf", "ensemble"]
    evaluation = json.loads((path / "metrics/evaluate/metrics.json").read_text())
    assert bias["models"]["siamese"]["position"]["swap_flip_rate"] == evaluation["swap_flip_rate"]
    assert bias["length_blend"]["members"] == ["siamese", "gbdt", "tfidf"]  # measured, or skipped with a reason
    ratio = pd.read_csv(path / "metrics/bias/length_ratio.csv")
    assert list(ratio.columns) == ["ratio_low", "rows", "human", "siamese", "gbdt", "tfidf", "ensemble"]
    assert ratio["rows"].sum() == 30
    _run(_dvc("plots", "show", "-o", "bias_html"), path, env)
    html = (path / "bias_html" / "index.html").read_text()
    for name in ("length_bias", "outcome_accuracy", "tie_calibration"):
        assert name in html


@pytest.mark.slow
def test_llm_member_off_by_default_writes_placeholders_the_ensemble_ignores(repo):
    path, _ = repo
    assert json.loads((path / "metrics/llm/metrics.json").read_text()) == {"enabled": False}
    assert pd.read_csv(path / "data/predictions/oof_llm.csv").empty
    assert not list((path / "models/llm").glob("fold_*"))
    assert "llm" not in json.loads((path / "metrics/ensemble/metrics.json").read_text())["blend"]["weights"]


# Tiny settings of the LLM member on conftest's random Llama (the `dvc exp run -S` switches a user sets).
LLM_ON = {"llm.enabled": "true", "llm.max_tokens": "96", "llm.lora_r": "4", "llm.batch_size": "4",
          "llm.grad_accum_steps": "2", "llm.eval_every_steps": "2", "llm.device": "cpu", "llm.precision": "fp32",
          "llm.predict_batch_size": "8"}


@pytest.mark.slow
def test_exp_run_with_llm_enabled_trains_the_member_and_blends_it(repo, tiny_llama_dir):
    path, env = repo
    sets = LLM_ON | {"llm.backbone": str(tiny_llama_dir)}
    # --temp: the experiment runs in a copy, so the workspace (shared with other tests) keeps llm off.
    _run(_dvc("exp", "run", "--temp", *[arg for key, value in sets.items() for arg in ("-S", f"{key}={value}")]),
         path, env)
    shown = json.loads(_run(_dvc("exp", "show", "--json"), path, env))
    runs = [revision["data"] for commit in shown for exp in commit.get("experiments") or []
            for revision in exp.get("revs", [])
            if revision["data"]["params"]["params.yaml"]["data"]["llm"]["enabled"] is True]
    assert len(runs) == 1
    metrics = runs[0]["metrics"]
    llm = metrics["metrics/llm/metrics.json"]["data"]
    # (dvc exp show leaves out list-valued metrics such as "folds": the folds are read from the per-fold table)
    assert set(llm["cv"]["per_fold"]) == {"0", "1", "2"} and llm["rows"] == 30 and 0.0 < llm["log_loss"] < 5.0
    ensemble = metrics["metrics/ensemble/metrics.json"]["data"]
    weights = ensemble["blend"]["weights"]
    assert list(weights) == ["siamese", "gbdt", "tfidf", "llm"] and abs(sum(weights.values()) - 1.0) < 1e-9
    assert set(ensemble["llm"]["cv"]["per_fold"]) == {"0", "1", "2"}


def _counting(predict, name: str, calls: list):
    """`predict`, appending `name` to `calls` at each call."""
    def counted(*args, **kwargs):
        calls.append(name)
        return predict(*args, **kwargs)
    return counted


@pytest.mark.slow
def test_exp_run_with_set_params_records_an_experiment_with_the_teacher(repo, tiny_backbone_dir):
    """Soft targets, the teacher prior, attention pooling, frozen embeddings and multi-sample dropout: the
    teacher stage covers every row of each fold's model, the fold models read the teacher's entries and keep
    the pretrained embeddings, and the bundle's siamese member (which runs the bundle's gbdt and tfidf for
    them, and pools as trained) reproduces the predict stage; the whole bundle, the submission."""
    path, env = repo
    assert pd.read_parquet(path / "data" / "teacher" / "train.parquet").empty  # PIPELINE_TINY: none needed
    _run(_dvc("exp", "run", "-S", "train.lr=1.0e-5", "-S", "train.soft_target_weight=0.5",
              "-S", "model.teacher_prior=true", "-S", "model.pooling=attention",
              "-S", "train.freeze_layers=1", "-S", "model.dropout_samples=2"), path, env)
    teacher = pd.read_parquet(path / "data" / "teacher" / "train.parquet")
    prepared = pd.read_parquet(path / "data" / "prepared" / "train.parquet")
    pretrained = load_file(tiny_backbone_dir / "model.safetensors")
    for fold in (0, 1, 2):  # each fold's model has a teacher row for each of its training and validation rows
        assert sorted(teacher.loc[teacher["valid_fold"] == fold, "id"]) == sorted(prepared["id"])
        checkpoint = load_checkpoint(path / "models" / "siamese" / f"fold_{fold}" / "best.pt")
        spec = spec_of(checkpoint)
        assert spec["n_side_stats"] == len(SIDE_STATS) + len(TEACHER_STATS) and spec["pooling"] == "attention"
        for name in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query_proj.weight"):
            # train.freeze_layers=1: the embeddings stay pretrained, the layers above them learn
            assert torch.equal(checkpoint["model"]["backbone." + name], pretrained[name]) == name.startswith("embeddings")
    rows, _ = read_rows(path / "data" / "raw" / "test.csv", labelled=False)
    stage = read_probs(path / "data" / "predictions" / "test_siamese.csv").set_index("id").loc[rows["id"]]
    scorer = Scorer.load(path / "models" / "bundle", device="cpu")
    siamese = scorer.predictors["siamese"]
    assert len(siamese.teacher_members) == 2 and {model.pooling for model in siamese.models} == {"attention"}
    np.testing.assert_allclose(siamese.predict(rows), probs_of(stage), rtol=0, atol=1e-6)
    # Scoring with every member, the siamese one reads the bundle's gbdt and tfidf probabilities instead of
    # running its own copies of them: each scores the rows once, and the blend is the ensemble stage's.
    calls = []
    for name, predictor in [("gbdt", scorer.predictors["gbdt"]), ("tfidf", scorer.predictors["tfidf"]),
                            ("siamese's gbdt", siamese.teacher_members[0]),
                            ("siamese's tfidf", siamese.teacher_members[1])]:
        predictor.predict = _counting(predictor.predict, name, calls)
    submission = pd.read_csv(path / "submission.csv", dtype={"id": str}).set_index("id").loc[rows["id"]]
    np.testing.assert_allclose(scorer.predict_rows(rows), probs_of(submission), rtol=0, atol=1e-6)
    assert sorted(calls) == ["gbdt", "tfidf"]
    shown = json.loads(_run(_dvc("exp", "show", "--json"), path, env))
    recorded = []
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for revision in exp.get("revs", []):
                params = revision["data"]["params"]["params.yaml"]["data"]
                recorded.append((params["train"]["lr"], params["train"]["soft_target_weight"],
                                 params["model"]["teacher_prior"]))
    assert (1.0e-5, 0.5, True) in recorded
