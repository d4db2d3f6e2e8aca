"""A training run killed with SIGKILL and rerun ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import torch

from conftest import make_train_dir, train_command


def _finish(cwd) -> subprocess.CompletedProcess:
    done = subprocess.run(train_command(), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _results(cwd) -> tuple[dict, str, str]:
    summary = json.loads((cwd / "live/fold_0/metrics.json").read_text())
    curves = (cwd / "live/fold_0/plots/metrics/val/loss.tsv").read_text()
    train_curve = (cwd / "live/fold_0/plots/metrics/train/loss.tsv").read_text()
    return summary, curves, train_curve


@pytest.mark.slow
def test_sigkill_then_rerun_matches_an_uninterrupted_run(tmp_path, tiny_backbone_dir):
    uninterrupted = make_train_dir(tmp_path / "a", tiny_backbone_dir)
    _finish(uninterrupted)

    killed = make_train_dir(tmp_path / "b", tiny_backbone_dir)
    process = subprocess.Popen(train_command(), cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "models" / "fold_0" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    step_at_kill = torch.load(last, weights_only=False)["step"]

    resumed = _finish(killed)
    assert f"resuming at optimizer step {step_at_kill}" in resumed.stderr
    assert _results(killed) == _results(uninterrupted)


def test_params_change_starts_afresh(tmp_path, tiny_backbone_dir):
    run = make_train_dir(tmp_path / "run", tiny_backbone_dir, epochs=1)
    _finish(run)
    import yaml
    params = yaml.safe_load((run / "params.yaml").read_text())
    params["train"]["lr"] = 1.0e-4
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    rerun = _finish(run)
    assert "belongs to a run with other params" in rerun.stderr
    assert "resuming" not in rerun.stderr


def test_finished_run_is_not_resumed(tmp_path, tiny_backbone_dir):
    run = make_train_dir(tmp_path / "run", tiny_backbone_dir, epochs=1)
    first = _finish(run)
    second = _finish(run)
    assert "every fold of this run already finished: training afresh" in second.stderr
    assert "resuming" not in first.stderr + second.stderr


def test_fold_plan_keeps_finished_folds_only_while_resuming_an_interrupted_run():
    from arena_pref.resume import FINISHED, plan_folds
    checkpoint = {"step": 3}
    assert plan_folds({0: FINISHED, 1: checkpoint, 2: None}, resume=True) == {0: FINISHED, 1: checkpoint, 2: None}
    assert plan_folds({0: FINISHED, 1: None}, resume=True) == {0: FINISHED, 1: None}  # killed between folds
    assert plan_folds({0: FINISHED, 1: FINISHED}, resume=True) == {0: None, 1: None}  # forced rerun
    assert plan_folds({0: FINISHED, 1: checkpoint}, resume=False) == {0: None, 1: None}
    assert plan_folds({0: None, 1: None}, resume=True) == {0: None, 1: None}
