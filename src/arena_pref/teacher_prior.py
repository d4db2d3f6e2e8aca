"""The teacher prior (model.teacher_prior): each side's statistics also carry the teacher's
log-probabilities (arena_pref.teacher: the mean of gbdt's and tfidf's, out of fold), so the stats prior,
fitted on the training fold, starts the network from the fast members and the network learns what the
text adds to them, instead of relearning what they already know.

Side A gets [log p(A wins), log p(tie)], side B [log p(B wins), log p(tie)]. The prior's swap-symmetric
form (A logit w.[d, |d|, s], tie logit t.[|d|, s] + c, with d = a - b and s = a + b) can then express
the teacher exactly (w = 1/2 on d and s of the first entry, t = 1/2 on s of the second), and when a
pair's sides are exchanged (a swapped copy, swap TTA), their teacher entries go with them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import A_WINS, B_WINS, TIE

TEACHER_STATS = ("log_p_side_wins", "log_p_tie")
# Probabilities are clipped to this before the log: a member's 0 must not become an infinite input.
MIN_PROB = 1e-6


def with_teacher_stats(pairs: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """A copy of featurized `pairs` (a_stats, b_stats) with each side's statistics extended by
    TEACHER_STATS from `probs`: (n, 3) teacher probabilities of these pairs, in their own A/B order
    (soft_targets.pair_teacher_probs for training and validation pairs)."""
    if len(probs) != len(pairs) or np.isnan(probs).any():
        raise ValueError(f"teacher probabilities for {len(probs)} pairs ({int(np.isnan(probs).any(axis=1).sum())} "
                         f"missing), not for each of the {len(pairs)} pairs")
    log_probs = np.log(np.clip(probs, MIN_PROB, 1.0))
    out = pairs.copy()
    for side, wins in (("a_stats", A_WINS), ("b_stats", B_WINS)):
        # float32, as featurize writes the statistics
        out[side] = [np.concatenate([stats, row]).astype(np.float32) for stats, row in
                     zip(pairs[side], log_probs[:, [wins, TIE]])]
    return out

