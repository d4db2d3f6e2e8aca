"""The symmetric gradient-boosted-tree model (arena_pref.gbdt): swapped training copies, exact A/B
symmetry of the averaged prediction, probabilities, and cross-validation that never trains on the
held-out fold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import arena_pref.gbdt as gbdt
from arena_pref.features import pair_features, swap_feature_frame
from arena_pref.gbdt import (GbdtModel, cross_fit, cross_fit_stage, fit_gbdt, model_from_state, model_state,
                             predict_gbdt)
from arena_pref.metrics import kaggle_log_loss
from arena_pref.params import GbdtParams, load_params
from arena_pref.swap import swap_probs

# Tiny data: few rounds and small leaves, so the trees really split.
FAST = GbdtParams(learning_rate=0.1, max_iter=15, max_leaf_nodes=4, min_samples_leaf=3, l2_regularization=0.0)
SEED = 7


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """sklearn's OpenMP threads cost far more than they save on a few dozen rows (and on a busy
    machine oversubscription makes the fits 10x slower); results do not depend on the thread count."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def features(rows) -> pd.DataFrame:
    return pair_features(rows)


@pytest.fixture(scope="module")
def model(rows, features) -> GbdtModel:
    return fit_gbdt(features, rows["label"], FAST, SEED)


# ------------------------------------------------------------------------------------------ fit

def test_fit_trains_on_rows_and_their_swapped_copies(monkeypatch, rows, features):
    seen = {}
    original_fit = gbdt.HistGradientBoostingClassifier.fit

    def recording_fit(self, x, y, *args, **kwargs):
        seen["x"], seen["y"], seen["params"] = np.array(x), np.array(y), self.get_params()
        return original_fit(self, x, y, *args, **kwargs)

    monkeypatch.setattr(gbdt.HistGradientBoostingClassifier, "fit", recording_fit)
    labels = rows["label"].to_numpy()
    fit_gbdt(features, labels, FAST, SEED)
    n = len(features)
    np.testing.assert_array_equal(seen["x"][:n], features.to_numpy())
    np.testing.assert_array_equal(seen["x"][n:], swap_feature_frame(features).to_numpy())
    np.testing.assert_array_equal(seen["y"], np.concatenate([labels, np.array([1, 0, 2])[labels]]))
    assert seen["params"]["early_stopping"] is False
    assert {key: seen["params"][key] for key in dataclasses.asdict(FAST)} == dataclasses.asdict(FAST)
    assert seen["params"]["random_state"] == SEED


def test_stage_fits_with_the_gbdt_section_and_base_seed(monkeypatch, rows, features):
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    seen = []

    def recording_fit(train_features, labels, section, seed):
        seen.append((section, seed))
        return fit_gbdt(train_features, labels, FAST, SEED)  # the fast section: only the arguments matter here

    monkeypatch.setattr(gbdt, "fit_gbdt", recording_fit)
    table = pd.concat([rows[["id", "fold", "label"]], features], axis=1)  # the hand_features stage's layout
    cross_fit_stage(params, table, [0])
    assert seen == [(params.gbdt, params.base.seed)]


def test_model_state_round_trip_reads_files_with_the_old_settings_entry(model, features):
    state = model_state(model)
    assert set(state) == {"estimator", "columns"}
    for stored in (state, state | {"settings": {"learning_rate": 0.1, "early_stopping": False, "seed": 42}}):
        back = model_from_state(stored)
        np.testing.assert_array_equal(predict_gbdt(back, features), predict_gbdt(model, features))


@pytest.mark.parametrize("labels, message", [
    ([2] * 36, "at least two classes"),
    ([0] * 35 + [3], "must be 0, 1 or 2"),
    ([0] * 5, "36 feature rows but 5 labels"),
])
def test_fit_rejects_bad_labels(features, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_gbdt(features, labels, FAST, SEED)


# ------------------------------------------------------------------------------------------ predict

def test_predict_probabilities(model, features):
    probs = predict_gbdt(model, features)
    assert probs.shape == (len(features), 3) and probs.dtype == np.float64
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_predict_is_exactly_symmetric(model, features):
    forward = predict_gbdt(model, features)
    swapped = predict_gbdt(model, swap_feature_frame(features))
    np.testing.assert_array_equal(swapped, swap_probs(forward))


def test_identical_answers_get_equal_win_probabilities(model, features):
    identical = features["pair_identical"].to_numpy() == 1.0
    assert identical.any()
    probs = predict_gbdt(model, features[identical])
    np.testing.assert_array_equal(probs[:, 0], probs[:, 1])


def test_predict_is_the_mean_of_forward_and_swapped_back(model, features):
    forward = model.estimator.predict_proba(features.to_numpy())
    backward = swap_probs(model.estimator.predict_proba(swap_feature_frame(features).to_numpy()))
    np.testing.assert_array_equal(predict_gbdt(model, features), (forward + backward) / 2.0)


def test_predict_learns_something(model, rows, features):
    # On its own training rows a fitted model beats the uniform guess.
    assert kaggle_log_loss(rows["label"].to_numpy(), predict_gbdt(model, features)) < np.log(3)


def test_predict_rejects_other_columns(model, features):
    with pytest.raises(ValueError, match="unexpected"):
        predict_gbdt(model, features.assign(pair_extra=1.0))
    with pytest.raises(ValueError, match="other order"):
        predict_gbdt(model, features[list(reversed(features.columns))])


def test_predict_empty_frame(model, features):
    assert predict_gbdt(model, features.iloc[:0]).shape == (0, 3)


def test_class_missing_from_training_gets_zero_probability(features):
    labels = np.array([0, 1] * 18)  # no tie
    model = fit_gbdt(features, labels, FAST, SEED)
    probs = predict_gbdt(model, features)
    assert probs.shape == (36, 3)
    assert (probs[:, 2] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------ cross-validation

def test_cross_fit_never_trains_on_the_held_out_fold(monkeypatch, rows, features):
    seen = []
    original_fit = gbdt.fit_gbdt

    def recording_fit(train_features, labels, params, seed):
        seen.append(list(train_features.index))
        return original_fit(train_features, labels, params, seed)

    monkeypatch.setattr(gbdt, "fit_gbdt", recording_fit)
    by_id = features.set_axis(rows["id"].to_numpy())  # so the recorded index names the rows
    fit = cross_fit(rows, by_id, FAST, SEED, [0, 1, 2])
    losses = fit.fold_losses
    folds = sorted(rows["fold"].unique())
    assert folds == [0, 1, 2] and len(seen) == 3 and len(losses) == 3
    for fold, trained_ids in zip(folds, seen):
        expected = rows.loc[rows["fold"] != fold, "id"].tolist()
        assert trained_ids == expected
        assert not set(trained_ids) & set(rows.loc[rows["fold"] == fold, "id"])


def test_cross_fit_oof_and_losses(rows, features):
    fit = cross_fit(rows, features, FAST, SEED, [0, 1, 2], test_features=features.iloc[:4])
    oof = fit.oof
    assert oof.shape == (len(rows), 3) and np.isfinite(oof).all()
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    labels, folds = rows["label"].to_numpy(), rows["fold"].to_numpy()
    test_by_fold = []
    for fold, loss in fit.fold_losses.items():
        assert loss == kaggle_log_loss(labels[folds == fold], oof[folds == fold])
        # Each fold's prediction is the prediction of a model fitted on the other folds.
        model = fit_gbdt(features[folds != fold], labels[folds != fold], FAST, SEED)
        np.testing.assert_array_equal(oof[folds == fold], predict_gbdt(model, features[folds == fold]))
        test_by_fold.append(predict_gbdt(model, features.iloc[:4]))
    np.testing.assert_allclose(fit.test, np.mean(test_by_fold, axis=0))


def test_cross_fit_one_fold_leaves_the_others_unpredicted_and_trains_extra_rows(rows, features):
    extra = rows.copy()
    extra.loc[extra["fold"] == 2, "fold"] = -2  # fold 2's rows become extra training rows
    fit = cross_fit(extra, features, FAST, SEED, [0])
    in_fold0 = (extra["fold"] == 0).to_numpy()
    assert np.isfinite(fit.oof[in_fold0]).all() and np.isnan(fit.oof[~in_fold0]).all()
    assert list(fit.fold_losses) == [0] and fit.test is None
    labels = extra["label"].to_numpy()
    model = fit_gbdt(features[~in_fold0], labels[~in_fold0], FAST, SEED)
    np.testing.assert_array_equal(fit.oof[in_fold0], predict_gbdt(model, features[in_fold0]))


def test_cross_fit_ignores_held_out_labels(rows, features):
    # Changing the labels of fold 0 leaves fold 0's out-of-fold predictions exactly as they were.
    oof = cross_fit(rows, features, FAST, SEED, [0, 1, 2]).oof
    changed = rows.copy()
    in_fold0 = changed["fold"] == 0
    changed.loc[in_fold0, "label"] = (changed.loc[in_fold0, "label"] + 1) % 3
    oof_changed = cross_fit(changed, features, FAST, SEED, [0, 1, 2]).oof
    np.testing.assert_array_equal(oof_changed[in_fold0.to_numpy()], oof[in_fold0.to_numpy()])
    assert not np.array_equal(oof_changed[~in_fold0.to_numpy()], oof[~in_fold0.to_numpy()])


def test_cross_fit_rejects_unassigned_folds_and_misaligned_features(rows, features):
    with pytest.raises(ValueError, match="fold -1"):
        cross_fit(rows.assign(fold=-1), features, FAST, SEED, [0])
    with pytest.raises(ValueError, match="feature rows"):
        cross_fit(rows, features.iloc[:-1], FAST, SEED, [0])
    with pytest.raises(ValueError, match=r"folds \[7\] have no rows"):
        cross_fit(rows, features, FAST, SEED, [0, 7])
