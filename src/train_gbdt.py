"""Stage gbdt: gradient boosting on the hand-made features, on the same folds as the siamese model.

    python src/train_gbdt.py --features data/hand_features --out-dir metrics/gbdt \
        --oof data/predictions/oof_gbdt.csv --test data/predictions/test_gbdt.csv
Reads gbdt.*, train.fold and base.seed from params.yaml. For each validation fold one model is
trained on the other folds (and the extra training rows) and predicts its fold; test predictions are
the mean of the fold models. Symmetric: trained on swapped copies, averaged with the swapped prediction.
"""

import argparse

import pandas as pd

from arena_pref.files import setup_logging
from arena_pref.folds import validation_folds
from arena_pref.gbdt import cross_fit, settings_from_params
from arena_pref.params import load_params
from arena_pref.predictions import write_cross_fit

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
    settings = settings_from_params(params)
    train = pd.read_parquet(f"{args.features}/train.parquet")
    test = pd.read_parquet(f"{args.features}/test.parquet")
    folds = validation_folds(train["fold"].to_numpy(), params.train.fold)
    fit = cross_fit(train[KEY_COLUMNS], train.drop(columns=KEY_COLUMNS), settings, folds,
                    test.drop(columns=KEY_COLUMNS))

    write_cross_fit("gbdt", fit, train[KEY_COLUMNS], folds, test["id"], f"{args.out_dir}/metrics.json", args.oof,
                    args.test)


if __name__ == "__main__":
    main()
