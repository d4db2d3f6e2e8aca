"""Stage ensemble: blend the members (siamese, gbdt, tfidf) on out-of-fold rows, write submission.csv.

    python src/ensemble.py --predictions data/predictions --prepared data/prepared --out-dir metrics/ensemble \
        --submission submission.csv
Fits the blend weights (and a temperature, ensemble.temperature) on the out-of-fold predictions only,
reports each member's and the blend's scores on the same rows (cross-fitted across folds), and applies
the blend fitted on all out-of-fold rows to the test predictions.
"""

import logging

import numpy as np
import pandas as pd

from arena_pref.ensemble import apply_blend, cross_fitted_blend, fit_blend
from arena_pref.errors import run_stage
from arena_pref.files import stage_arguments, write_json
from arena_pref.metrics import fold_spread, score
from arena_pref.params import load_params
from arena_pref.predictions import align_to, probs_frame, probs_of, read_probs, write_probs
from arena_pref.submission import build_submission

log = logging.getLogger("ensemble")
MEMBERS = ("siamese", "gbdt", "tfidf")  # the first member's ids and order are the reference


def members_of(params) -> tuple[str, ...]:
    """The members blended: MEMBERS, plus the decoder-LLM member when llm.enabled (its stage otherwise
    writes empty placeholders, so the blend and its metrics are exactly those without it)."""
    return MEMBERS + (("llm",) if params.llm.enabled else ())


def read_members(predictions: str, split: str, names: tuple[str, ...] = MEMBERS) -> dict[str, pd.DataFrame]:
    """Each member's {split}_<member>.csv, rows in the first member's id order."""
    paths = {m: f"{predictions}/{split}_{m}.csv" for m in names}
    frames = {m: read_probs(path) for m, path in paths.items()}
    reference = frames[names[0]]["id"]
    return {m: align_to(frame, reference, paths[m]) for m, frame in frames.items()}


def main() -> None:
    args = stage_arguments(__doc__, "--predictions", "--prepared", "--out-dir", "--submission")
    params = load_params()
    names = members_of(params)
    oof, test = read_members(args.predictions, "oof", names), read_members(args.predictions, "test", names)
    reference = oof[names[0]]
    labels, folds = reference["label"].to_numpy(), reference["fold"].to_numpy()
    members = [probs_of(oof[m]) for m in names]
    blended = cross_fitted_blend(labels, folds, members, params.ensemble.temperature)
    metrics = {"rows": len(labels), "cross_fitted": len(np.unique(folds)) > 1}
    for name, probs in (*zip(names, members), ("ensemble", blended)):
        metrics[name] = score(labels, probs) | {"cv": fold_spread(labels, probs, folds)}
    blend = fit_blend(labels, members, params.ensemble.temperature)
    metrics["blend"] = {"weights": dict(zip(names, blend.weights)), "temperature": blend.temperature}
    write_json(metrics, f"{args.out_dir}/metrics.json")
    write_probs(probs_frame(reference["id"], blended, fold=folds, label=labels), f"{args.predictions}/oof_ensemble.csv")

    test_probs = apply_blend(blend, [probs_of(test[m]) for m in names])
    expected_ids = pd.read_parquet(f"{args.prepared}/test.parquet", columns=["id"])["id"].tolist()
    submission = build_submission(test[names[0]]["id"].tolist(), test_probs, expected_ids)
    submission.to_csv(args.submission, index=False)
    log.info("log loss: %s, ensemble %.4f (weights %s, temperature %.2f); wrote %s (%d rows)",
             ", ".join(f"{m} {metrics[m]['log_loss']:.4f}" for m in names), metrics["ensemble"]["log_loss"],
             ", ".join(f"{m} {w:.2f}" for m, w in zip(names, blend.weights)), blend.temperature, args.submission,
             len(submission))


if __name__ == "__main__":
    run_stage(main)
