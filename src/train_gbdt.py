"""Stage gbdt: gradient boosting on the hand-made features, on the same folds as the siamese model.

    python src/train_gbdt.py --features data/hand_features --out-dir metrics/gbdt \
        --oof data/predictions/oof_gbdt.csv --test data/predictions/test_gbdt.csv
Reads gbdt.*, train.fold and base.seed from params.yaml. For each validation fold one model is
trained on the other folds (and the extra training rows) and predicts its fold; test predictions are
the mean of the fold models. Symmetric: trained on swapped copies, averaged with the swapped prediction.
"""

from arena_pref import gbdt
from arena_pref.errors import run_stage
from arena_pref.member_stage import run_member_stage

if __name__ == "__main__":
    run_stage(run_member_stage, "gbdt", __doc__, "--features", gbdt.cross_fit_stage, gbdt.model_state)
