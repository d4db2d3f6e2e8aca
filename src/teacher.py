"""Stage teacher: the fast members' probabilities that the siamese model's soft targets mix in
(train.soft_target_weight) and its teacher prior reads (model.teacher_prior; arena_pref.teacher),
cross-fitted inside each training fold.

    python src/teacher.py --prepared data/prepared --hand-features data/hand_features --out-dir data/teacher
Reads train.soft_target_weight, model.teacher_prior, train.fold, base.seed, gbdt.* and tfidf.* from
params.yaml. Writes train.parquet: valid_fold, id and the three class probabilities, for every validation
fold train.fold asks for and every row of that fold's model (training and validation rows). With
neither soft targets nor the teacher prior nothing needs a teacher: it writes the table empty, in a
second (the 5-fold teacher of the 1.4k sample rows takes about 5 minutes on 2 CPU cores: 25 gbdt and 25
tfidf fits).
"""

import logging

import pandas as pd

from arena_pref.errors import run_stage
from arena_pref.files import stage_arguments, write_parquet
from arena_pref.folds import validation_folds
from arena_pref.params import load_params
from arena_pref.soft_targets import uses_teacher
from arena_pref.teacher import nested_teacher

log = logging.getLogger("teacher")


def main() -> None:
    args = stage_arguments(__doc__, "--prepared", "--hand-features", "--out-dir")
    params = load_params()
    prepared = pd.read_parquet(f"{args.prepared}/train.parquet")
    hand_features = pd.read_parquet(f"{args.hand_features}/train.parquet")
    folds = validation_folds(prepared["fold"].to_numpy(), params.train.fold) if uses_teacher(params) else []
    table = nested_teacher(prepared, hand_features, params, folds)
    write_parquet(table, f"{args.out_dir}/train.parquet")
    log.info("teacher probabilities for %d (validation fold, row) pairs%s", len(table),
             "" if folds else " (train.soft_target_weight 0 and model.teacher_prior false: none needed)")


if __name__ == "__main__":
    run_stage(main)
