"""The llm stage script (src/train_llm.py) on prepared fixture rows and a tiny random Llama: one process,
and two CPU processes under torchrun (gloo) with the same effective batch, which must agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import fixture_train_rows, tiny_row, write_csv

ROOT = Path(__file__).resolve().parents[1]


def _stage_dir(root: Path, backbone: Path, **llm) -> Path:
    """params.yaml with the member on (tiny settings) and prepared/ as the prepare stage leaves it."""
    from arena_pref.data import assign_folds, read_rows
    from arena_pref.files import write_parquet

    root.mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["n_folds"] = 3
    params["train"]["fold"] = 0
    params["llm"].update({"enabled": True, "backbone": str(backbone), "max_tokens": 80, "lora_r": 4,
                          "lora_dropout": 0.0, "epochs": 1, "eval_every_steps": 0, "device": "cpu",
                          "precision": "fp32", "predict_batch_size": 4} | llm)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train, _ = read_rows(write_csv(root / "train.csv", fixture_train_rows(24)), labelled=True)
    test, _ = read_rows(write_csv(root / "test.csv", [tiny_row(str(i), [f"q {i}"], [f"a {i}"], [f"b {i}"], None)
                                                        for i in (7, 3)]), labelled=False)
    write_parquet(assign_folds(train, 3, 42), root / "prepared" / "train.parquet")
    write_parquet(test, root / "prepared" / "test.parquet")
    return root


def _run(cwd: Path, *launcher: str) -> None:
    command = [sys.executable, *launcher, str(ROOT / "src" / "train_llm.py"), "--prepared", "prepared",
               "--models", "models/llm", "--live-dir", "live", "--out-dir", "metrics",
               "--oof", "oof_llm.csv", "--test", "test_llm.csv"]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.slow
def test_two_processes_match_one_process_and_write_one_set_of_outputs(tmp_path, tiny_llama_dir):
    # Effective batch 4 either way: 2 x 2 accumulation steps, or 2 x 2 processes.
    single = _stage_dir(tmp_path / "single", tiny_llama_dir, batch_size=2, grad_accum_steps=2)
    double = _stage_dir(tmp_path / "double", tiny_llama_dir, batch_size=2, grad_accum_steps=1, nproc_per_node=2)
    _run(single)
    _run(double, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")

    one = json.loads((single / "live/fold_0/metrics.json").read_text())
    two = json.loads((double / "live/fold_0/metrics.json").read_text())
    assert two["step"] == one["step"] >= 2
    # Same batches, same averaged gradients, no dropout: the same run up to float summation order.
    assert two["val"]["loss"] == pytest.approx(one["val"]["loss"], abs=1e-4)
    for run in (single, double):
        metrics = json.loads((run / "metrics/metrics.json").read_text())
        assert metrics["folds"] == [0] and metrics["rows"] == 8  # fold 0 of 24 rows
        oof = pd.read_csv(run / "oof_llm.csv", dtype={"id": str})
        assert len(oof) == 8 and (oof["fold"] == 0).all()
        assert pd.read_csv(run / "test_llm.csv", dtype={"id": str})["id"].tolist() == ["7", "3"]
        assert sorted(p.name for p in (run / "models/llm").rglob("*") if p.is_file()) == ["best.safetensors",
                                                                                           "last.pt"]
    probs = ["winner_model_a", "winner_model_b", "winner_tie"]
    pd.testing.assert_frame_equal(pd.read_csv(single / "oof_llm.csv")[probs], pd.read_csv(double / "oof_llm.csv")[probs],
                                  atol=1e-4)
