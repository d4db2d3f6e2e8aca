"""The benchmark scripts under bench/ run end to end on a fixture CSV and the tiny backbone, and end with
the one machine-readable line their READMEs promise. (Their figures are only meaningful on real rows
with a real backbone; here the point is that the code paths and the checks inside them work.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import fixture_train_rows, make_train_dir, write_csv

REPO = Path(__file__).resolve().parent.parent
NUMBER = r"[-+]?\d+(?:\.\d+)?"


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def last_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def fixture_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("bench") / "train.csv", fixture_train_rows(40))


@pytest.mark.slow
def test_throughput_runs_its_checks_and_ends_with_the_speedup_line(tiny_backbone_dir, fixture_csv):
    done = run_bench("throughput.py", "--csv", str(fixture_csv), "--backbone", str(tiny_backbone_dir),
                     "--max-tokens-per-side", "64", "--batch-size", "2", "--train-batches", "2",
                     "--predict-batch-size", "2", "--predict-batches", "2", "--repeats", "2", "--threads", "1")
    line = last_line(done)
    assert re.fullmatch(rf"train_speedup=({NUMBER}) predict_speedup=({NUMBER}) train_peak_rss_gb=({NUMBER})", line), line
    # the logit check ran and passed: ours and naive compute the same function
    assert re.search(r"logit check .* -> PASS", done.stdout), done.stdout[-3000:]
    assert "naive" in done.stdout and "ours" in done.stdout


# Runs a bench script as if this CPU had native bf16, so train.precision=auto resolves to bf16 on any CPU.
AS_IF_BF16_CPU = ("import pathlib, runpy, sys; import arena_pref.precision as precision; "
                  "precision.cpu_has_native_bf16 = lambda: True; script = sys.argv[1]; sys.argv = sys.argv[1:]; "
                  "sys.path.insert(0, str(pathlib.Path(script).parent)); runpy.run_path(script, run_name='__main__')")


@pytest.mark.slow
def test_throughput_compares_auto_bf16_with_fp32_where_auto_is_bf16(tiny_backbone_dir, fixture_csv):
    done = subprocess.run([sys.executable, "-c", AS_IF_BF16_CPU, str(REPO / "bench" / "throughput.py"),
                           "--csv", str(fixture_csv), "--backbone", str(tiny_backbone_dir), "--max-tokens-per-side",
                           "64", "--batch-size", "2", "--train-batches", "2", "--predict-batch-size", "2",
                           "--predict-batches", "2", "--repeats", "2", "--threads", "1", "--no-rss"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    line = last_line(done)
    assert re.fullmatch(rf"train_speedup={NUMBER} predict_speedup={NUMBER} train_peak_rss_gb=nan", line), line
    out = done.stdout
    assert re.search(r"^  ours \(auto=bf16\) .*\n  ours_fp32 ", out, re.MULTILINE), out[-3000:]
    assert re.search(r"ours_fp32 \S+ \(fp32: must be ~0\)", out), out[-3000:]
    # the same 4 training steps in both precisions, losses within the default tolerance
    assert re.search(r"training loss per step \(same batches and dropout masks, 4 steps\) .* -> close", out), out
    assert re.search(r"verdict on this CPU \(bf16 must be > 1.05x fp32 and close\)", out), out[-3000:]


@pytest.mark.slow
def test_val_loss_trains_both_recipes_and_ends_with_the_loss_line(tiny_backbone_dir, fixture_csv):
    done = run_bench("val_loss.py", "--csv", str(fixture_csv), "--backbone", str(tiny_backbone_dir),
                     "--max-tokens-per-side", "64", "--batch-size", "2", "--train-pairs", "8")
    line = last_line(done)
    match = re.fullmatch(rf"val_loss_naive=({NUMBER}) val_loss_ours=({NUMBER}) ours_minus_naive=({NUMBER})", line)
    assert match, line
    naive, ours, diff = (float(x) for x in match.groups())
    assert diff == pytest.approx(ours - naive, abs=2e-4)
    assert "4 steps of 2" in done.stdout  # 8 pairs at batch 2, one pass


def test_val_loss_refuses_more_training_pairs_than_the_other_folds_hold(tiny_backbone_dir, fixture_csv):
    done = run_bench("val_loss.py", "--csv", str(fixture_csv), "--backbone", str(tiny_backbone_dir),
                     "--max-tokens-per-side", "64", "--train-pairs", "1000")
    assert done.returncode != 0
    assert "--train-pairs 1000 but only" in done.stderr


def test_gpu_train_code_path_runs_on_cpu():
    done = run_bench("gpu_train.py", "--device", "cpu", "--tiny", "--warmup-steps", "2", "--steps", "3")
    line = last_line(done)
    assert re.fullmatch(r"fp16_pairs_per_s=\S+ bf16_pairs_per_s=\S+ fp16_predict_pairs_per_s=\S+ "
                        r"bf16_predict_pairs_per_s=\S+ fp16_tflops=\S+ bf16_tflops=\S+", line), line
    assert "fp16 GradScaler:" in done.stdout and "-> OK" in done.stdout
    results = {r["precision"]: r for r in map(json.loads, (x for x in done.stdout.splitlines() if x.startswith("{")))}
    assert set(results) == {"fp16", "bf16"}
    for r in results.values():
        # loop.train ran one epoch of exactly the warm-up and timed steps, and trained the weights
        assert r["steps_total"] == 5 and r["weights_changed"] and r["weights_finite"], r
        assert r["pairs_per_s"] > 0 and r["predict_pairs_per_s"] > 0 and np.isfinite(r["final_loss"]), r
    assert results["fp16"]["scale_initial"] == 65536.0 and results["bf16"]["scale_initial"] is None


def test_gpu_train_refuses_a_run_without_a_warm_up_step():
    done = run_bench("gpu_train.py", "--device", "cpu", "--tiny", "--warmup-steps", "0")
    assert done.returncode == 2 and "--warmup-steps and --steps must be at least 1" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for machines without CUDA")
def test_gpu_sh_exits_2_and_says_why_without_cuda():
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh")], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=120)
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and "Nothing was measured" in done.stderr


def test_gpu_sweep_cross_validates_each_variant_and_writes_every_oof_row(tmp_path, tiny_backbone_dir):
    root = make_train_dir(tmp_path / "run", tiny_backbone_dir, n_rows=30, epochs=1)
    out = tmp_path / "sweep.csv"
    original = pd.read_parquet(root / "features" / "train.parquet").query("~swapped")
    # A teacher that favours ties, and knows them (p(tie) 0.9 for a tie, 0.5 otherwise): for every row of each fold.
    tie = np.where(original["label"].to_numpy() == 2, 0.9, 0.5)
    teacher = pd.concat([pd.DataFrame({"valid_fold": fold, "id": original["id"], "winner_model_a": (1 - tie) / 2,
                                       "winner_model_b": (1 - tie) / 2, "winner_tie": tie}) for fold in (0, 1, 2)])
    teacher.to_parquet(tmp_path / "teacher.parquet", index=False)
    done = run_bench("gpu_sweep.py", "--features", str(root / "features" / "train.parquet"),
                     "--params", str(root / "params.yaml"), "--set", "train.eval_every_steps=0",
                     "--variant", "base", "--variant", "fast", "train.lr=1.0e-2", "train.head_lr=1.0e-1",
                     "--variant", "soft", "train.lr=1.0e-2", "train.head_lr=1.0e-1", "train.soft_target_weight=0.9",
                     "--variant", "prior", "model.teacher_prior=true",
                     "--teacher", str(tmp_path / "teacher.parquet"),
                     "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["variant"] for line in lines] == ["base", "fast", "soft", "prior"]
    assert all(set(line["per_fold_log_loss"]) == {"0", "1", "2"} for line in lines)
    table = pd.read_csv(out, dtype={"id": str})
    assert list(table.columns) == ["variant", "id", "fold", "label", "winner_model_a", "winner_model_b", "winner_tie"]
    original = pd.read_parquet(root / "features" / "train.parquet").query("~swapped")
    for variant, rows in table.groupby("variant"):
        # every labelled row once, predicted by the model of its own fold
        assert sorted(rows["id"]) == sorted(original["id"]), variant
        by_id = original.set_index("id")
        assert (rows["fold"].to_numpy() == by_id.loc[rows["id"], "fold"].to_numpy()).all()
        probs = rows[["winner_model_a", "winner_model_b", "winner_tie"]].to_numpy()
        assert abs(probs.sum(axis=1) - 1).max() < 1e-9
        pooled = float(-np.log(probs[np.arange(len(rows)), rows["label"].to_numpy()]).mean())
        assert abs(pooled - next(line["log_loss"] for line in lines if line["variant"] == variant)) < 1e-4
    base, fast, soft = (table[table["variant"] == v].sort_values("id") for v in ("base", "fast", "soft"))
    assert not np.allclose(base["winner_tie"].to_numpy(), fast["winner_tie"].to_numpy())
    # the same fast training, towards a teacher that favours ties
    assert soft["winner_tie"].mean() > fast["winner_tie"].mean()
    # the base run, reading a teacher that knows the ties
    loss = {line["variant"]: line["log_loss"] for line in lines}
    assert loss["prior"] < loss["base"] - 0.05, loss


def sweep_refusal(monkeypatch, *args: str) -> str:
    """The message bench/gpu_sweep.py stops with on these arguments: run in this process, since it stops
    before any training (a subprocess would spend its time importing torch)."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import gpu_sweep
    monkeypatch.setattr(sys, "argv", ["gpu_sweep.py", *args])
    with pytest.raises(SystemExit) as stopped:
        gpu_sweep.main()
    return str(stopped.value.code)


def test_gpu_sweep_refuses_a_setting_params_yaml_would_refuse(tmp_path, tiny_backbone_dir, monkeypatch):
    root = make_train_dir(tmp_path / "run", tiny_backbone_dir, n_rows=30)
    common = ("--features", str(root / "features" / "train.parquet"), "--params", str(root / "params.yaml"),
              "--out", str(tmp_path / "sweep.csv"))
    assert "--variant bad: params.yaml: train.epochs must be >= 1" in sweep_refusal(
        monkeypatch, *common, "--variant", "bad", "train.epochs=0")
    assert "'train.learning_rate=1' is not KEY=VALUE" in sweep_refusal(
        monkeypatch, *common, "--variant", "typo", "train.learning_rate=1")
    assert "a variant trains with train.soft_target_weight > 0" in sweep_refusal(
        monkeypatch, *common, "--variant", "soft", "train.soft_target_weight=0.5")
    assert "train.soft_target_weight > 0 or model.teacher_prior (from --params, --set or --variant): --teacher" in (
        sweep_refusal(monkeypatch, *common, "--variant", "prior", "model.teacher_prior=true"))
    assert not (tmp_path / "sweep.csv").exists()


@pytest.fixture(scope="module")
def prepared_dirs(tmp_path_factory) -> Path:
    """prepared/ and hand_features/ as the prepare (3 folds, seed 42) and hand_features stages leave them,
    the last 6 rows an extra training file's (fold -2)."""
    from arena_pref.data import assign_folds, read_rows
    from arena_pref.features import pair_features
    from arena_pref.files import write_parquet
    from arena_pref.folds import EXTRA_FOLD

    root = tmp_path_factory.mktemp("prepared")
    rows, _ = read_rows(write_csv(root / "train.csv", fixture_train_rows(60)), labelled=True)
    rows = pd.concat([assign_folds(rows.iloc[:54], 3, 42), rows.iloc[54:].assign(fold=EXTRA_FOLD)], ignore_index=True)
    write_parquet(rows, root / "prepared" / "train.parquet")
    features = pair_features(rows)
    features.insert(0, "id", rows["id"].to_numpy())
    features.insert(1, "fold", rows["fold"].to_numpy())
    features.insert(2, "label", rows["label"].to_numpy())
    write_parquet(features, root / "hand_features" / "train.parquet")
    return root


def run_repeated_cv(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run_bench("repeated_cv.py", "--prepared", str(root / "prepared"), "--hand-features",
                     str(root / "hand_features"), "--set", "prepare.n_folds=3", "--set", "gbdt.min_samples_leaf=4",
                     "--set", "gbdt.max_iter=20", "--set", "tfidf.min_df=1", *args)


def test_repeated_cv_matches_the_stages_on_their_split_and_compares_variants(prepared_dirs):
    from arena_pref import gbdt, tfidf
    from arena_pref.ensemble import cross_fitted_blend
    from arena_pref.metrics import kaggle_log_loss
    from arena_pref.params import load_params

    done = run_repeated_cv(prepared_dirs, "--splits", "42", "7", "--variant", "base",
                           "--variant", "strong_c", "tfidf.C=30.0")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    per_split, summaries = lines[:4], lines[4:]
    assert [(line["variant"], line["split"]) for line in per_split] == [
        ("base", 42), ("base", 7), ("strong_c", 42), ("strong_c", 7)]

    # split 42 is the prepared split: the figures are those of the stages' own cross-fits and blend
    rows = pd.read_parquet(prepared_dirs / "prepared" / "train.parquet")
    features = pd.read_parquet(prepared_dirs / "hand_features" / "train.parquet").drop(columns=["id", "fold", "label"])
    params = load_params(REPO / "params.yaml")  # with the --set values run_repeated_cv passes
    params = replace(params, gbdt=replace(params.gbdt, min_samples_leaf=4, max_iter=20),
                     tfidf=replace(params.tfidf, min_df=1))
    main = rows["fold"].to_numpy() >= 0
    labels, folds = rows["label"].to_numpy()[main], rows["fold"].to_numpy()[main]
    gb = gbdt.cross_fit(rows[["id", "fold", "label"]], features, params.gbdt, params.base.seed, [0, 1, 2]).oof[main]
    tf = tfidf.cross_fit(rows, params.tfidf, [0, 1, 2]).oof[main]
    blend = cross_fitted_blend(labels, folds, [gb, tf], params.ensemble.temperature)
    for name, probs in (("gbdt", gb), ("tfidf", tf), ("blend", blend)):
        assert per_split[0][name]["log_loss"] == pytest.approx(kaggle_log_loss(labels, probs), abs=1e-4), name
    # another split, other folds: other figures; another C: other tfidf figures, same gbdt figures
    assert per_split[1]["tfidf"] != per_split[0]["tfidf"]
    assert per_split[2]["tfidf"]["log_loss"] != per_split[0]["tfidf"]["log_loss"]
    assert per_split[2]["gbdt"] == per_split[0]["gbdt"]

    base, strong = summaries
    assert base["variant"] == "base" and base["splits"] == 2 and "blend_log_loss_minus_base" not in base
    mean = (per_split[0]["tfidf"]["log_loss"] + per_split[1]["tfidf"]["log_loss"]) / 2
    assert base["tfidf_log_loss"]["mean"] == pytest.approx(mean, abs=2e-4)
    deltas = [per_split[i + 2]["tfidf"]["log_loss"] - per_split[i]["tfidf"]["log_loss"] for i in (0, 1)]
    assert strong["tfidf_log_loss_minus_base"]["mean"] == pytest.approx(np.mean(deltas), abs=2e-4)
    assert strong["tfidf_log_loss_minus_base"]["better_on"] == f"{sum(d < 0 for d in deltas)}/2"
    assert strong["gbdt_log_loss_minus_base"] == {"mean": 0.0, "sd": 0.0, "better_on": "0/2"}


def test_repeated_cv_keeps_extra_rows_out_of_every_split():
    sys.path.insert(0, str(REPO / "bench"))
    from repeated_cv import split_folds
    from arena_pref.folds import EXTRA_FOLD

    rows = pd.DataFrame({"prompt": [[f"p{i // 2}"] for i in range(30)] + [["x"]] * 4,
                         "label": [i % 3 for i in range(30)] + [0] * 4,
                         "fold": [0] * 30 + [EXTRA_FOLD] * 4})
    first, second = split_folds(rows, 3, 1), split_folds(rows, 3, 2)
    assert (first[30:] == EXTRA_FOLD).all() and (second[30:] == EXTRA_FOLD).all()
    assert set(first[:30]) == set(second[:30]) == {0, 1, 2}
    assert (first[:30] != second[:30]).any()
    assert (first[:30:2] == first[1:30:2]).all()  # rows of one prompt share a fold


def test_repeated_cv_refuses_hand_features_of_other_rows(prepared_dirs, tmp_path):
    other = tmp_path / "hand_features"
    other.mkdir()
    reversed_rows = pd.read_parquet(prepared_dirs / "hand_features" / "train.parquet").iloc[::-1]
    reversed_rows.to_parquet(other / "train.parquet")
    done = run_bench("repeated_cv.py", "--prepared", str(prepared_dirs / "prepared"), "--hand-features", str(other),
                     "--splits", "1", "--variant", "base")
    assert done.returncode != 0 and "does not hold the rows of" in done.stderr


@pytest.fixture(scope="module")
def probe_features(prepared_dirs, tiny_backbone_dir) -> Path:
    """The featurize stage's train.parquet and meta.json of the prepared_dirs rows, tiny tokenizer."""
    from transformers import AutoTokenizer

    from arena_pref.encode import encode_rows, with_swapped_copies
    from arena_pref.files import write_json, write_parquet

    rows = pd.read_parquet(prepared_dirs / "prepared" / "train.parquet")
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_dir)
    path = prepared_dirs / "token_ids" / "train.parquet"
    write_parquet(with_swapped_copies(encode_rows(rows, tokenizer, 32, 0.25, 0.5)), path)
    write_json({"pad_token_id": tokenizer.pad_token_id, "max_tokens_per_side": 32}, path.with_name("meta.json"))
    return path


def run_linear_probe(root: Path, features: Path, backbone: Path, *args: str) -> subprocess.CompletedProcess:
    return run_bench("linear_probe.py", "--features", str(features), "--prepared", str(root / "prepared"),
                     "--hand-features", str(root / "hand_features"), "--set", f"model.backbone={backbone}",
                     "--set", "prepare.n_folds=3", "--set", "gbdt.min_samples_leaf=4", "--set", "gbdt.max_iter=20",
                     "--set", "tfidf.min_df=1", *args)


def test_linear_probe_blends_each_probe_with_the_fast_members_on_each_split(prepared_dirs, probe_features,
                                                                           tiny_backbone_dir):
    done = run_linear_probe(prepared_dirs, probe_features, tiny_backbone_dir, "--splits", "42", "7",
                            "--C", "0.01", "1.0")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    per_split, summaries = lines[:6], lines[6:]
    assert [(line["split"], line["probe"]) for line in per_split] == [
        (s, p) for s in (42, 7) for p in ("stats", "text C=0.01", "text C=1")]
    for line in per_split:
        assert line["gain"] == pytest.approx(line["three"] - line["two"], abs=2e-4)
        assert 0.0 <= line["weight"] <= 1.0
    # the two-member blend is repeated_cv's on the same split and settings
    fast = [json.loads(line) for line in run_repeated_cv(prepared_dirs, "--splits", "42", "7",
                                                         "--variant", "base").stdout.splitlines()[:2]]
    assert [line["two"] for line in per_split[::3]] == [f["blend"]["log_loss"] for f in fast]
    # a different C is a different probe
    assert per_split[1]["alone"] != per_split[2]["alone"]
    for summary in summaries:
        gains = [line["gain"] for line in per_split if line["probe"] == summary["probe"]]
        assert summary["gain_mean"] == pytest.approx(np.mean(gains), abs=2e-4)
        assert summary["helps_on"] == f"{sum(g < 0 for g in gains)}/2"


def test_linear_probe_is_swap_symmetric_and_never_sees_a_validation_label():
    sys.path.insert(0, str(REPO / "bench"))
    from linear_probe import probe_oof
    from arena_pref.folds import EXTRA_FOLD
    from arena_pref.swap import swap_labels, swap_probs

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    labels = rng.integers(0, 3, size=40)
    folds = np.array([0, 1, 2, 3] * 9 + [EXTRA_FOLD] * 4)
    oof = probe_oof(a, b, labels, folds, 1.0, 0)
    assert np.isnan(oof[36:]).all() and np.allclose(oof[:36].sum(axis=1), 1.0)
    # swapping every pair swaps every prediction
    assert np.allclose(probe_oof(b, a, swap_labels(labels), folds, 1.0, 0), swap_probs(oof), atol=1e-6, equal_nan=True)
    # relabelling fold 0's rows changes no prediction of fold 0, and changes those of the other folds
    relabelled = np.where(folds == 0, (labels + 1) % 3, labels)
    again = probe_oof(a, b, relabelled, folds, 1.0, 0)
    assert np.array_equal(again[folds == 0], oof[folds == 0])
    assert not np.allclose(again[folds == 1], oof[folds == 1])


def test_linear_probe_keeps_the_stats_penalty_whatever_the_text_penalty():
    sys.path.insert(0, str(REPO / "bench"))
    from linear_probe import STATS_PROBE_C, probe_oof

    rng = np.random.default_rng(1)
    stats_a, stats_b = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    text_a, text_b = rng.normal(size=(60, 6)), rng.normal(size=(60, 6))
    margin = stats_a[:, 0] - stats_b[:, 0] + rng.normal(scale=0.5, size=60)
    labels = np.select([margin > 0.5, margin < -0.5], [0, 1], default=2)
    folds = np.arange(60) % 3
    stats_only = probe_oof(stats_a, stats_b, labels, folds, STATS_PROBE_C, 0)
    sides = np.hstack([text_a, stats_a]), np.hstack([text_b, stats_b])
    # with the text all but switched off, the probe is the stats probe
    assert np.allclose(probe_oof(*sides, labels, folds, 1.0e-6, 0, n_stats=2), stats_only, atol=2e-3)
    # without the stats' own penalty, the same tiny C switches the statistics off too: only the
    # (unpenalised) intercepts are left, one prediction for every row of a fold
    flat = probe_oof(*sides, labels, folds, 1.0e-6, 0)
    assert all(np.ptp(flat[folds == fold], axis=0).max() < 2e-3 for fold in range(3))
    assert np.ptp(stats_only[folds == 0], axis=0).max() > 0.5


def test_linear_probe_refuses_token_ids_of_other_rows(prepared_dirs, probe_features, tiny_backbone_dir, tmp_path):
    other = tmp_path / "train.parquet"
    pd.read_parquet(probe_features).iloc[4:].to_parquet(other)
    (tmp_path / "meta.json").write_text(probe_features.with_name("meta.json").read_text())
    done = run_linear_probe(prepared_dirs, other, tiny_backbone_dir, "--splits", "1", "--C", "1.0")
    assert done.returncode != 0 and "does not hold the prepared rows" in done.stderr
