"""A symmetric gradient-boosted-tree model on the hand-made pair features (arena_pref.features).

Symmetric twice over:
  * `fit_gbdt` trains on every row and on its A/B-swapped copy (features `swap_feature_frame`, label
    `swap_labels`), so the trees see no position of the better answer;
  * `predict_gbdt` averages the prediction with the swapped-back prediction of the swapped features
    (test-time augmentation), which makes it exactly symmetric:
        predict_gbdt(model, swap_feature_frame(F)) == swap_probs(predict_gbdt(model, F)).

Nothing is fitted on validation rows: the features are per-row functions, the trees (and their
feature binning) are fitted inside `fit_gbdt` on the training rows only, and early stopping is off by
default (sklearn's early stopping would hold out part of the *training* rows, and with swapped copies
a row and its twin could sit on both sides of that split).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from . import crossfit
from .crossfit import KEY_COLUMNS, CrossFit, check_class_labels, class_probs
from .features import swap_feature_frame
from .params import Params
from .swap import swap_labels, swap_probs


@dataclass(frozen=True)
class GbdtSettings:
    """Hyper-parameters of `HistGradientBoostingClassifier`.

    Defaults chosen by 5-fold CV on 1.4k labelled rows (about 1.1k training rows per fold, 2.2k with
    the swapped copies): 4-leaf trees, a low learning rate, and about 200 rounds, where the validation
    log loss is flat (175-250) before it starts to rise. `min_samples_leaf` counts the swapped copies
    too, so 50 is about 25 original pairs.
    """

    learning_rate: float = 0.02
    max_iter: int = 200
    max_leaf_nodes: int = 4
    min_samples_leaf: int = 50
    l2_regularization: float = 1.0
    early_stopping: bool = False
    seed: int = 42

    def __post_init__(self):
        checks = [
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.max_iter >= 1, "max_iter must be >= 1"),
            (self.max_leaf_nodes >= 2, "max_leaf_nodes must be >= 2"),
            (self.min_samples_leaf >= 1, "min_samples_leaf must be >= 1"),
            (self.l2_regularization >= 0, "l2_regularization must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"GbdtSettings: {message}")


def settings_from_params(params: Params) -> GbdtSettings:
    """The gbdt stage's settings: gbdt.* and base.seed. Early stopping stays off: it would hold out a
    random part of the training rows, and a row and its swapped copy could land on both sides of that split."""
    return GbdtSettings(**dataclasses.asdict(params.gbdt), early_stopping=False, seed=params.base.seed)


@dataclass
class GbdtModel:
    """A fitted classifier and the feature columns it expects, in order."""

    estimator: HistGradientBoostingClassifier
    columns: list[str]
    settings: GbdtSettings


def model_state(model: GbdtModel) -> dict:
    """The model as plain containers for a skops file (sklearn_files.save_state)."""
    return {"estimator": model.estimator, "columns": list(model.columns), "settings": dataclasses.asdict(model.settings)}


def model_from_state(state: dict) -> GbdtModel:
    return GbdtModel(state["estimator"], list(state["columns"]), GbdtSettings(**state["settings"]))


def _matrix(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if list(features.columns) != columns:
        missing = [c for c in columns if c not in features.columns]
        extra = [c for c in features.columns if c not in columns]
        raise ValueError(f"feature columns differ from the model's: missing {missing}, unexpected {extra}"
                         + ("" if missing or extra else " (same names, other order)"))
    return features.to_numpy(dtype=np.float64)


def fit_gbdt(features: pd.DataFrame, labels, settings: GbdtSettings) -> GbdtModel:
    """Fit on the rows of `features` (labels 0/1/2) and on their A/B-swapped copies."""
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
        loss="log_loss", learning_rate=settings.learning_rate, max_iter=settings.max_iter,
        max_leaf_nodes=settings.max_leaf_nodes, min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization, early_stopping=settings.early_stopping,
        random_state=settings.seed)
    estimator.fit(x, y)
    return GbdtModel(estimator=estimator, columns=columns, settings=settings)


def _raw_probs(model: GbdtModel, features: pd.DataFrame) -> np.ndarray:
    return class_probs(model.estimator, _matrix(features, model.columns))


def predict_gbdt(model: GbdtModel, features: pd.DataFrame) -> np.ndarray:
    """(n, 3) probabilities (A wins, B wins, tie): the mean of the prediction on `features` and the
    swapped-back prediction on the swapped features."""
    forward = _raw_probs(model, features)
    backward = swap_probs(_raw_probs(model, swap_feature_frame(features)))
    return (forward + backward) / 2.0


def cross_fit(rows: pd.DataFrame, features: pd.DataFrame, settings: GbdtSettings, valid_folds: list[int],
              test_features: pd.DataFrame | None = None) -> CrossFit:
    """Out-of-fold and test probabilities of one model per validation fold (`crossfit.cross_fit`).
    `features` holds one row per row of `rows` (columns fold and label), in the same order."""
    if len(features) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(features)} feature rows")
    labels = rows["label"].to_numpy(dtype=np.int64)
    return crossfit.cross_fit(
        rows, valid_folds,
        fit=lambda train: fit_gbdt(features.iloc[train], labels[train], settings),
        predict=lambda model, valid: predict_gbdt(model, features.iloc[valid]),
        predict_test=None if test_features is None else lambda model: predict_gbdt(model, test_features),
        desc="gbdt folds")


def cross_fit_stage(params: Params, train: pd.DataFrame, valid_folds: list[int],
                    test: pd.DataFrame | None = None) -> CrossFit:
    """The gbdt stage's cross-fit: settings from params (`settings_from_params`) on the hand_features
    stage's tables (id, fold, label, then the features; test with the same columns)."""
    return cross_fit(train[KEY_COLUMNS], train.drop(columns=KEY_COLUMNS), settings_from_params(params), valid_folds,
                     None if test is None else test.drop(columns=KEY_COLUMNS))
