"""Stage gbdt: gradient boosting on the hand-made features, on the same folds as the siamese model.

    python src/train_gbdt.py --features data/hand_features --out-dir metrics/gbdt \
        --oof data/predictions/oof_gbdt.csv --test data/predictions/test_gbdt.csv
Reads gbdt.*, train.fold and base.seed from params.yaml. For each validation fold one model is
trained on the other folds (and the extra training rows) and predicts its fold; test predictions are
the mean of the fold models. Symmetric: trained on swapped copies, averaged with the swapped prediction.
"""

import argparse
import logging

import pandas as pd

from arena_pref.files import setup_logging, write_json
from arena_pref.folds import validation_folds
from arena_pref.gbdt import GbdtSettings, cross_fit
from arena_pref.metrics import fold_spread, score
from arena_pref.params import load_params
from arena_pref.predictions import probs_frame, write_probs

log = logging.getLogger("gbdt")
KEY_COLUMNS = ["id", "fold", "label"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--oof", required=True)
    parser.add_argument("--test", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    # Early stopping stays off: it would hold out a random part of the training rows, and a row and
    # its swapped copy could land on both sides of that split.
    settings = GbdtSettings(learning_rate=params.gbdt.learning_rate, max_iter=params.gbdt.max_iter,
                            max_leaf_nodes=params.gbdt.max_leaf_nodes, min_samples_leaf=params.gbdt.min_samples_leaf,
                            l2_regularization=params.gbdt.l2_regularization, early_stopping=False,
                            seed=params.base.seed)
    train = pd.read_parquet(f"{args.features}/train.parquet")
    test = pd.read_parquet(f"{args.features}/test.parquet")
    folds = validation_folds(train["fold"].to_numpy(), params.train.fold)
    fit = cross_fit(train[KEY_COLUMNS], train.drop(columns=KEY_COLUMNS), settings, folds,
                    test.drop(columns=KEY_COLUMNS))

    validated = train["fold"].isin(folds).to_numpy()
    labels, fold_of = train["label"].to_numpy()[validated], train["fold"].to_numpy()[validated]
    oof = fit.oof[validated]
    metrics = {"rows": int(validated.sum()), "folds": folds} | score(labels, oof)
    metrics["cv"] = fold_spread(labels, oof, fold_of)
    write_json(metrics, f"{args.out_dir}/metrics.json")
    write_probs(probs_frame(train["id"][validated], oof, fold=fold_of, label=labels), args.oof)
    write_probs(probs_frame(test["id"], fit.test), args.test)
    log.info("folds %s: log loss %.4f (fold mean %.4f +- %.4f), accuracy %.4f", folds, metrics["log_loss"],
             metrics["cv"]["log_loss_mean"], metrics["cv"]["log_loss_std"], metrics["accuracy"])


if __name__ == "__main__":
    main()
