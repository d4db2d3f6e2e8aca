"""The command line shared by the stages of the cross-fitted members (gbdt, tfidf): read the stage's
train and test tables, cross-fit on the validation folds train.fold asks for, and write the member's
metrics, out-of-fold and test probabilities (predictions.write_cross_fit), and with --models-dir each
validation fold's fitted model (a skops file of `model_state(model)`: the bundle stage packs them)."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from typing import Any

import pandas as pd

from .crossfit import KEY_COLUMNS, CrossFit
from .files import setup_logging
from .folds import validation_folds
from .sklearn_files import fold_model_path, save_state
from .params import Params, load_params
from .predictions import write_cross_fit

CrossFitStage = Callable[[Params, pd.DataFrame, list[int], pd.DataFrame], CrossFit]


def run_member_stage(member: str, description: str, input_option: str, cross_fit_stage: CrossFitStage,
                     model_state: Callable[[Any], dict]) -> None:
    """Parse `input_option` (the folder holding train.parquet and test.parquet), --out-dir, --oof and
    --test (and --models-dir); run `cross_fit_stage(params, train, validation folds, test)` and write its outputs."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(input_option, required=True, dest="inputs", metavar="DIR",
                        help="folder with the training and test tables (train.parquet, test.parquet)")
    parser.add_argument("--out-dir", required=True, help="where metrics.json goes")
    parser.add_argument("--oof", required=True, help="CSV of the out-of-fold probabilities")
    parser.add_argument("--test", required=True, help="CSV of the test probabilities (mean of the fold models)")
    parser.add_argument("--models-dir", help="where each fold's fitted model goes (fold_K.skops)")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    train = pd.read_parquet(f"{args.inputs}/train.parquet")
    test = pd.read_parquet(f"{args.inputs}/test.parquet")
    folds = validation_folds(train["fold"].to_numpy(), params.train.fold)
    fit = cross_fit_stage(params, train, folds, test)
    write_cross_fit(member, fit, train[KEY_COLUMNS], folds, test["id"], f"{args.out_dir}/metrics.json", args.oof,
                    args.test)
    if args.models_dir:
        shutil.rmtree(args.models_dir, ignore_errors=True)  # no stale fold of an earlier run with other folds
        for fold, model in fit.models.items():
            save_state(model_state(model), fold_model_path(args.models_dir, fold))
