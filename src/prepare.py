"""Stage prepare: Kaggle CSVs -> clean rows with folds (parquet) and a data report.

    python src/prepare.py --out-dir data/prepared --report metrics/prepare/report.json
Reads data.*, prepare.n_folds and prepare.seed from params.yaml. Rows of data.extra_train_csvs get
fold -2: they train in every fold and are never validated on.
"""

import argparse
import logging

from arena_pref.data import add_extra_rows, assign_folds, data_report, read_rows
from arena_pref.files import setup_logging, write_json, write_parquet
from arena_pref.params import load_params
from arena_pref.sources import local_copy

log = logging.getLogger("prepare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()

    train, train_repairs = read_rows(local_copy(params.data.train_csv), labelled=True)
    train = assign_folds(train, params.prepare.n_folds, params.prepare.seed)
    test, test_repairs = read_rows(local_copy(params.data.test_csv), labelled=False)
    report = {"train": data_report(train, train_repairs), "test": data_report(test, test_repairs)}
    for name, repairs in (("train", train_repairs), ("test", test_repairs)):
        if repairs.ignored_columns:
            log.warning("%s csv: ignoring unknown column(s) %s", name, repairs.ignored_columns)
    for source in params.data.extra_train_csvs:
        extra, extra_repairs = read_rows(local_copy(source), labelled=True)
        train = add_extra_rows(train, extra, source)
        report[f"extra:{source}"] = data_report(extra, extra_repairs)
        log.info("extra training rows from %s: %d (training folds only)", source, len(extra))
    write_parquet(train, f"{args.out_dir}/train.parquet")
    write_parquet(test, f"{args.out_dir}/test.parquet")
    write_json(report, args.report)
    log.info("train: %d rows in %d folds, repairs %s", len(train), params.prepare.n_folds, train_repairs.as_dict())
    log.info("test: %d rows, repairs %s", len(test), test_repairs.as_dict())


if __name__ == "__main__":
    main()
