"""Stage tfidf: TF-IDF of both answers + logistic regression, on the same folds as the other members.

    python src/train_tfidf.py --prepared data/prepared --out-dir metrics/tfidf \
        --oof data/predictions/oof_tfidf.csv --test data/predictions/test_tfidf.csv
Reads tfidf.* and train.fold from params.yaml. For each validation fold the vocabulary, IDF weights and
classifier are fitted on the other folds (and the extra training rows) only, and predict the fold; test
predictions are the mean of the fold models. Symmetric: trained on swapped copies, averaged with the
swapped prediction (arena_pref.tfidf).
"""

from arena_pref import tfidf
from arena_pref.errors import run_stage
from arena_pref.member_stage import run_member_stage

if __name__ == "__main__":
    run_stage(run_member_stage, "tfidf", __doc__, "--prepared", tfidf.cross_fit_stage, tfidf.model_state)
