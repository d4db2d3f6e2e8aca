"""Stage predict: test pairs -> probabilities from the siamese model, averaged over the trained folds.

    python src/predict.py --features data/token_ids --models models/siamese --gbdt-test data/predictions/test_gbdt.csv \
        --tfidf-test data/predictions/test_tfidf.csv --out data/predictions/test_siamese.csv
Each fold's best checkpoint predicts every test pair (swap TTA by predict.tta); the fold models'
probabilities are averaged. The ensemble stage turns this into submission.csv. With model.teacher_prior
the test pairs carry the teacher's probabilities: the mean of the gbdt and tfidf stages' test
predictions (their fold models', as the teacher stage's validation rows are).
"""

import logging

import numpy as np
import pandas as pd

from arena_pref.collate import PairColumns
from arena_pref.errors import run_stage
from arena_pref.files import read_features_meta, stage_arguments
from arena_pref.folds import fold_dir, validation_folds
from arena_pref.infer import load_for_inference, predict_pairs
from arena_pref.params import load_params
from arena_pref.predictions import align_to, probs_frame, probs_of, read_probs, write_probs
from arena_pref.soft_targets import teacher_mean
from arena_pref.teacher_prior import with_teacher_stats

log = logging.getLogger("predict")


def main() -> None:
    args = stage_arguments(__doc__, "--features", "--models", "--gbdt-test", "--tfidf-test", "--out")
    params = load_params()
    test_pairs = pd.read_parquet(f"{args.features}/test.parquet")
    if params.model.teacher_prior:
        ids = test_pairs["id"].astype(str)
        member_probs = [probs_of(align_to(read_probs(path), ids, path)) for path in (args.gbdt_test, args.tfidf_test)]
        test_pairs = with_teacher_stats(test_pairs, teacher_mean(*member_probs))
    test = PairColumns(test_pairs)
    pad_token_id = read_features_meta(args.features)["pad_token_id"]
    folds = validation_folds(pd.read_parquet(f"{args.features}/train.parquet", columns=["fold"])["fold"].to_numpy(),
                             params.train.fold)
    fold_probs = []
    for fold in folds:
        model, device, precision = load_for_inference(f"{fold_dir(args.models, fold)}/best.pt", params.train.device,
                                                      params.train.precision)
        predictions = predict_pairs(model, test, params.predict.batch_size, device, precision, pad_token_id,
                                    desc=f"predict fold {fold}")
        fold_probs.append(predictions.tta if params.predict.tta else predictions.forward)
    write_probs(probs_frame(test_pairs["id"], np.mean(fold_probs, axis=0)), args.out)
    log.info("wrote %s: %d test pairs, mean of %d fold model(s), TTA %s", args.out, len(test), len(folds),
             params.predict.tta)


if __name__ == "__main__":
    run_stage(main)
