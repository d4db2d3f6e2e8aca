"""A symmetric text model: TF-IDF of the two answers, compared, then logistic regression.

Each answer (its turns joined by a blank line) becomes a TF-IDF vector x_A, x_B (character n-grams
within word boundaries by default: they see wording, punctuation, markdown and casing that word
counts miss). The pair is [x_A - x_B, |x_A - x_B|]: the difference says which side has more of what,
the absolute difference says how alike the answers are (the tie signal). A multinomial logistic
regression reads it.

Symmetric like the feature model: trained on every row and its A/B-swapped copy, and the prediction
is the mean of the forward and the swapped-back prediction, so
    predict_tfidf(model, swapped rows) == swap_probs(predict_tfidf(model, rows)).
The vocabulary and IDF weights are fitted on the training rows' answers only. The hyper-parameters
are params.yaml's tfidf section (params.TfidfParams, range-checked there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from . import crossfit
from .crossfit import CrossFit, check_class_labels, class_probs
from .params import Params, TfidfParams
from .swap import swap_labels, swap_probs
from .text import join_turns


@dataclass
class TfidfModel:
    vectorizer: TfidfVectorizer
    classifier: LogisticRegression


def model_state(model: TfidfModel) -> dict:
    """The model as plain containers for a skops file (sklearn_files.save_state)."""
    return {"vectorizer": model.vectorizer, "classifier": model.classifier}


def model_from_state(state: dict) -> TfidfModel:
    return TfidfModel(state["vectorizer"], state["classifier"])


def answer_texts(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(texts of side A, texts of side B) of clean rows (response_a / response_b: sequences of turns)."""
    def join(column: str) -> list[str]:
        return [join_turns(turns) for turns in rows[column]]
    return join("response_a"), join("response_b")


def _pair_matrix(x_first: sp.csr_matrix, x_second: sp.csr_matrix) -> sp.csr_matrix:
    difference = x_first - x_second
    return sp.hstack([difference, abs(difference)]).tocsr()


def fit_tfidf(rows: pd.DataFrame, labels, params: TfidfParams) -> TfidfModel:
    """Fit the vocabulary on these rows' answers and the classifier on the rows and their swapped copies."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(rows) or len(rows) == 0:
        raise ValueError(f"{len(rows)} rows and {len(labels)} labels: need the same, non-zero number")
    check_class_labels(labels)
    texts_a, texts_b = answer_texts(rows)
    vectorizer = TfidfVectorizer(analyzer=params.analyzer, ngram_range=(params.ngram_min, params.ngram_max),
                                 min_df=params.min_df, max_features=params.max_features, sublinear_tf=True,
                                 dtype=np.float64)
    vectorizer.fit(texts_a + texts_b)
    x_a, x_b = vectorizer.transform(texts_a), vectorizer.transform(texts_b)
    x = sp.vstack([_pair_matrix(x_a, x_b), _pair_matrix(x_b, x_a)])
    y = np.concatenate([labels, swap_labels(labels)])
    classifier = LogisticRegression(C=params.C, max_iter=5000)
    classifier.fit(x, y)
    return TfidfModel(vectorizer=vectorizer, classifier=classifier)


def predict_tfidf(model: TfidfModel, rows: pd.DataFrame) -> np.ndarray:
    """(n, 3) probabilities (A wins, B wins, tie), the mean of the forward and swapped-back predictions."""
    texts_a, texts_b = answer_texts(rows)
    x_a, x_b = model.vectorizer.transform(texts_a), model.vectorizer.transform(texts_b)
    forward = class_probs(model.classifier, _pair_matrix(x_a, x_b))
    backward = swap_probs(class_probs(model.classifier, _pair_matrix(x_b, x_a)))
    return (forward + backward) / 2.0


def cross_fit(rows: pd.DataFrame, params: TfidfParams, valid_folds: list[int],
              test_rows: pd.DataFrame | None = None) -> CrossFit:
    """Out-of-fold and test probabilities of one model per validation fold (`crossfit.cross_fit`);
    `rows` are clean rows with columns fold and label."""
    labels = rows["label"].to_numpy(dtype=np.int64)
    return crossfit.cross_fit(
        rows, valid_folds,
        fit=lambda train: fit_tfidf(rows.iloc[train], labels[train], params),
        predict=lambda model, valid: predict_tfidf(model, rows.iloc[valid]),
        predict_test=None if test_rows is None else lambda model: predict_tfidf(model, test_rows),
        desc="tfidf folds")


def cross_fit_stage(params: Params, train: pd.DataFrame, valid_folds: list[int],
                    test: pd.DataFrame | None = None) -> CrossFit:
    """The tfidf stage's cross-fit: tfidf.* on the prepare stage's clean rows."""
    return cross_fit(train, params.tfidf, valid_folds, test)
