"""Does a backbone's text representation carry preference signal that the fast members lack? A linear
probe answers it in minutes where fine-tuning takes half an hour per split on a CPU.

    # prepare, hand_features and featurize once through the pipeline (dvc repro), then:
    python bench/linear_probe.py --features data/token_ids/train.parquet --prepared data/prepared \\
        --hand-features data/hand_features --set model.backbone=$MINILM --splits 42 1 2 --C 1.0e-4 3.0e-4

The frozen, pretrained backbone (model.backbone) reads each side exactly as the siamese model does (the
featurize stage's token ids of the original, unswapped pairs) and its token vectors are mean-pooled
(arena_pref.model.mean_pool). Each side's vector is that plus its side statistics. On each fold split
(as in repeated_cv.py: the prepare stage's fold assignment with the split's seed) a multinomial
logistic regression on [a - b, |a - b|, a + b] (standardised, trained on both orders of every training
pair, predicting the mean of both orders) is cross-fitted for each --C, with the side statistics'
inputs scaled up so that their penalty stays that of the stats probe: the text probe is the model's stats
prior plus what a penalised linear map of the text adds, as the siamese model is. The "stats" probe on the
side statistics alone (the stats prior: nearly unregularised) is the reference. Each probe is blended
with gbdt and tfidf as the ensemble stage blends (cross-fitted, ensemble.temperature).

Prints one JSON line per split and probe: the probe's pooled log loss alone, its weight in the blend
fitted on all rows, the two-member (gbdt + tfidf) and three-member blends' log loss, and gain = three -
two (negative: the probe helps). Then one line per probe: the gain's mean and standard deviation over
the splits and on how many splits it was negative.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from arena_pref.backbone import load_pretrained_backbone
from arena_pref.collate import SequenceColumns, sorted_batches
from arena_pref.ensemble import cross_fitted_blend, fit_blend
from arena_pref.folds import ALL_FOLDS, EXTRA_FOLD, validation_folds
from arena_pref.metrics import kaggle_log_loss
from arena_pref.model import mean_pool
from arena_pref.params import Params
from arena_pref.swap import swap_labels, swap_probs

from _variants import add_settings_options, build_settings
from gpu_sweep import features_pad_token_id
from repeated_cv import fast_member_oof, read_inputs, split_folds

PROG = "bench/linear_probe.py"
# The stats probe is the stats prior: side statistics only, with a penalty that only keeps it finite.
STATS_PROBE_C = 100.0
EMBED_BATCH = 32


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="the featurize stage's train.parquet (token ids, side stats)")
    p.add_argument("--prepared", required=True, help="the prepare stage's output folder (train.parquet)")
    p.add_argument("--hand-features", required=True, help="the hand_features stage's output folder (train.parquet)")
    add_settings_options(p)
    p.add_argument("--splits", type=int, nargs="+", required=True, metavar="SEED", help="fold-split seeds")
    p.add_argument("--C", type=float, nargs="+", required=True, dest="cs",
                   help="inverse L2 strengths of the text probe (sklearn's C), one probe each")
    return p.parse_args()


def original_pairs(features_path: str, ids: pd.Series) -> pd.DataFrame:
    """The featurized unswapped pairs in the order of `ids`; exits if they are not the same rows."""
    pairs = pd.read_parquet(features_path)
    pairs = pairs[~pairs["swapped"]].set_index("id")
    if sorted(pairs.index) != sorted(ids):
        sys.exit(f"{PROG}: {features_path} does not hold the prepared rows: run the featurize stage on this "
                 "prepared data (dvc repro featurize)")
    return pairs.loc[ids].reset_index()


@torch.no_grad()
def side_vectors(params: Params, pairs: pd.DataFrame, pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled frozen-backbone vectors of the A and B sides, (N, H) each."""
    m = params.model
    encoder = load_pretrained_backbone(m.backbone, m.revision, m.attention_dropout).eval()
    vectors = {}
    for side in ("a_ids", "b_ids"):
        sequences = SequenceColumns(pairs, side)
        pooled = np.zeros((len(pairs), encoder.config.hidden_size), dtype=np.float32)
        for batch in tqdm(sorted_batches(sequences.lengths(), EMBED_BATCH), desc=f"embed {side[0]}",
                          unit="batch", file=sys.stderr):
            inputs = sequences.batch(batch, pad_token_id, pad_to_multiple_of=1)
            hidden = encoder(**inputs).last_hidden_state
            pooled[batch] = mean_pool(hidden, inputs["attention_mask"]).numpy()
        vectors[side] = pooled
    return vectors["a_ids"], vectors["b_ids"]


def symmetric_inputs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([a - b, np.abs(a - b), a + b], axis=1)


def probe_oof(a: np.ndarray, b: np.ndarray, labels: np.ndarray, folds: np.ndarray, c: float, seed: int,
              n_stats: int = 0) -> np.ndarray:
    """Out-of-fold probabilities of the symmetric logistic probe on side vectors `a`, `b` (N, D) whose last
    `n_stats` columns are side statistics, penalised as if C were STATS_PROBE_C; extra rows (EXTRA_FOLD)
    only train."""
    # Scaling a standardised input by k scales its coefficient's penalty by 1 / k^2.
    stats_column = np.tile(np.arange(a.shape[1]) >= a.shape[1] - n_stats, 3)
    column_gain = np.where(stats_column, np.sqrt(STATS_PROBE_C / c), 1.0)
    oof = np.full((len(labels), 3), np.nan)
    for fold in validation_folds(folds, ALL_FOLDS):
        train, valid = folds != fold, folds == fold
        x = np.concatenate([symmetric_inputs(a[train], b[train]), symmetric_inputs(b[train], a[train])])
        y = np.concatenate([labels[train], swap_labels(labels[train])])
        mean, scale = x.mean(axis=0), (x.std(axis=0) + 1e-6) / column_gain
        probe = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit((x - mean) / scale, y)
        as_given = probe.predict_proba((symmetric_inputs(a[valid], b[valid]) - mean) / scale)
        swapped = probe.predict_proba((symmetric_inputs(b[valid], a[valid]) - mean) / scale)
        oof[valid] = (as_given + swap_probs(swapped)) / 2
    return oof


def main() -> int:
    args = parse_args()
    params = build_settings(args, PROG)
    rows, features = read_inputs(args.prepared, args.hand_features)
    pairs = original_pairs(args.features, rows["id"])
    pad_token_id = features_pad_token_id(args.features, PROG)
    embedded_a, embedded_b = side_vectors(params, pairs, pad_token_id)
    stats_a, stats_b = (np.stack(pairs[c].to_numpy()) for c in ("a_stats", "b_stats"))
    probes = {"stats": (stats_a, stats_b, STATS_PROBE_C)}  # all stats columns, at STATS_PROBE_C either way
    probes |= {f"text C={c:g}": (np.hstack([embedded_a, stats_a]), np.hstack([embedded_b, stats_b]), c) for c in args.cs}
    n_stats = stats_a.shape[1]
    labels = rows["label"].to_numpy()
    gains: dict[str, list[float]] = {}
    for seed in args.splits:
        folds = split_folds(rows, params.prepare.n_folds, seed)
        fast = fast_member_oof(params, rows, features, folds)
        scored = folds != EXTRA_FOLD
        y, fold_of = labels[scored], folds[scored]
        members = [fast["gbdt"][scored], fast["tfidf"][scored]]
        two = kaggle_log_loss(y, cross_fitted_blend(y, fold_of, members, params.ensemble.temperature))
        for name, (a, b, c) in probes.items():
            probe = probe_oof(a, b, labels, folds, c, params.base.seed, n_stats)[scored]
            three = kaggle_log_loss(y, cross_fitted_blend(y, fold_of, [probe, *members], params.ensemble.temperature))
            weight = fit_blend(y, [probe, *members], params.ensemble.temperature).weights[0]
            gains.setdefault(name, []).append(three - two)
            print(json.dumps({"split": seed, "probe": name, "alone": round(kaggle_log_loss(y, probe), 4),
                              "weight": round(float(weight), 3), "two": round(two, 4), "three": round(three, 4),
                              "gain": round(three - two, 6)}), flush=True)
    for name, values in gains.items():
        g = np.array(values)
        print(json.dumps({"probe": name, "splits": len(g), "gain_mean": round(float(g.mean()), 4),
                          "gain_sd": round(float(g.std(ddof=0)), 4), "helps_on": f"{int((g < 0).sum())}/{len(g)}"}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
