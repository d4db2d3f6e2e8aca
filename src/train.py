"""Stage train: fine-tune the siamese model for validation fold train.fold, or for every fold (-1).

    python src/train.py --features data/token_ids --teacher data/teacher --models models/siamese \
        --live-dir metrics/train
Reads base.seed, model.* and train.* from params.yaml; with train.soft_target_weight > 0 the training
targets mix in the teacher stage's probabilities (arena_pref.soft_targets), and with model.teacher_prior
each side's statistics carry them (arena_pref.teacher_prior). Per validation fold k it writes
models/siamese/fold_k/best.pt (lowest validation loss), models/siamese/fold_k/last.pt (with optimizer state, for
resuming) and DVCLive logs of loss and accuracy under metrics/train/fold_k.

With train.resume, a rerun after a crash or kill continues from the last checkpoints when they belong
to the same run (same params and features): finished folds are kept, the interrupted one resumes.
Multi-GPU: dvc.yaml starts it with torchrun, train.nproc_per_node processes; rank 0 logs and checkpoints.
"""

import logging
import shutil
from pathlib import Path

import pandas as pd
import torch

from arena_pref.backbone import check_fits_positions, siamese_for_fold
from arena_pref.collate import PairColumns
from arena_pref.distributed import barrier, init_from_env, shutdown
from arena_pref.errors import run_stage
from arena_pref.estimate import log_estimate, run_seconds, seconds_per_token
from arena_pref.files import read_features_meta, stage_arguments
from arena_pref.folds import fold_dir, split_fold, validation_folds
from arena_pref.live import train_logged
from arena_pref.loop import freeze_bottom_layers, train
from arena_pref.params import Params, load_params
from arena_pref.precision import resolve_device, resolve_precision
from arena_pref.resume import FINISHED, checkpoint_state, plan_folds, run_fingerprint
from arena_pref.soft_targets import (NO_TEACHER, Teacher, mixed_targets, read_teacher, uses_teacher,
                                     with_fold_teacher_stats)

log = logging.getLogger("train")


def train_one_fold(fold: int, resume_from: dict | None, pairs: pd.DataFrame, params: Params, features_meta: dict,
                   teacher: Teacher, fingerprint: str, models_dir: Path, live_dir: Path, device, precision, ctx,
                   estimate_folds: int = 0) -> None:
    """Train the model of validation fold `fold`. With estimate_folds > 0, first log how long that many
    folds of this shape will take (estimate.py), before the first step."""
    # The symmetric head is swap-equivariant: a swapped copy gives exactly its original's loss and
    # gradients, so training on both only doubles the cost. The concat head learns symmetry from them.
    train_pairs, valid_pairs = split_fold(pairs, fold, train_on_swapped=params.model.head != "symmetric")
    if params.model.teacher_prior:
        train_pairs, valid_pairs = (with_fold_teacher_stats(p, teacher, fold) for p in (train_pairs, valid_pairs))
    model = siamese_for_fold(params.model, params.base.seed, train_pairs)
    targets = mixed_targets(train_pairs, teacher, fold, params.train.soft_target_weight)
    check_fits_positions(model.backbone.config, int(max(pairs["a_ids"].map(len).max(), pairs["b_ids"].map(len).max())))
    if estimate_folds and ctx.is_main:
        freeze_bottom_layers(model, params.train.freeze_layers)  # as `train` will: time the cheaper backward
        token_seconds = seconds_per_token(model, PairColumns(train_pairs), params.train.batch_size, device, precision,
                                          features_meta["pad_token_id"])
        log_estimate(run_seconds(PairColumns(train_pairs), PairColumns(valid_pairs), params.train, estimate_folds,
                                 token_seconds), estimate_folds, device)
    best_path, last_path = models_dir / "best.pt", models_dir / "last.pt"
    if resume_from is None and ctx.is_main:
        # Outputs are persisted between runs (dvc.yaml) so that a resume finds them; a fresh run must
        # not leave a stale best.pt or stale curves behind.
        shutil.rmtree(models_dir, ignore_errors=True)
        shutil.rmtree(live_dir, ignore_errors=True)
    barrier(ctx)
    payload_extra = {"fingerprint": fingerprint, "epochs": params.train.epochs, "fold": fold}
    if ctx.is_main:
        log.info("fold %d: %d training and %d validation pairs", fold, len(train_pairs), len(valid_pairs))

    def run(log_metrics):
        return train(model, train_pairs, valid_pairs, params=params.train, seed=params.base.seed, device=device,
                     precision=precision, pad_token_id=features_meta["pad_token_id"], best_path=best_path,
                     last_path=last_path, payload_extra=payload_extra, log_metrics=log_metrics,
                     resume_from=resume_from, ctx=ctx, targets=targets)

    result = train_logged(run, live_dir, resume_from["step"] if resume_from else None, ctx.is_main)
    if ctx.is_main:
        log.info("fold %d: best validation loss %.4f at step %d of %d", fold, result.best_val_loss, result.best_step,
                 result.steps)


def main() -> None:
    args = stage_arguments(__doc__, "--features", "--teacher", "--models", "--live-dir")
    params = load_params()
    device = resolve_device(params.train.device)
    ctx = init_from_env(device.type)
    if device.type == "cuda" and ctx.enabled:
        device = resolve_device(f"cuda:{ctx.local_rank}")
        torch.cuda.set_device(device)
    precision = resolve_precision(params.train.precision, device)

    pairs = pd.read_parquet(f"{args.features}/train.parquet")
    features_meta = read_features_meta(args.features)
    folds = validation_folds(pairs["fold"].to_numpy(), params.train.fold)
    teacher = read_teacher(f"{args.teacher}/train.parquet") if uses_teacher(params) else NO_TEACHER
    fingerprints = {fold: run_fingerprint(params, features_meta, ctx.world_size, fold, teacher.digest)
                    for fold in folds}
    states = {fold: checkpoint_state(Path(fold_dir(args.models, fold)) / "last.pt", fingerprints[fold])
              for fold in folds}
    plan = plan_folds(states, params.train.resume)
    if ctx.is_main:
        remove_other_folds(Path(args.models), Path(args.live_dir), folds)
    to_train = [fold for fold, state in plan.items() if state != FINISHED]
    for fold, state in plan.items():
        if state == FINISHED:
            log.info("fold %d finished in the interrupted run: kept", fold)
            continue
        train_one_fold(fold, state, pairs, params, features_meta, teacher, fingerprints[fold],
                       Path(fold_dir(args.models, fold)), Path(fold_dir(args.live_dir, fold)), device, precision, ctx,
                       estimate_folds=len(to_train) if fold == to_train[0] else 0)
    shutdown(ctx)


def remove_other_folds(models: Path, live_root: Path, folds: list[int]) -> None:
    """Drop fold outputs of an earlier run that validated on other folds (the outputs are persisted)."""
    keep = {f"fold_{fold}" for fold in folds}
    for root in (models, live_root):
        for path in root.glob("fold_*"):
            if path.name not in keep:
                shutil.rmtree(path)


if __name__ == "__main__":
    run_stage(main)
