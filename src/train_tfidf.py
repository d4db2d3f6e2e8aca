"""Stage tfidf: TF-IDF of both answers + logistic regression, on the same folds as the other members.

    python src/train_tfidf.py --prepared data/prepared --out-dir metrics/tfidf \
        --oof data/predictions/oof_tfidf.csv --test data/predictions/test_tfidf.csv
Reads tfidf.* and train.fold from params.yaml. For each validation fold the vocabulary, IDF weights and
classifier are fitted on the other folds (and the extra training rows) only, and predict the fold; test
predictions are the mean of the fold models. Symmetric: trained on swapped copies, averaged with the
swapped prediction (arena_pref.tfidf).
"""

import argparse

import pandas as pd

from arena_pref.files import setup_logging
from arena_pref.folds import validation_folds
from arena_pref.params import load_params
from arena_pref.predictions import write_cross_fit
from arena_pref.tfidf import cross_fit, settings_from_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--oof", required=True)
    parser.add_argument("--test", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    settings = settings_from_params(params)
    train = pd.read_parquet(f"{args.prepared}/train.parquet")
    test = pd.read_parquet(f"{args.prepared}/test.parquet")
    folds = validation_folds(train["fold"].to_numpy(), params.train.fold)
    fit = cross_fit(train, settings, folds, test)
    write_cross_fit("tfidf", fit, train[["id", "fold", "label"]], folds, test["id"], f"{args.out_dir}/metrics.json",
                    args.oof, args.test)


if __name__ == "__main__":
    main()
