"""The teacher table (arena_pref.teacher: the fast members' probabilities, fitted inside the training
folds) as the siamese model uses it: looked up per fold and pair, and mixed with the human label into soft
training targets (train.soft_target_weight).

Why: arena labels are noisy (a third are ties, and raters often disagree), and 1.1k training pairs give
the network few clean gradients; the fast members' probabilities are a smoother target for the part of
the signal they capture.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .folds import EXTRA_FOLD
from .labels import LABEL_COLUMNS, N_CLASSES
from .params import Params
from .swap import swap_probs
from .teacher_prior import with_teacher_stats

VALID_FOLD = "valid_fold"  # the teacher table's column naming the validation fold whose model a row is for


@dataclass(frozen=True)
class Teacher:
    """The teacher stage's table, the file it came from (for messages) and that file's sha256 (part of
    the training run's fingerprint, so that a run is not resumed with other targets or inputs)."""

    table: pd.DataFrame | None
    path: str | None
    digest: str | None


NO_TEACHER = Teacher(None, None, None)  # neither soft targets nor the teacher prior: the labels alone


def teacher_mean(gbdt_probs: np.ndarray, tfidf_probs: np.ndarray) -> np.ndarray:
    """The teacher's probabilities: the mean of the two fast members' (n, 3) probabilities."""
    return (gbdt_probs + tfidf_probs) / 2.0


def uses_teacher(params: Params) -> bool:
    """Whether a siamese run reads the teacher table: for soft targets, or for the teacher prior."""
    return bool(params.train.soft_target_weight) or params.model.teacher_prior


def read_teacher(path: str) -> Teacher:
    if not Path(path).is_file():
        raise InputError(f"{path} not found: train.soft_target_weight > 0 and model.teacher_prior need the "
                         "teacher stage's table (dvc repro runs it)")
    data = Path(path).read_bytes()  # read once: parsed and hashed from the same bytes
    return Teacher(pd.read_parquet(io.BytesIO(data)), path, hashlib.sha256(data).hexdigest())


def pair_teacher_probs(pairs: pd.DataFrame, teacher: Teacher, fold: int) -> np.ndarray:
    """(n, 3) teacher probabilities for fold `fold`'s model, one row per row of `pairs` (featurized pairs:
    id, fold, swapped), A and B exchanged for a swapped copy; NaN for extra rows (fold -2), which have
    none. A pair without a teacher row raises an InputError naming the teacher's file."""
    of_fold = teacher.table[teacher.table[VALID_FOLD] == fold].set_index("id")
    needs_teacher = (pairs["fold"] != EXTRA_FOLD).to_numpy()
    ids = pairs["id"].astype(str)
    missing = needs_teacher & ~ids.isin(of_fold.index).to_numpy()
    if missing.any():
        raise InputError(f"{teacher.path}: no teacher probabilities for validation fold {fold} and pair id "
                         f"{ids[missing].iloc[0]!r} ({int(missing.sum())} pairs in all): rerun the teacher stage")
    probs = np.full((len(pairs), N_CLASSES), np.nan)
    probs[needs_teacher] = of_fold.loc[ids[needs_teacher], list(LABEL_COLUMNS)].to_numpy(dtype=np.float64)
    # A swapped copy (its label already swapped by featurize) shares its original pair's teacher row.
    flip = pairs["swapped"].to_numpy() & needs_teacher
    probs[flip] = swap_probs(probs[flip])
    return probs


def mixed_targets(train_pairs: pd.DataFrame, teacher: Teacher, fold: int, weight: float) -> np.ndarray | None:
    """(n, 3) training targets of fold `fold`'s model, one row per row of `train_pairs` (featurized pairs:
    id, fold, label, swapped): (1 - weight) x one-hot(label) + weight x the teacher's probabilities for
    this fold (`pair_teacher_probs`). Extra rows (fold -2) keep their one-hot label. None for weight 0:
    the loop then trains on the labels themselves."""
    if not weight:
        return None
    one_hot = np.eye(N_CLASSES)[train_pairs["label"].to_numpy()]
    teacher_probs = pair_teacher_probs(train_pairs, teacher, fold)
    extra = np.isnan(teacher_probs).any(axis=1)
    teacher_probs[extra] = one_hot[extra]
    return (1.0 - weight) * one_hot + weight * teacher_probs


def with_fold_teacher_stats(pairs: pd.DataFrame, teacher: Teacher, fold: int) -> pd.DataFrame:
    """Featurized training or validation pairs of fold `fold`'s model with the teacher prior's inputs
    (teacher_prior.with_teacher_stats) from the teacher table."""
    return with_teacher_stats(pairs, pair_teacher_probs(pairs, teacher, fold))
