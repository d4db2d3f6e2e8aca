"""A symmetric gradient-boosted-tree model on the hand-made pair features (arena_pref.features).

Symmetric twice over:
  * `fit_gbdt` trains on every row and on its A/B-swapped copy (features `swap_feature_frame`, label
    `swap_labels`), so the trees see no position of the better answer;
  * `predict_gbdt` averages the prediction with the swapped-back prediction of the swapped features
    (test-time augmentation), which makes it exactly symmetric:
        predict_gbdt(model, swap_feature_frame(F)) == swap_probs(predict_gbdt(model, F)).

Nothing is fitted on validation rows: the features are per-row functions, the trees (and their
feature binning) are fitted inside `fit_gbdt` on the training rows only, and early stopping is always
off (sklearn's early stopping would hold out a random part of the *training* rows, and with swapped
copies a row and its twin could sit on both sides of that split).

The hyper-parameters are params.yaml's gbdt section (params.GbdtParams, range-checked there) and
base.seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from . import crossfit
from .crossfit import KEY_COLUMNS, CrossFit, check_class_labels, class_probs
from .features import swap_feature_frame
from .params import GbdtParams, Params
from .swap import swap_labels, swap_probs


@dataclass
class GbdtModel:
    """A fitted classifier (its hyper-parameters: estimator.get_params()) and the feature columns it
    expects, in order."""

    estimator: HistGradientBoostingClassifier
    columns: list[str]


def model_state(model: GbdtModel) -> dict:
    """The model as plain containers for a skops file (sklearn_files.save_state)."""
    return {"estimator": model.estimator, "columns": list(model.columns)}


def model_from_state(state: dict) -> GbdtModel:
    # Older files also hold a "settings" entry: it repeated the estimator's own parameters and is not read.
    return GbdtModel(state["estimator"], list(state["columns"]))


def _matrix(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if list(features.columns) != columns:
        missing = [c for c in columns if c not in features.columns]
        extra = [c for c in features.columns if c not in columns]
        raise ValueError(f"feature columns differ from the model's: missing {missing}, unexpected {extra}"
                         + ("" if missing or extra else " (same names, other order)"))
    return features.to_numpy(dtype=np.float64)


def fit_gbdt(features: pd.DataFrame, labels, params: GbdtParams, seed: int) -> GbdtModel:
    """Fit on the rows of `features` (labels 0/1/2) and on their A/B-swapped copies; `seed` is the
    estimator's random_state."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no rows to fit")
    check_class_labels(labels)
    columns = list(features.columns)
    x = np.concatenate([_matrix(features, columns), _matrix(swap_feature_frame(features), columns)])
    y = np.concatenate([labels, swap_labels(labels)])
    estimator = HistGradientBoostingClassifier(
        loss="log_loss", learning_rate=params.learning_rate, max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes, min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization, early_stopping=False,  # see the module docstring
        random_state=seed)
    estimator.fit(x, y)
    return GbdtModel(estimator=estimator, columns=columns)


def _raw_probs(model: GbdtModel, features: pd.DataFrame) -> np.ndarray:
    return class_probs(model.estimator, _matrix(features, model.columns))


def predict_gbdt(model: GbdtModel, features: pd.DataFrame) -> np.ndarray:
    """(n, 3) probabilities (A wins, B wins, tie): the mean of the prediction on `features` and the
    swapped-back prediction on the swapped features."""
    forward = _raw_probs(model, features)
    backward = swap_probs(_raw_probs(model, swap_feature_frame(features)))
    return (forward + backward) / 2.0


def cross_fit(rows: pd.DataFrame, features: pd.DataFrame, params: GbdtParams, seed: int, valid_folds: list[int],
              test_features: pd.DataFrame | None = None) -> CrossFit:
    """Out-of-fold and test probabilities of one model per validation fold (`crossfit.cross_fit`), each
    fitted by `fit_gbdt(..., params, seed)`. `features` holds one row per row of `rows` (columns fold and
    label), in the same order."""
    if len(features) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(features)} feature rows")
    labels = rows["label"].to_numpy(dtype=np.int64)
    return crossfit.cross_fit(
        rows, valid_folds,
        fit=lambda train: fit_gbdt(features.iloc[train], labels[train], params, seed),
        predict=lambda model, valid: predict_gbdt(model, features.iloc[valid]),
        predict_test=None if test_features is None else lambda model: predict_gbdt(model, test_features),
        desc="gbdt folds")


def cross_fit_stage(params: Params, train: pd.DataFrame, valid_folds: list[int],
                    test: pd.DataFrame | None = None) -> CrossFit:
    """The gbdt stage's cross-fit: gbdt.* and base.seed on the hand_features stage's tables (id, fold,
    label, then the features; test with the same columns)."""
    return cross_fit(train[KEY_COLUMNS], train.drop(columns=KEY_COLUMNS), params.gbdt, params.base.seed,
                     valid_folds, None if test is None else test.drop(columns=KEY_COLUMNS))
