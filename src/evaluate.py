"""Stage evaluate: score the best checkpoint of each trained fold on its validation rows.

    python src/evaluate.py --features data/token_ids --teacher data/teacher --models models/siamese \
        --out-dir metrics/evaluate --oof data/predictions/oof_siamese.csv
Writes metrics.json (pooled out-of-fold log loss, accuracy, per-class figures, with and without swap
TTA, swap flip rate, calibration error; per fold and mean/std across folds), confusion.csv and
calibration.csv (plots), and the out-of-fold predictions keyed by id. With model.teacher_prior the
validation pairs carry the teacher stage's probabilities, as in training.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from arena_pref.collate import PairColumns
from arena_pref.errors import run_stage
from arena_pref.files import read_features_meta, stage_arguments, write_json
from arena_pref.folds import fold_dir, split_fold, validation_folds
from arena_pref.infer import PairPredictions, load_for_inference, predict_pairs
from arena_pref.metrics import (calibration_table, confusion_rows, expected_calibration_error, flip_rate,
                                fold_spread, score)
from arena_pref.params import load_params
from arena_pref.predictions import probs_frame, write_probs
from arena_pref.soft_targets import NO_TEACHER, read_teacher, with_fold_teacher_stats

log = logging.getLogger("evaluate")


def main() -> None:
    args = stage_arguments(__doc__, "--features", "--teacher", "--models", "--out-dir", "--oof")
    params = load_params()
    pairs = pd.read_parquet(f"{args.features}/train.parquet")
    teacher = read_teacher(f"{args.teacher}/train.parquet") if params.model.teacher_prior else NO_TEACHER
    pad_token_id = read_features_meta(args.features)["pad_token_id"]

    parts = []
    for fold in validation_folds(pairs["fold"].to_numpy(), params.train.fold):
        model, device, precision = load_for_inference(f"{fold_dir(args.models, fold)}/best.pt", params.train.device,
                                                      params.train.precision)
        _, valid = split_fold(pairs, fold)
        if params.model.teacher_prior:
            valid = with_fold_teacher_stats(valid, teacher, fold)
        predictions = predict_pairs(model, PairColumns(valid), params.evaluate.batch_size, device, precision,
                                    pad_token_id, desc=f"evaluate fold {fold}")
        parts.append((valid, predictions))
    valid = pd.concat([v for v, _ in parts], ignore_index=True)
    predictions = PairPredictions(forward=np.concatenate([p.forward for _, p in parts]),
                                  swapped_back=np.concatenate([p.swapped_back for _, p in parts]))
    labels, folds = valid["label"].to_numpy(), valid["fold"].to_numpy()
    reported = predictions.tta if params.evaluate.tta else predictions.forward

    metrics = {"rows": len(valid), "folds": sorted(set(folds.tolist())), "tta": params.evaluate.tta}
    metrics |= score(labels, reported)
    metrics["cv"] = fold_spread(labels, reported, folds)
    metrics["no_tta"] = score(labels, predictions.forward)
    metrics["with_tta"] = score(labels, predictions.tta)
    metrics["swap_flip_rate"] = flip_rate(predictions.forward, predictions.swapped_back)
    calibration = calibration_table(labels, reported, params.evaluate.calibration_bins)
    metrics["expected_calibration_error"] = expected_calibration_error(calibration)

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(metrics, out / "metrics.json")
    confusion_rows(labels, reported).to_csv(out / "confusion.csv", index=False)
    calibration.to_csv(out / "calibration.csv", index=False)
    write_probs(probs_frame(valid["id"], reported, fold=folds, label=labels), args.oof)
    log.info("folds %s: log loss %.4f (fold mean %.4f +- %.4f), accuracy %.4f (TTA %s), swap flip rate %.4f",
             metrics["folds"], metrics["log_loss"], metrics["cv"]["log_loss_mean"], metrics["cv"]["log_loss_std"],
             metrics["accuracy"], params.evaluate.tta, metrics["swap_flip_rate"])


if __name__ == "__main__":
    run_stage(main)
