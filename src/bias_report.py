"""Stage bias, and the same report for any labelled CSV: length, position and tie biases of each model.

In the pipeline (dvc.yaml stage `bias`), on the out-of-fold rows of every member and of the blend:
    python src/bias_report.py --prepared data/prepared --out-dir metrics/bias \
        --probs siamese=data/predictions/oof_siamese.csv --probs gbdt=data/predictions/oof_gbdt.csv \
        --probs tfidf=data/predictions/oof_tfidf.csv --probs ensemble=data/predictions/oof_ensemble.csv \
        --probs-if-any llm=data/predictions/oof_llm.csv \
        --flip-rate siamese=metrics/evaluate/metrics.json --length-blend siamese,gbdt,tfidf,llm
(llm is reported and blended only when its stage trained it, llm.enabled; otherwise its file is a
header-only placeholder and it is left out).
On your own labelled CSV (Kaggle train.csv schema) scored by any model (CSV: id, winner_model_a,
winner_model_b, winner_tie, e.g. the scoring CLI's output):
    python src/bias_report.py --labelled my_pairs.csv --probs mine=my_probs.csv --out-dir my_bias
Writes metrics.json and the plot tables length_ratio.csv, outcome_accuracy.csv, tie_calibration.csv.
Settings: the `bias` section of params.yaml (--params). Figures and formulas: docs/bias.md and
arena_pref/bias.py.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from arena_pref.bias import (
    human_figures,
    length_ratio,
    length_ratio_plot,
    model_figures,
    outcome_plot,
    pair_traits,
    ratio_bins,
    tie_calibration_plot,
)
from arena_pref.bias_inputs import aligned_probs, checked_probs, has_rows
from arena_pref.data import read_rows
from arena_pref.ensemble import cross_fitted_blend
from arena_pref.errors import InputError, run_stage
from arena_pref.files import read_json, setup_logging, write_json
from arena_pref.length_blend import length_conditioned_blend, paired_difference
from arena_pref.params import load_params
from arena_pref.swap import swap_probs

log = logging.getLogger("bias")


def _named(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, path


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prepared", help="the prepare stage's folder (its train.parquet holds the labelled rows)")
    source.add_argument("--labelled", help="a labelled CSV in the Kaggle train.csv schema")
    parser.add_argument("--probs", type=_named, action="append", required=True, metavar="NAME=CSV",
                        help="a model's probabilities keyed by id (repeat per model); the first sets the rows")
    parser.add_argument("--probs-if-any", type=_named, action="append", default=[], metavar="NAME=CSV",
                        help="like --probs, but a file with a header and no rows (the placeholder of a member "
                             "that is switched off, e.g. llm) leaves the model out of the report")
    parser.add_argument("--swapped", type=_named, action="append", default=[], metavar="NAME=CSV",
                        help="the same model's probabilities on the pairs with A and B exchanged (as it output "
                             "them for the swapped pairs): gives its swap flip rate")
    parser.add_argument("--flip-rate", type=_named, action="append", default=[], metavar="NAME=JSON",
                        help="a metrics.json whose swap_flip_rate is this model's (the evaluate stage's)")
    parser.add_argument("--length-blend", metavar="M1,M2,...",
                        help="try a blend of these models with weights per length-ratio bin against the plain "
                             "blend, out of fold (the probability files need a fold column)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def length_blend_figures(labels: np.ndarray, folds: np.ndarray, members: list[np.ndarray], bins: np.ndarray,
                         fit_temperature: bool) -> dict:
    """The length-conditioned blend against the plain blend (both cross-fitted) on the same rows."""
    plain = cross_fitted_blend(labels, folds, members, fit_temperature)
    conditioned = length_conditioned_blend(labels, folds, members, bins, fit_temperature)
    return paired_difference(labels, folds, conditioned, plain)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    setup_logging()
    settings = load_params(args.params)
    source = args.labelled or f"{args.prepared}/train.parquet"
    rows = read_rows(args.labelled, labelled=True)[0] if args.labelled else pd.read_parquet(source)

    optional = [(name, path, has_rows(path)) for name, path in args.probs_if_any]
    present = [(name, path) for name, path, filled in optional if filled]
    left_out = [name for name, _, filled in optional if not filled]
    if left_out:
        log.info("left out (their files have no rows): %s", ", ".join(left_out))
    probs_paths = args.probs + present
    names = [name for name, _ in probs_paths]
    for option, pairs in (("--swapped", args.swapped), ("--flip-rate", args.flip_rate)):
        unknown = [name for name, _ in pairs if name not in names]
        if unknown:
            raise InputError(f"{option}: {unknown} not among the --probs names {names}")
    frames = {name: checked_probs(path, rows) for name, path in probs_paths}
    first_name, first_path = args.probs[0]
    ids = frames[first_name]["id"]
    models = {name: aligned_probs(frames[name], ids, path) for name, path in probs_paths}
    log.info("%d rows (those of %s) of the %d labelled rows in %s", len(ids), first_path, len(rows), source)
    rows = rows.set_index("id").loc[ids].reset_index()
    labels = rows["label"].to_numpy(dtype=np.int64)
    traits = pair_traits(rows)

    swapped_back = {name: swap_probs(aligned_probs(checked_probs(path, rows), ids, path))
                    for name, path in args.swapped}
    edges, tie_bins = settings.bias.length_ratio_edges, settings.bias.tie_calibration_bins
    figures = {name: model_figures(traits, labels, probs, edges, tie_bins, swapped_back.get(name))
               for name, probs in models.items()}
    for name, path in args.flip_rate:
        figures[name]["position"]["swap_flip_rate"] = read_json(path)["swap_flip_rate"]
    metrics = {"rows": len(ids), "human": human_figures(traits, labels), "models": figures}

    if args.length_blend:
        members = [m for m in args.length_blend.split(",") if m not in left_out]
        unknown = [m for m in members if m not in models]
        if unknown:
            raise InputError(f"--length-blend: {unknown} not among the --probs names {names}")
        if "fold" not in frames[first_name].columns:
            raise InputError(f"--length-blend needs a fold column in {first_path}")
        folds = frames[first_name].set_index("id").loc[ids, "fold"].to_numpy()
        bins = ratio_bins(length_ratio(traits), settings.bias.blend_ratio_edges)
        metrics["length_blend"] = {"members": members, "ratio_edges": settings.bias.blend_ratio_edges}
        try:
            metrics["length_blend"] |= length_blend_figures(labels, folds, [models[m] for m in members], bins,
                                                            settings.ensemble.temperature)
        except ValueError as err:  # too few rows for a bin in two folds (tiny data): say so, report the rest
            metrics["length_blend"]["skipped"] = str(err)
            log.warning("length-conditioned blend skipped: %s", err)

    out = Path(args.out_dir)
    write_json(metrics, out / "metrics.json")
    length_ratio_plot(traits, labels, models, edges).to_csv(out / "length_ratio.csv", index=False)
    outcome_plot(figures).to_csv(out / "outcome_accuracy.csv", index=False)
    tie_calibration_plot(labels, models, tie_bins).to_csv(out / "tie_calibration.csv", index=False)
    log.info("humans pick the longer answer in %.3f of their decided rows",
             _nan_if_none(metrics["human"]["human_longer_chars"]))
    for name, f in figures.items():
        shorter = f["by_outcome"]["shorter_won"]
        log.info("%s: picks the longer answer in %.3f of its decided rows; accuracy %.3f where the shorter won "
                 "(%d rows); log loss %.4f, length-controlled %.4f", name,
                 _nan_if_none(f["length"]["picks_longer_chars"]), _nan_if_none(shorter["accuracy"]),
                 shorter["rows"], f["log_loss"], _nan_if_none(f["length_controlled_log_loss"]))
    if "diff" in metrics.get("length_blend", {}):
        blend = metrics["length_blend"]
        log.info("length-conditioned blend minus plain blend: %+.4f log loss (fold mean %+.4f +- %.4f)",
                 blend["diff"], blend["diff_fold_mean"], _nan_if_none(blend["diff_fold_se"]))
    return metrics


if __name__ == "__main__":
    run_stage(main)
