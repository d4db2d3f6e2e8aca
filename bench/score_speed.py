"""Scoring speed: the bundle (arena_pref.Scorer) against the pipeline's featurize + predict stage code,
in one process, on the same rows, interleaved repeat by repeat so that load from other processes hits
both alike.

    python bench/score_speed.py --bundle models/bundle --models models/siamese --csv data/sample/train.csv --rows 256

Timed paths (median seconds over --repeats, each from rows read by data.read_rows to probabilities):
  stage            what src/predict.py does on the featurize stage's pairs: per fold load_for_inference
                   (torch checkpoint) + predict_pairs with predict.tta; tokenizing is not counted
  featurize+stage  the same plus encode_rows of the rows, as the featurize stage does (and, for a
                   model with the teacher prior, the bundle's gbdt and tfidf for its inputs), through
                   the bundle's own SiamesePredictor.pairs
  bundle_siamese   Scorer.load(members=["siamese"]) + predict_rows: safetensors, tokenizing included
  bundle_all       Scorer.load() + predict_rows with every member of the bundle (blend included)
The two siamese paths are checked to give the same probabilities (1e-6) before any figure is printed.
Projected time for 25,000 pairs = load time + 25,000 / (pairs/s of the scoring part), swap TTA as in
the bundle. The last stdout line is
  bundle_pairs_per_s=<a> stage_pairs_per_s=<b> speed_ratio=<a/b> projected_25k_s=<s>
for the siamese paths, stage counted with tokenizing (featurize+stage), ratio >= 1 meaning the bundle
is not slower.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the library's tokenize/predict bars would bury the table

import numpy as np  # noqa: E402

from arena_pref import Scorer  # noqa: E402
from arena_pref.collate import PairColumns  # noqa: E402
from arena_pref.data import read_rows  # noqa: E402
from arena_pref.folds import fold_dir  # noqa: E402
from arena_pref.infer import load_for_inference, predict_pairs  # noqa: E402

KAGGLE_TEST_PAIRS = 25_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def stage_predict(models: Path, settings: dict, pairs: PairColumns, device: str) -> tuple[np.ndarray, float]:
    """src/predict.py's loop on featurized pairs; returns (probabilities, seconds spent loading)."""
    fold_probs, load_s = [], 0.0
    for fold in settings["folds"]:
        started = time.perf_counter()
        model, torch_device, precision = load_for_inference(f"{fold_dir(str(models), fold)}/best.pt", device,
                                                            settings["precision"])
        load_s += time.perf_counter() - started
        predictions = predict_pairs(model, pairs, settings["batch_size"], torch_device, precision,
                                    settings["pad_token_id"], show_progress=False)
        fold_probs.append(predictions.tta if settings["tta"] else predictions.forward)
    return np.mean(fold_probs, axis=0), load_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, type=Path, help="bundle directory (dvc repro bundle)")
    parser.add_argument("--models", required=True, type=Path, help="the train stage's checkpoints it was built from")
    parser.add_argument("--csv", required=True, help="Kaggle-schema CSV (labels, if any, are ignored)")
    parser.add_argument("--rows", type=int, help="first N rows only (default: all)")
    parser.add_argument("--repeats", type=int, required=True, help="timed repeats of each path (median)")
    parser.add_argument("--device", required=True, help="cpu, cuda or auto")
    args = parser.parse_args()

    rows, _ = read_rows(args.csv, labelled=False)
    rows = rows.iloc[:args.rows].reset_index(drop=True) if args.rows else rows
    siamese = Scorer.load(args.bundle, device=args.device, members=["siamese"])
    settings = siamese.description["member_settings"]["siamese"]

    def encode() -> PairColumns:
        return siamese.predictors["siamese"].pairs(rows)

    pairs = encode()
    stage_probs, _ = stage_predict(args.models, settings, pairs, args.device)
    bundle_probs = siamese.predictors["siamese"].predict(rows)
    gap = float(np.abs(stage_probs - bundle_probs).max())
    if gap > 1e-6:
        sys.exit(f"score_speed: the bundle and the predict stage disagree by {gap:.2e}: not comparing speeds")
    log(f"{len(rows)} pairs, {len(settings['folds'])} fold model(s), TTA {settings['tta']}, device {args.device}; "
        f"bundle == stage within {gap:.1e}")

    times: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                    ("stage", "featurize+stage", "bundle_siamese", "bundle_all")}
    for repeat in range(args.repeats):
        started = time.perf_counter()
        _, load_s = stage_predict(args.models, settings, pairs, args.device)
        total = time.perf_counter() - started
        times["stage"].append((load_s, total - load_s))
        started = time.perf_counter()
        _, load_s = stage_predict(args.models, settings, encode(), args.device)
        total = time.perf_counter() - started
        times["featurize+stage"].append((load_s, total - load_s))
        for name, members in (("bundle_siamese", ["siamese"]), ("bundle_all", None)):
            started = time.perf_counter()
            scorer = Scorer.load(args.bundle, device=args.device, members=members)
            loaded = time.perf_counter()
            scorer.predict_rows(rows)
            times[name].append((loaded - started, time.perf_counter() - loaded))
        log(f"repeat {repeat + 1}/{args.repeats} done")

    figures = {}
    print(f"{'path':<18}{'load s':>9}{'score s':>10}{'pairs/s':>10}{'25k pairs, s':>14}")
    for name, samples in times.items():
        load_s = statistics.median(s[0] for s in samples)
        score_s = statistics.median(s[1] for s in samples)
        rate = len(rows) / score_s
        projected = load_s + KAGGLE_TEST_PAIRS / rate
        figures[name] = (rate, projected)
        print(f"{name:<18}{load_s:>9.2f}{score_s:>10.2f}{rate:>10.1f}{projected:>14.0f}")
    bundle_rate, projected = figures["bundle_siamese"]
    stage_rate = figures["featurize+stage"][0]
    print(f"bundle_pairs_per_s={bundle_rate:.2f} stage_pairs_per_s={stage_rate:.2f} "
          f"speed_ratio={bundle_rate / stage_rate:.3f} projected_25k_s={projected:.0f}")


if __name__ == "__main__":
    main()
