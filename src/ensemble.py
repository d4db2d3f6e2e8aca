"""Stage ensemble: blend the siamese and feature models on out-of-fold rows, write submission.csv.

    python src/ensemble.py --predictions data/predictions --prepared data/prepared --out-dir metrics/ensemble \
        --submission submission.csv
Fits the blend weight (and a temperature, ensemble.temperature) on the out-of-fold predictions only,
reports each member's and the blend's scores on the same rows (cross-fitted across folds), and applies
the blend fitted on all out-of-fold rows to the test predictions.
"""

import argparse
import logging

import numpy as np
import pandas as pd

from arena_pref.ensemble import apply_blend, cross_fitted_blend, fit_blend
from arena_pref.files import setup_logging, write_json
from arena_pref.metrics import fold_spread, score
from arena_pref.params import load_params
from arena_pref.predictions import probs_frame, probs_of, read_probs, write_probs
from arena_pref.submission import build_submission

log = logging.getLogger("ensemble")
MEMBERS = ("siamese", "gbdt")


def aligned(first: pd.DataFrame, second: pd.DataFrame, what: str) -> pd.DataFrame:
    """`second` reordered to `first`'s ids; different id sets are an error, not a silent inner join."""
    if set(first["id"]) != set(second["id"]) or len(first) != len(second):
        raise ValueError(f"{what}: the members predicted different ids ({len(first)} vs {len(second)} rows)")
    return second.set_index("id").loc[first["id"]].reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--prepared", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--submission", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    oof = {m: read_probs(f"{args.predictions}/oof_{m}.csv") for m in MEMBERS}
    oof["gbdt"] = aligned(oof["siamese"], oof["gbdt"], "out-of-fold predictions")
    test = {m: read_probs(f"{args.predictions}/test_{m}.csv") for m in MEMBERS}
    test["gbdt"] = aligned(test["siamese"], test["gbdt"], "test predictions")

    labels, folds = oof["siamese"]["label"].to_numpy(), oof["siamese"]["fold"].to_numpy()
    first, second = probs_of(oof["siamese"]), probs_of(oof["gbdt"])
    blended = cross_fitted_blend(labels, folds, first, second, params.ensemble.temperature)
    metrics = {"rows": len(labels), "cross_fitted": len(np.unique(folds)) > 1}
    for name, probs in (("siamese", first), ("gbdt", second), ("ensemble", blended)):
        metrics[name] = score(labels, probs) | {"cv": fold_spread(labels, probs, folds)}
    blend = fit_blend(labels, first, second, params.ensemble.temperature)
    metrics["blend"] = {"siamese_weight": blend.weight, "temperature": blend.temperature}
    write_json(metrics, f"{args.out_dir}/metrics.json")
    write_probs(probs_frame(oof["siamese"]["id"], blended, fold=folds, label=labels),
                f"{args.predictions}/oof_ensemble.csv")

    test_probs = apply_blend(blend, probs_of(test["siamese"]), probs_of(test["gbdt"]))
    expected_ids = pd.read_parquet(f"{args.prepared}/test.parquet", columns=["id"])["id"].tolist()
    submission = build_submission(test["siamese"]["id"].tolist(), test_probs, expected_ids)
    submission.to_csv(args.submission, index=False)
    log.info("log loss: siamese %.4f, gbdt %.4f, ensemble %.4f (siamese weight %.2f, temperature %.2f); "
             "wrote %s (%d rows)", metrics["siamese"]["log_loss"], metrics["gbdt"]["log_loss"],
             metrics["ensemble"]["log_loss"], blend.weight, blend.temperature, args.submission, len(submission))


if __name__ == "__main__":
    main()
