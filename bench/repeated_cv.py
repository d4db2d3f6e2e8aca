"""Cross-validate the fast members (gbdt, tfidf) and their blend on several fold splits, to tell a real
change from the luck of one split. Takes about 1 minute per split on the 1.4k rows of data/sample (2-core CPU).

    # prepare once through the pipeline (dvc repro, or the README's 5-fold command), then:
    python bench/repeated_cv.py --prepared data/prepared --hand-features data/hand_features \\
        --splits 42 1 2 3 4 --variant base --variant deeper gbdt.max_leaf_nodes=8

On 1.4k rows, the fold split alone moves a 5-fold CV's accuracy by about 0.01 and its log loss by a few
thousandths (README, Results). Each split here reassigns the folds of the main file's rows as the
prepare stage does (arena_pref.data.assign_folds: grouped by prompt, stratified by label, with
prepare.n_folds and the split's seed; extra training rows stay in every training fold). Then gbdt and
tfidf cross-fit with the functions their stages call (`cross_fit_stage`), and the two are blended as
the ensemble stage blends (cross-fitted, ensemble.temperature). The siamese member is not retrained: it
takes minutes per fold, and on the sample the blend gives it no weight. For the whole pipeline on
another split, run `dvc exp run -S prepare.seed=N ...`.

Base settings: params.yaml (--params), with --set KEY=VALUE overrides; each --variant NAME [KEY=VALUE
...] changes some of them, checked as params.yaml values are. Prints one JSON line per variant and
split, then for each variant the mean and standard deviation over the splits, and for each variant after
the first its paired difference from the first (the same splits): mean, standard deviation, and on how
many splits it was lower (log loss) or higher (accuracy).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from arena_pref import gbdt, tfidf
from arena_pref.data import assign_folds
from arena_pref.ensemble import cross_fitted_blend
from arena_pref.folds import ALL_FOLDS, EXTRA_FOLD, validation_folds
from arena_pref.metrics import score
from arena_pref.params import Params

from _variants import add_variant_options, build_variants

PROG = "bench/repeated_cv.py"
MODELS = ("gbdt", "tfidf", "blend")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepared", required=True, help="the prepare stage's output folder (train.parquet)")
    p.add_argument("--hand-features", required=True, help="the hand_features stage's output folder (train.parquet)")
    p.add_argument("--splits", type=int, nargs="+", required=True, metavar="SEED",
                   help="fold-split seeds (prepare.seed values), e.g. 42 1 2 3 4")
    add_variant_options(p)
    return p.parse_args()


def read_inputs(prepared: str, hand_features: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean training rows and the hand_features stage's table of the same rows, checked to be in the same order."""
    rows = pd.read_parquet(f"{prepared}/train.parquet")
    features = pd.read_parquet(f"{hand_features}/train.parquet")
    if rows["id"].tolist() != features["id"].tolist():
        sys.exit(f"{PROG}: {hand_features}/train.parquet does not hold the rows of {prepared}/train.parquet in "
                 "their order: run the hand_features stage on this prepared data (dvc repro hand_features)")
    return rows, features


def split_folds(rows: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Fold of every row under the split `seed`; extra training rows keep EXTRA_FOLD."""
    folds = rows["fold"].to_numpy().copy()
    main = folds != EXTRA_FOLD
    folds[main] = assign_folds(rows[main], n_folds, seed)["fold"].to_numpy()
    return folds


def fast_member_oof(params: Params, rows: pd.DataFrame, features: pd.DataFrame, folds: np.ndarray) -> dict:
    """{"gbdt": ..., "tfidf": ...}: each member's out-of-fold probabilities (one row per row of `rows`) on
    the split `folds`, cross-fitted as their stages cross-fit."""
    valid = validation_folds(folds, ALL_FOLDS)
    return {"gbdt": gbdt.cross_fit_stage(params, features.assign(fold=folds), valid).oof,
            "tfidf": tfidf.cross_fit_stage(params, rows.assign(fold=folds), valid).oof}


def evaluate_split(params: Params, rows: pd.DataFrame, features: pd.DataFrame, seed: int) -> dict:
    """Pooled out-of-fold log loss and accuracy of gbdt, tfidf and their blend on one fold split."""
    folds = split_folds(rows, params.prepare.n_folds, seed)
    probs = fast_member_oof(params, rows, features, folds)
    scored = folds != EXTRA_FOLD
    labels = rows["label"].to_numpy()[scored]
    probs = {name: p[scored] for name, p in probs.items()}
    probs["blend"] = cross_fitted_blend(labels, folds[scored], [probs["gbdt"], probs["tfidf"]],
                                        params.ensemble.temperature)
    return {name: {k: v for k, v in score(labels, p).items() if k in ("log_loss", "accuracy")}
            for name, p in probs.items()}


def summary(results: dict[str, list[dict]]) -> list[dict]:
    """Per variant: mean and sd over splits; after the first variant, paired differences from it."""
    def table(variant: str) -> dict[str, np.ndarray]:
        return {f"{m}_{k}": np.array([r[m][k] for r in results[variant]]) for m in MODELS
                for k in ("log_loss", "accuracy")}

    first = next(iter(results))
    first_values = table(first)
    lines = []
    for variant in results:
        values = table(variant)
        line = {"variant": variant, "splits": len(results[variant])}
        line |= {key: {"mean": round(float(v.mean()), 4), "sd": round(float(v.std(ddof=0)), 4)}
                 for key, v in values.items()}
        if variant != first:
            for key, v in values.items():
                delta = v - first_values[key]
                better = (delta < 0) if key.endswith("log_loss") else (delta > 0)
                line[f"{key}_minus_{first}"] = {"mean": round(float(delta.mean()), 4),
                                                "sd": round(float(delta.std(ddof=0)), 4),
                                                "better_on": f"{int(better.sum())}/{len(delta)}"}
        lines.append(line)
    return lines


def main() -> int:
    args = parse_args()
    variants = build_variants(args, PROG)
    rows, features = read_inputs(args.prepared, args.hand_features)
    results: dict[str, list[dict]] = {}
    for name, params in variants.items():
        for seed in args.splits:
            scores = evaluate_split(params, rows, features, seed)
            results.setdefault(name, []).append(scores)
            print(json.dumps({"variant": name, "split": seed}
                             | {m: {k: round(v, 4) for k, v in s.items()} for m, s in scores.items()}), flush=True)
    for line in summary(results):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
