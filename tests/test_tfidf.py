"""The TF-IDF text member (arena_pref.tfidf): exact A/B symmetry, swapped training copies, a vocabulary
fitted on training rows only, and cross-validation that never sees the held-out fold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import arena_pref.tfidf as tfidf
from arena_pref.metrics import kaggle_log_loss
from arena_pref.params import TfidfParams, load_params
from arena_pref.swap import swap_probs
from arena_pref.tfidf import cross_fit, cross_fit_stage, fit_tfidf, predict_tfidf

SMALL = TfidfParams(analyzer="char_wb", ngram_min=2, ngram_max=4, min_df=1, max_features=5000, C=1.0)


@pytest.fixture(scope="module")
def model(rows):
    return fit_tfidf(rows, rows["label"], SMALL)


def swapped(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(response_a=rows["response_b"], response_b=rows["response_a"])


def test_predict_is_exactly_symmetric_and_sums_to_one(model, rows):
    probs = predict_tfidf(model, rows)
    assert probs.shape == (len(rows), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(predict_tfidf(model, swapped(rows)), swap_probs(probs), rtol=0, atol=1e-12)


def test_identical_answers_get_equal_win_probabilities(model, rows):
    same = rows.assign(response_b=rows["response_a"])
    probs = predict_tfidf(model, same)
    np.testing.assert_allclose(probs[:, 0], probs[:, 1], rtol=0, atol=1e-12)


def test_trains_on_rows_and_their_swapped_copies(monkeypatch, rows):
    seen = {}
    original = tfidf.LogisticRegression.fit

    def recording_fit(self, x, y):
        seen["n"], seen["labels"] = x.shape[0], np.asarray(y)
        return original(self, x, y)

    monkeypatch.setattr(tfidf.LogisticRegression, "fit", recording_fit)
    labels = rows["label"].to_numpy()
    fit_tfidf(rows, labels, SMALL)
    assert seen["n"] == 2 * len(rows)
    swapped_labels = np.array([(1, 0, 2)[label] for label in labels])
    np.testing.assert_array_equal(seen["labels"], np.concatenate([labels, swapped_labels]))


def test_learns_the_training_labels(model, rows):
    # Fitted on these very rows, it must beat the uniform prediction (log 3) on them.
    assert kaggle_log_loss(rows["label"].to_numpy(), predict_tfidf(model, rows)) < np.log(3) - 0.05


def test_vocabulary_comes_from_the_training_rows_only(rows):
    marked = rows.copy()
    in_fold0 = (marked["fold"] == 0).to_numpy()
    marked.loc[in_fold0, "response_a"] = [["zqxjv " + " ".join(turns)] for turns in marked.loc[in_fold0, "response_a"]]
    words = dataclasses.replace(SMALL, analyzer="word", ngram_min=1, ngram_max=1, max_features=20000)
    model = fit_tfidf(marked[~in_fold0], marked["label"][~in_fold0], words)
    assert "zqxjv" not in model.vectorizer.vocabulary_


def test_cross_fit_matches_models_fitted_on_the_other_folds(rows):
    fit = cross_fit(rows, SMALL, [0, 1, 2], test_rows=rows.iloc[:4])
    labels, folds = rows["label"].to_numpy(), rows["fold"].to_numpy()
    assert np.isfinite(fit.oof).all()
    tests = []
    for fold in (0, 1, 2):
        model = fit_tfidf(rows[folds != fold], labels[folds != fold], SMALL)
        np.testing.assert_allclose(fit.oof[folds == fold], predict_tfidf(model, rows[folds == fold]), atol=1e-12)
        assert fit.fold_losses[fold] == kaggle_log_loss(labels[folds == fold], fit.oof[folds == fold])
        tests.append(predict_tfidf(model, rows.iloc[:4]))
    np.testing.assert_allclose(fit.test, np.mean(tests, axis=0), atol=1e-12)


def test_cross_fit_ignores_held_out_labels(rows):
    oof = cross_fit(rows, SMALL, [0, 1, 2]).oof
    changed = rows.copy()
    in_fold0 = (changed["fold"] == 0).to_numpy()
    changed.loc[in_fold0, "label"] = (changed.loc[in_fold0, "label"] + 1) % 3
    np.testing.assert_array_equal(cross_fit(changed, SMALL, [0, 1, 2]).oof[in_fold0], oof[in_fold0])


@pytest.mark.parametrize("labels, message", [
    ([2] * 36, "every label is a tie"),
    ([0] * 35 + [3], "labels must be 0, 1 or 2"),
    ([0] * 10, "36 rows and 10 labels"),
])
def test_fit_rejects_bad_labels(rows, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_tfidf(rows, labels, SMALL)


def test_fit_uses_every_value_of_the_section(model):
    vectorizer = model.vectorizer
    assert (vectorizer.analyzer, vectorizer.ngram_range, vectorizer.min_df, vectorizer.max_features) == (
        SMALL.analyzer, (SMALL.ngram_min, SMALL.ngram_max), SMALL.min_df, SMALL.max_features)
    assert model.classifier.C == SMALL.C


def test_stage_cross_fits_with_the_tfidf_section(rows):
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    stage = cross_fit_stage(params, rows, [0], test=rows.iloc[:4])
    direct = cross_fit(rows, params.tfidf, [0], test_rows=rows.iloc[:4])
    np.testing.assert_array_equal(stage.oof, direct.oof)
    np.testing.assert_array_equal(stage.test, direct.test)
