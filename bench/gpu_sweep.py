"""Sweep the siamese model's settings over the cross-validation folds: every variant trains and
predicts every fold, and the out-of-fold probabilities of all variants go to one CSV. Made for a GPU
(the README's 5-fold sweep of 6 variants at 512 tokens took 4 minutes on an H200); it runs anywhere.

    # featurize once through the pipeline, e.g. the README's 5-fold command with 512 tokens per side:
    dvc exp run -S featurize.max_tokens_per_side=512 ...
    python bench/gpu_sweep.py --features data/token_ids/train.parquet --set model.backbone=$MINILM \\
        --variant base --variant lr5e-5 train.lr=5.0e-5 --variant seed1 base.seed=1 --out sweep_oof.csv

Base settings: params.yaml (--params), with --set KEY=VALUE overrides; each --variant NAME [KEY=VALUE
...] changes some of them. Every value is checked as params.yaml values are. Each fold trains as the
train stage does (arena_pref.backbone.siamese_for_fold, arena_pref.loop.train, best checkpoint by
validation loss), then predicts its validation rows with TTA (arena_pref.infer.predict_pairs).

Prints one JSON line per variant: pooled and per-fold log loss, accuracy, best and total optimizer
steps, seconds. After each variant it rewrites --out with the out-of-fold probabilities of every
variant so far: columns variant, id, fold, label, winner_model_a, winner_model_b, winner_tie.
--budget-s stops before a variant that would start later than that many seconds after the start.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from arena_pref.backbone import siamese_for_fold
from arena_pref.checkpoint import load_checkpoint, model_from_checkpoint
from arena_pref.collate import PairColumns
from arena_pref.files import FEATURES_META, read_features_meta
from arena_pref.folds import ALL_FOLDS, split_fold, validation_folds
from arena_pref.infer import predict_pairs
from arena_pref.loop import train
from arena_pref.metrics import fold_spread, score
from arena_pref.params import Params
from arena_pref.precision import resolve_device, resolve_precision
from arena_pref.predictions import probs_frame, probs_of
from arena_pref.soft_targets import (NO_TEACHER, Teacher, mixed_targets, read_teacher, uses_teacher,
                                     with_fold_teacher_stats)

from _variants import add_variant_options, build_variants


PROG = "bench/gpu_sweep.py"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="featurized pairs: the featurize stage's train.parquet")
    add_variant_options(p)
    p.add_argument("--teacher", help="the teacher stage's train.parquet, for variants with train.soft_target_weight > 0 "
                   "or model.teacher_prior")
    p.add_argument("--out", required=True, help="CSV of out-of-fold probabilities of every variant")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no variant after this many seconds")
    return p.parse_args()


def features_pad_token_id(features: str, prog: str) -> int:
    """The pad token id in the meta.json that the featurize stage writes beside its train.parquet."""
    meta_path = Path(features).with_name(FEATURES_META)
    if not meta_path.is_file():
        sys.exit(f"{prog}: {meta_path} not found: --features must be a featurize stage's train.parquet")
    return read_features_meta(meta_path.parent)["pad_token_id"]


def cross_validate(params: Params, pairs: pd.DataFrame, pad_token_id: int, workdir: Path,
                   teacher: Teacher) -> pd.DataFrame:
    """Out-of-fold TTA probabilities of one variant: a model per fold, trained on the other folds."""
    device = resolve_device(params.train.device)
    precision = resolve_precision(params.train.precision, device)
    m = params.model
    frames = []
    for fold in validation_folds(pairs["fold"].to_numpy(), ALL_FOLDS):
        train_pairs, valid_pairs = split_fold(pairs, fold, train_on_swapped=m.head != "symmetric")
        if m.teacher_prior:
            train_pairs, valid_pairs = (with_fold_teacher_stats(p, teacher, fold) for p in (train_pairs, valid_pairs))
        model = siamese_for_fold(m, params.base.seed, train_pairs).to(device)
        targets = mixed_targets(train_pairs, teacher, fold, params.train.soft_target_weight)
        best = workdir / f"fold_{fold}_best.pt"
        result = train(model, train_pairs, valid_pairs, params.train, params.base.seed, device, precision,
                       pad_token_id, best, workdir / f"fold_{fold}_last.pt", {}, lambda *_: None, targets=targets)
        best_model = model_from_checkpoint(load_checkpoint(best)).to(device)
        probs = predict_pairs(best_model, PairColumns(valid_pairs), params.evaluate.batch_size, device, precision,
                              pad_token_id, show_progress=False).tta
        frames.append(probs_frame(valid_pairs["id"], probs, fold=fold, label=valid_pairs["label"].to_numpy(),
                                  best_step=result.best_step, steps=result.steps))
    return pd.concat(frames, ignore_index=True)


def main() -> int:
    args = parse_args()
    variants = build_variants(args, PROG)
    pairs = pd.read_parquet(args.features)
    pad_token_id = features_pad_token_id(args.features, PROG)
    if any(uses_teacher(p) for p in variants.values()) and not args.teacher:
        sys.exit(f"{PROG}: a variant trains with train.soft_target_weight > 0 or model.teacher_prior (from --params, "
                 "--set or --variant): --teacher is needed, or --set train.soft_target_weight=0.0")
    teacher = read_teacher(args.teacher) if args.teacher else NO_TEACHER
    logging.getLogger("arena_pref").setLevel(logging.WARNING)
    started, results = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in variants.items():
            if time.perf_counter() - started > args.budget_s:
                print(f"budget of {args.budget_s:g} s spent: stopping before variant {name}", flush=True)
                break
            t0 = time.perf_counter()
            oof = cross_validate(params, pairs, pad_token_id, Path(tmp), teacher)
            labels, folds = oof["label"].to_numpy(), oof["fold"].to_numpy()
            probs = probs_of(oof)
            cv = fold_spread(labels, probs, folds)
            print(json.dumps({"variant": name} | {k: round(v, 4) for k, v in score(labels, probs).items()
                                                  if k in ("log_loss", "accuracy")}
                             | {"per_fold_log_loss": {f: round(v["log_loss"], 4) for f, v in cv["per_fold"].items()},
                                "best_steps": oof.groupby("fold")["best_step"].first().tolist(),
                                "steps": int(oof["steps"].iloc[0]),
                                "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
            results.append(oof.drop(columns=["best_step", "steps"]).assign(variant=name))
            table = pd.concat(results, ignore_index=True)
            table[["variant", *table.columns[:-1]]].to_csv(args.out, index=False, float_format="%.17g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
