"""A blend whose weights depend on the length ratio of the pair, against the plain blend, out of fold.

The plain blend (ensemble.cross_fitted_blend) gives each member one weight everywhere. Members differ
in how much they follow length, so the member that is right when the shorter answer wins could earn
weight where the lengths differ most. Here the rows are split into bins of bias.length_ratio and each
bin gets its own cross-fitted blend: its rows of fold k are blended with weights fitted on the same
bin's rows of the other folds. Both blends are scored on the same rows; the comparison is paired.
"""

from __future__ import annotations

import numpy as np

from .ensemble import cross_fitted_blend
from .metrics import row_log_losses


def length_conditioned_blend(labels: np.ndarray, folds: np.ndarray, members: list[np.ndarray], bins: np.ndarray,
                             fit_temperature: bool) -> np.ndarray:
    """(n, 3) out-of-fold probabilities: per value of `bins` (n,), `cross_fitted_blend` of that bin's rows.
    Raises ValueError when a bin's rows lie in a single fold (its blend could only be fitted in-sample)."""
    out = np.zeros_like(members[0])
    for b in np.unique(bins):
        rows = bins == b
        if len(np.unique(folds[rows])) < 2:
            raise ValueError(f"length-ratio bin {b} has rows in fold(s) {sorted(set(folds[rows].tolist()))} only: "
                             "a cross-fitted blend needs two folds")
        out[rows] = cross_fitted_blend(labels[rows], folds[rows], [m[rows] for m in members], fit_temperature)
    return out


def paired_difference(labels: np.ndarray, folds: np.ndarray, candidate: np.ndarray, baseline: np.ndarray) -> dict:
    """Log loss of `candidate` minus that of `baseline` on the same rows (negative = candidate better):
    pooled over rows with the rows' paired standard error, and per fold with the mean and paired
    standard error over the folds (std with ddof=1 / sqrt(folds))."""
    diff = row_log_losses(labels, candidate) - row_log_losses(labels, baseline)
    fold_values = sorted(set(folds.tolist()))
    per_fold = {str(f): float(diff[folds == f].mean()) for f in fold_values}
    fold_diffs = np.array(list(per_fold.values()))
    return {"rows": len(labels),
            "candidate_log_loss": float(row_log_losses(labels, candidate).mean()),
            "baseline_log_loss": float(row_log_losses(labels, baseline).mean()),
            "diff": float(diff.mean()),
            "diff_row_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
            "diff_per_fold": per_fold,
            "diff_fold_mean": float(fold_diffs.mean()),
            "diff_fold_se": float(fold_diffs.std(ddof=1) / np.sqrt(len(fold_diffs))) if len(fold_diffs) > 1 else None,
            "folds_better": int((fold_diffs < 0).sum())}
