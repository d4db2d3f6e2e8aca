"""Soft targets (train.soft_target_weight): the teacher is cross-fitted inside the training folds, so no
validation label and no row's own label reaches its target, and the mixed targets are exact."""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from threadpoolctl import threadpool_limits

from arena_pref import gbdt, tfidf
from arena_pref.errors import InputError
from arena_pref.features import pair_features
from arena_pref.folds import EXTRA_FOLD, split_fold
from arena_pref.labels import LABEL_COLUMNS, TIE
from arena_pref.loop import train
from arena_pref.params import load_params
from arena_pref.precision import resolve_precision
from arena_pref.resume import run_fingerprint
from arena_pref.soft_targets import NO_TEACHER, VALID_FOLD, Teacher, mixed_targets, teacher_mean
from arena_pref.swap import swap_labels, swap_probs
from arena_pref.teacher import TEACHER_COLUMNS, nested_teacher
from conftest import REPO_ROOT, make_train_dir, train_command
from helpers import pairs, params, tiny_model


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """As in test_gbdt: sklearn's OpenMP threads slow fits of a few dozen rows (results do not change)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def small_params():
    p = load_params(REPO_ROOT / "params.yaml")
    return dataclasses.replace(p, gbdt=dataclasses.replace(p.gbdt, max_iter=10, min_samples_leaf=3),
                               tfidf=dataclasses.replace(p.tfidf, min_df=1, max_features=2000))


def hand_features_of(prepared: pd.DataFrame) -> pd.DataFrame:
    """The hand_features stage's table of `prepared`."""
    features = pair_features(prepared)
    for position, column in enumerate(("id", "fold", "label")):
        features.insert(position, column, prepared[column].to_numpy())
    return features


def teacher_of(prepared: pd.DataFrame, small_params) -> pd.DataFrame:
    return nested_teacher(prepared, hand_features_of(prepared), small_params, [0, 1, 2])


@pytest.fixture(scope="module")
def teacher(rows, small_params):
    return teacher_of(rows, small_params)


def of_fold(teacher: pd.DataFrame, fold: int) -> pd.DataFrame:
    return teacher[teacher[VALID_FOLD] == fold].reset_index(drop=True)


def test_teacher_has_one_row_per_row_of_each_folds_model(rows, teacher, small_params):
    assert list(teacher.columns) == TEACHER_COLUMNS
    for fold in (0, 1, 2):  # the training rows and the validation rows
        assert sorted(of_fold(teacher, fold)["id"]) == sorted(rows["id"])
    probs = teacher[list(LABEL_COLUMNS)].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    # A validation row gets the fast members' out-of-fold probabilities, as their stages write them.
    members_oof = teacher_mean(gbdt.cross_fit_stage(small_params, hand_features_of(rows), [0, 1, 2]).oof,
                               tfidf.cross_fit_stage(small_params, rows, [0, 1, 2]).oof)
    own = teacher.merge(rows[["id", "fold"]], on="id")
    own = own[own[VALID_FOLD] == own["fold"]].set_index("id").loc[rows["id"]]
    np.testing.assert_array_equal(own[list(LABEL_COLUMNS)].to_numpy(), members_oof)


def test_relabelling_the_validation_fold_leaves_its_teacher_bit_for_bit(rows, teacher, small_params):
    relabelled = rows.copy()
    in_fold_0 = relabelled["fold"] == 0
    relabelled.loc[in_fold_0, "label"] = swap_labels(relabelled.loc[in_fold_0, "label"].to_numpy())
    relabelled.loc[in_fold_0 & (relabelled["label"] == TIE), "label"] = 0
    after = teacher_of(relabelled, small_params)
    pd.testing.assert_frame_equal(of_fold(after, 0), of_fold(teacher, 0))
    # The relabelled rows do train the teachers of the other folds' models.
    assert not of_fold(after, 1).equals(of_fold(teacher, 1))


def test_no_rows_own_label_reaches_its_teacher_probability(rows, teacher, small_params):
    row = rows.index[rows["fold"] == 2][0]
    relabelled = rows.copy()
    relabelled.loc[row, "label"] = (relabelled.loc[row, "label"] + 1) % 3
    after = teacher_of(relabelled, small_params)
    own = teacher["id"] == rows.loc[row, "id"]
    pd.testing.assert_frame_equal(after[own], teacher[own])
    assert not after[~own].equals(teacher[~own])  # it reaches the other rows' teachers


def test_extra_rows_train_the_teacher_but_get_no_row(rows, small_params):
    with_extra = rows.copy()
    with_extra.loc[with_extra["fold"] == 2, "fold"] = EXTRA_FOLD
    teacher = nested_teacher(with_extra, hand_features_of(with_extra), small_params, [0, 1])
    for fold in (0, 1):
        assert sorted(of_fold(teacher, fold)["id"]) == sorted(with_extra.loc[with_extra["fold"] != EXTRA_FOLD, "id"])


def test_teacher_rejects_hand_features_of_other_rows(rows, small_params):
    features = hand_features_of(rows).iloc[::-1].reset_index(drop=True)
    with pytest.raises(InputError, match="rerun the hand_features stage"):
        nested_teacher(rows, features, small_params, [0])


def featurized(ids, folds, labels, swapped) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "fold": folds, "label": labels, "swapped": swapped})


TEACHER = Teacher(pd.DataFrame({VALID_FOLD: [0, 0, 1], "id": ["a", "b", "a"], "winner_model_a": [0.5, 0.1, 0.9],
                                "winner_model_b": [0.2, 0.6, 0.05], "winner_tie": [0.3, 0.3, 0.05]}),
                  "t.parquet", None)


def test_mixed_targets_are_exact():
    # a; b's swapped copy (a tie: it stays a tie); an extra row, which has no teacher.
    train_pairs = featurized(["a", "b", "x"], [1, 2, EXTRA_FOLD], [0, TIE, 1], [False, True, False])
    targets = mixed_targets(train_pairs, TEACHER, fold=0, weight=0.25)
    np.testing.assert_allclose(targets, [[0.875, 0.05, 0.075], [0.15, 0.025, 0.825], [0.0, 1.0, 0.0]], atol=1e-15)
    assert mixed_targets(train_pairs, NO_TEACHER, fold=0, weight=0.0) is None  # the loop trains on the labels


def test_a_swapped_copy_gets_the_swapped_target():
    original = featurized(["a", "b"], [1, 2], [0, 1], [False, False])
    copies = featurized(["a", "b"], [1, 2], swap_labels(np.array([0, 1])), [True, True])
    forward = mixed_targets(original, TEACHER, 0, 0.4)
    backward = mixed_targets(copies, TEACHER, 0, 0.4)
    np.testing.assert_array_equal(backward, swap_probs(forward))
    np.testing.assert_array_equal(swap_probs(backward), forward)


def test_missing_teacher_row_names_the_file_fold_and_pair():
    train_pairs = featurized(["a", "b"], [1, 2], [0, 1], [False, False])
    with pytest.raises(InputError, match=r"t\.parquet: no teacher probabilities for validation fold 1 and "
                                         r"pair id 'b' \(1 pairs in all\)"):
        mixed_targets(train_pairs, TEACHER, fold=1, weight=0.5)


CPU = torch.device("cpu")


def trained_weights(tmp_path, targets) -> list[torch.Tensor]:
    """A tiny model's weights after 2 optimizer steps on 6 pairs; `targets(pairs)` gives the loop's soft
    targets (None: the labels)."""
    model, train_pairs = tiny_model(seed=3), pairs(6)
    train(model, train_pairs, pairs(4, seed=1), params(batch_size=3, grad_accum_steps=1), seed=0, device=CPU,
          precision=resolve_precision("fp32", CPU), pad_token_id=0, best_path=tmp_path / "best.pt",
          last_path=tmp_path / "last.pt", payload_extra={}, log_metrics=lambda *_: None,
          targets=None if targets is None else targets(train_pairs))
    return [p.detach().clone() for p in model.parameters()]


def test_one_hot_targets_train_as_the_labels_and_soft_ones_differently(tmp_path):
    from_labels = trained_weights(tmp_path, None)
    from_one_hot = trained_weights(tmp_path, lambda p: np.eye(3)[p["label"].to_numpy()])
    from_uniform = trained_weights(tmp_path, lambda p: np.full((len(p), 3), 1.0 / 3.0))
    for a, b in zip(from_labels, from_one_hot):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(from_labels, from_uniform))


def test_teacher_digest_is_part_of_the_run_fingerprint():
    p = load_params(REPO_ROOT / "params.yaml")
    without = run_fingerprint(p, {"pad_token_id": 0}, 1, 0)
    assert run_fingerprint(p, {"pad_token_id": 0}, 1, 0, None) == without
    assert len({without, run_fingerprint(p, {"pad_token_id": 0}, 1, 0, "aa"),
                run_fingerprint(p, {"pad_token_id": 0}, 1, 0, "bb")}) == 3


def test_train_stage_reads_the_teacher_table_and_names_it_when_missing(tmp_path, tiny_backbone_dir):
    cwd = make_train_dir(tmp_path / "run", tiny_backbone_dir, soft_target_weight=0.5)
    done = subprocess.run(train_command(), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert ("teacher/train.parquet not found: train.soft_target_weight > 0 and model.teacher_prior need the teacher stage's table"
            in done.stderr)
    assert yaml.safe_load((cwd / "params.yaml").read_text())["train"]["fold"] == 0
    train_pairs, _ = split_fold(pd.read_parquet(cwd / "features" / "train.parquet"), 0, train_on_swapped=False)
    (cwd / "teacher").mkdir()
    pd.DataFrame({VALID_FOLD: 0, "id": train_pairs["id"].astype(str), **{c: 1.0 / 3.0 for c in LABEL_COLUMNS}}
                 ).to_parquet(cwd / "teacher" / "train.parquet", index=False)
    done = subprocess.run(train_command(), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (cwd / "models" / "fold_0" / "best.pt").is_file()
