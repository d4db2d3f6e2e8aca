"""Stage hand_features: clean rows -> hand-made pair features (lengths, markdown, refusals, ...).

    python src/hand_features.py --prepared data/prepared --out-dir data/hand_features
Writes train.parquet and test.parquet: id, fold, label, then one column per feature. Every feature is
computed from its own row alone, so computing them for all rows at once leaks nothing across folds.
"""

import logging

import pandas as pd

from arena_pref.errors import run_stage
from arena_pref.features import pair_features
from arena_pref.files import stage_arguments, write_parquet

log = logging.getLogger("hand_features")


def main() -> None:
    args = stage_arguments(__doc__, "--prepared", "--out-dir")
    for split in ("train", "test"):
        rows = pd.read_parquet(f"{args.prepared}/{split}.parquet")
        features = pair_features(rows)
        features.insert(0, "id", rows["id"].to_numpy())
        features.insert(1, "fold", rows["fold"].to_numpy())
        features.insert(2, "label", rows["label"].to_numpy())
        write_parquet(features, f"{args.out_dir}/{split}.parquet")
        log.info("%s: %d rows x %d features", split, len(features), features.shape[1] - 3)


if __name__ == "__main__":
    run_stage(main)
