"""The train stage fits the stats prior on the training folds only: no validation label reaches it."""

from __future__ import annotations

import subprocess

import pandas as pd
import torch

from conftest import make_train_dir, train_command
from arena_pref.labels import TIE


def _prior_after_training(cwd, tie_fold: int | None) -> dict[str, torch.Tensor]:
    """Train fold 0 (validation fold 0) after relabelling every row of `tie_fold` as a tie (a swapped tie
    stays a tie, so the swapped copies stay consistent); return the fitted prior's weights."""
    if tie_fold is not None:
        path = cwd / "features" / "train.parquet"
        pairs = pd.read_parquet(path)
        pairs.loc[pairs["fold"] == tie_fold, "label"] = TIE
        pairs.to_parquet(path)
    done = subprocess.run(train_command(), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(cwd / "models" / "fold_0" / "last.pt", weights_only=False)["model"]
    return {key: value for key, value in state.items() if key.startswith("prior.")}


def test_validation_labels_never_reach_the_prior(tmp_path, tiny_backbone_dir):
    runs = {name: make_train_dir(tmp_path / name, tiny_backbone_dir, epochs=1) for name in ("base", "valid", "train")}
    base = _prior_after_training(runs["base"], tie_fold=None)
    valid_changed = _prior_after_training(runs["valid"], tie_fold=0)
    train_changed = _prior_after_training(runs["train"], tie_fold=1)
    assert set(base) == {"prior.win.weight", "prior.tie.weight", "prior.tie.bias"}
    assert base["prior.win.weight"].abs().sum() > 0
    for key in base:
        assert torch.equal(base[key], valid_changed[key])
    assert not torch.equal(base["prior.tie.bias"], train_changed["prior.tie.bias"])
