"""Stage prepare: Kaggle CSVs -> clean rows with folds (parquet) and a data report.

    python src/prepare.py --out-dir data/prepared --report metrics/prepare/report.json
Reads data.*, prepare.n_folds and prepare.seed from params.yaml. Rows of data.extra_train_csvs get
fold -2: they train in every fold and are never validated on.
"""

import logging
from functools import partial

from arena_pref.data import add_extra_rows, assign_folds, check_header, data_report, read_rows
from arena_pref.errors import run_stage
from arena_pref.files import stage_arguments, write_json, write_parquet
from arena_pref.params import load_params
from arena_pref.sources import local_copy

log = logging.getLogger("prepare")


def main() -> None:
    args = stage_arguments(__doc__, "--out-dir", "--report")
    params = load_params()

    # A download must start like the CSV it stands for before it enters the cache.
    labelled_csv, test_csv = partial(check_header, labelled=True), partial(check_header, labelled=False)
    train_path = local_copy(params.data.train_csv, "data.train_csv", labelled_csv, params.data.train_sha256)
    train, train_repairs = read_rows(train_path, labelled=True)
    train = assign_folds(train, params.prepare.n_folds, params.prepare.seed, source=params.data.train_csv)
    test_path = local_copy(params.data.test_csv, "data.test_csv", test_csv)
    test, test_repairs = read_rows(test_path, labelled=False)
    report = {"train": data_report(train, train_repairs), "test": data_report(test, test_repairs)}
    for name, repairs in (("train", train_repairs), ("test", test_repairs)):
        if repairs.ignored_columns:
            log.warning("%s csv: ignoring unknown column(s) %s", name, repairs.ignored_columns)
    for source in params.data.extra_train_csvs:
        extra, extra_repairs = read_rows(local_copy(source, "data.extra_train_csvs", labelled_csv), labelled=True)
        train = add_extra_rows(train, extra, source)
        report[f"extra:{source}"] = data_report(extra, extra_repairs)
        log.info("extra training rows from %s: %d (training folds only)", source, len(extra))
    write_parquet(train, f"{args.out_dir}/train.parquet")
    write_parquet(test, f"{args.out_dir}/test.parquet")
    write_json(report, args.report)
    log.info("train: %d rows in %d folds, repairs %s", len(train), params.prepare.n_folds, train_repairs.as_dict())
    log.info("test: %d rows, repairs %s", len(test), test_repairs.as_dict())


if __name__ == "__main__":
    run_stage(main)
