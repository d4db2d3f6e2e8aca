"""Soft training targets of the siamese model (train.soft_target_weight): the human label mixed with
the teacher's probabilities (arena_pref.teacher: the fast members, fitted inside the training folds).

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
from .swap import swap_probs

VALID_FOLD = "valid_fold"  # the teacher table's column naming the validation fold a row is the target for


@dataclass(frozen=True)
class Teacher:
    """The teacher stage's table, the file it came from (for messages) and that file's sha256 (part of
    the training run's fingerprint, so that a run is not resumed with other targets)."""

    table: pd.DataFrame | None
    path: str | None
    digest: str | None


NO_TEACHER = Teacher(None, None, None)  # train.soft_target_weight 0: the labels alone


def read_teacher(path: str) -> Teacher:
    if not Path(path).is_file():
        raise InputError(f"{path} not found: train.soft_target_weight > 0 needs the teacher stage's table "
                         "(dvc repro runs it)")
    data = Path(path).read_bytes()  # read once: parsed and hashed from the same bytes
    return Teacher(pd.read_parquet(io.BytesIO(data)), path, hashlib.sha256(data).hexdigest())


def mixed_targets(train_pairs: pd.DataFrame, teacher: Teacher, fold: int, weight: float) -> np.ndarray | None:
    """(n, 3) training targets of fold `fold`'s model, one row per row of `train_pairs` (featurized pairs:
    id, fold, label, swapped): (1 - weight) x one-hot(label) + weight x the teacher's probabilities for
    this fold, A and B exchanged for a swapped copy. Extra rows (fold -2) keep their one-hot label.
    None for weight 0: the loop then trains on the labels themselves. A training pair without a teacher
    row raises an InputError naming the teacher's file."""
    if not weight:
        return None
    one_hot = np.eye(N_CLASSES)[train_pairs["label"].to_numpy()]
    of_fold = teacher.table[teacher.table[VALID_FOLD] == fold].set_index("id")
    needs_teacher = (train_pairs["fold"] != EXTRA_FOLD).to_numpy()
    ids = train_pairs["id"].astype(str)
    missing = needs_teacher & ~ids.isin(of_fold.index).to_numpy()
    if missing.any():
        raise InputError(f"{teacher.path}: no teacher probabilities for validation fold {fold} and training pair id "
                         f"{ids[missing].iloc[0]!r} ({int(missing.sum())} pairs in all): rerun the teacher stage")
    teacher_probs = one_hot.copy()
    teacher_probs[needs_teacher] = of_fold.loc[ids[needs_teacher], list(LABEL_COLUMNS)].to_numpy(dtype=np.float64)
    # A swapped copy's label (so its one-hot) is already swapped; the teacher's row is the original pair's.
    flip = train_pairs["swapped"].to_numpy() & needs_teacher
    teacher_probs[flip] = swap_probs(teacher_probs[flip])
    return (1.0 - weight) * one_hot + weight * teacher_probs
