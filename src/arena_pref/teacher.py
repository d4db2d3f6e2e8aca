"""The teacher of the siamese model: the fast members' probabilities (the mean of gbdt's and tfidf's),
computed so that no label leaks. The soft targets mix them into the training targets
(train.soft_target_weight), and the teacher prior reads them as inputs (model.teacher_prior);
arena_pref.soft_targets uses the table.

For the model of validation fold k, a training row of fold j gets the probabilities of gbdt and tfidf
models fitted on the rows outside folds k and j: a cross-fit inside the training folds. A row of fold k
itself gets those of the models fitted outside fold k, as the gbdt and tfidf stages predict it. So fold
k's labels never reach its model's targets or inputs, and no row's own label reaches its own teacher
probability. Extra training rows (fold -2) train every inner model and are never predicted out of fold:
they get no teacher row, and their target stays the human label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import gbdt, tfidf
from .errors import InputError
from .folds import EXTRA_FOLD
from .labels import LABEL_COLUMNS
from .params import Params
from .predictions import probs_frame
from .soft_targets import VALID_FOLD, teacher_mean

TEACHER_COLUMNS = [VALID_FOLD, "id", *LABEL_COLUMNS]


def nested_teacher(prepared: pd.DataFrame, hand_features: pd.DataFrame, params: Params,
                   valid_folds: list[int]) -> pd.DataFrame:
    """The teacher table (TEACHER_COLUMNS): one row per validation fold k in `valid_folds` and row of a
    fold (k's validation rows included). `prepared` (the prepare stage's clean rows) and `hand_features` (the
    hand_features stage's table) hold the same rows in the same order; gbdt.* and tfidf.* as the members."""
    if not prepared["id"].astype(str).equals(hand_features["id"].astype(str)):
        raise InputError("the prepared rows and the hand features hold different ids or orders: rerun the "
                         "hand_features stage")
    folds = prepared["fold"].to_numpy()
    ids = prepared["id"].astype(str).to_numpy()
    frames = []
    if valid_folds:  # the validation rows: the fast members' out-of-fold probabilities
        probs = teacher_mean(gbdt.cross_fit_stage(params, hand_features, valid_folds).oof,
                             tfidf.cross_fit_stage(params, prepared, valid_folds).oof)
        in_valid = np.isin(folds, valid_folds)
        frames.append(probs_frame(ids[in_valid], probs[in_valid], **{VALID_FOLD: folds[in_valid]})[TEACHER_COLUMNS])
    for fold in valid_folds:
        inside = folds != fold
        inner_folds = sorted(set(folds[inside].tolist()) - {EXTRA_FOLD})
        fast_gbdt = gbdt.cross_fit_stage(params, hand_features[inside].reset_index(drop=True), inner_folds)
        fast_tfidf = tfidf.cross_fit_stage(params, prepared[inside].reset_index(drop=True), inner_folds)
        probs = teacher_mean(fast_gbdt.oof, fast_tfidf.oof)
        predicted = ~np.isnan(probs).any(axis=1)  # the extra rows are never predicted
        frames.append(probs_frame(ids[inside][predicted], probs[predicted], **{VALID_FOLD: fold})[TEACHER_COLUMNS])
    if not frames:  # neither soft targets nor the teacher prior: no fold needs a teacher
        return pd.DataFrame({VALID_FOLD: pd.Series(dtype=np.int64), "id": pd.Series(dtype=str),
                             **{column: pd.Series(dtype=np.float64) for column in LABEL_COLUMNS}})
    return pd.concat(frames, ignore_index=True).sort_values(VALID_FOLD, kind="stable", ignore_index=True)
