"""Stage evaluate: score the best checkpoint on the validation fold, with and without swap TTA.

    python src/evaluate.py --features data/features --model models/best.pt --out-dir metrics/evaluate \
        --predictions data/predictions/valid.csv
Writes metrics.json (log loss, accuracy, per-class figures, TTA figures, swap flip rate, calibration
error), confusion.csv and calibration.csv (plots), and the validation predictions keyed by id.
"""

import argparse
import logging
from pathlib import Path

import pandas as pd

from arena_pref.collate import PairColumns
from arena_pref.data import LABEL_NAMES
from arena_pref.files import read_json, setup_logging, write_json
from arena_pref.folds import split_fold
from arena_pref.infer import load_for_inference, predict_pairs
from arena_pref.metrics import calibration_table, confusion_rows, expected_calibration_error, flip_rate, score
from arena_pref.params import load_params

log = logging.getLogger("evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--predictions", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    model, device, precision = load_for_inference(args.model, params.train.device, params.train.precision)
    _, valid = split_fold(pd.read_parquet(f"{args.features}/train.parquet"), params.train.fold)
    pad_token_id = read_json(f"{args.features}/meta.json")["pad_token_id"]

    predictions = predict_pairs(model, PairColumns(valid), params.evaluate.batch_size,
                                device, precision, pad_token_id, desc="evaluate")
    labels = valid["label"].to_numpy()
    reported = predictions.tta if params.evaluate.tta else predictions.forward
    metrics = {"rows": len(valid), "fold": params.train.fold, "tta": params.evaluate.tta}
    metrics |= score(labels, reported)
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
    Path(args.predictions).parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(reported, columns=list(LABEL_NAMES))
    frame.insert(0, "id", valid["id"].to_numpy())
    frame.insert(1, "label", labels)
    frame.to_csv(args.predictions, index=False)
    log.info("fold %d: log loss %.4f, accuracy %.4f (TTA %s), swap flip rate %.4f", params.train.fold,
             metrics["log_loss"], metrics["accuracy"], params.evaluate.tta, metrics["swap_flip_rate"])


if __name__ == "__main__":
    main()
