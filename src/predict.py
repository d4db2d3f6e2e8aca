"""Stage predict: test pairs -> submission.csv with the best checkpoint (swap TTA by predict.tta).

    python src/predict.py --features data/features --prepared data/prepared --model models/best.pt \
        --out submission.csv
The submission has one row per test id, in test.csv order, and is refused unless every row is a
finite probability vector summing to 1.
"""

import argparse
import logging

import pandas as pd

from arena_pref.collate import PairColumns
from arena_pref.files import read_json, setup_logging
from arena_pref.infer import load_for_inference, predict_pairs
from arena_pref.params import load_params
from arena_pref.submission import build_submission

log = logging.getLogger("predict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", required=True)
    parser.add_argument("--prepared", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    model, device, precision = load_for_inference(args.model, params.train.device, params.train.precision)
    test = pd.read_parquet(f"{args.features}/test.parquet")
    pad_token_id = read_json(f"{args.features}/meta.json")["pad_token_id"]
    predictions = predict_pairs(model, PairColumns(test), params.predict.batch_size,
                                device, precision, pad_token_id, desc="predict")
    probs = predictions.tta if params.predict.tta else predictions.forward
    # The guard checks against the prepared test ids, not the features, so a lost row cannot pass.
    expected_ids = pd.read_parquet(f"{args.prepared}/test.parquet", columns=["id"])["id"].tolist()
    submission = build_submission(test["id"].tolist(), probs, expected_ids)
    submission.to_csv(args.out, index=False)
    log.info("wrote %s: %d rows (TTA %s)", args.out, len(submission), params.predict.tta)


if __name__ == "__main__":
    main()
