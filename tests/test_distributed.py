"""The train stage under torchrun: 2 CPU processes on gloo match 1 process with the same effective batch."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import torch
from transformers import AutoModel

from arena_pref.checkpoint import load_checkpoint

from conftest import make_train_dir, train_command


def _run(cwd, *launcher: str) -> None:
    done = subprocess.run(train_command(*launcher), cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.slow
def test_two_processes_match_one_process_and_write_one_set_of_outputs(tmp_path, tiny_backbone_dir):
    # Effective batch 4 pairs either way: 2 pairs x 2 accumulation steps, or 2 pairs x 2 processes.
    single = make_train_dir(tmp_path / "single", tiny_backbone_dir, epochs=1, batch_size=2, grad_accum_steps=2,
                            eval_every_steps=0)
    double = make_train_dir(tmp_path / "double", tiny_backbone_dir, epochs=1, batch_size=2, grad_accum_steps=1,
                            eval_every_steps=0)
    _run(single)
    _run(double, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")

    one = json.loads((single / "live/fold_0/metrics.json").read_text())
    two = json.loads((double / "live/fold_0/metrics.json").read_text())
    assert two["step"] == one["step"]  # same number of optimizer steps
    # Same batches and the same averaged gradients; only the dropout masks differ between the runs.
    assert two["val"]["loss"] == pytest.approx(one["val"]["loss"], abs=0.02)
    # and training moved the backbone away from the weights it started from
    start = AutoModel.from_pretrained(tiny_backbone_dir).state_dict()
    trained = load_checkpoint(double / "models/fold_0/last.pt")["model"]
    assert any(not torch.equal(trained[f"backbone.{k}"], v) for k, v in start.items() if v.is_floating_point())

    # Rank 0 alone wrote logs and checkpoints: one row per step, one checkpoint pair.
    curve = pd.read_csv(double / "live/fold_0/plots/metrics/train/loss.tsv", sep="\t")
    assert curve["step"].tolist() == list(range(1, two["step"] + 1))
    assert sorted(p.name for p in (double / "models").rglob("*.pt")) == ["best.pt", "last.pt"]
    assert not list(double.rglob("*.tmp"))
