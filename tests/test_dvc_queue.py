"""A learning-rate sweep through the DVC experiment queue: `dvc exp run --queue` with a comma sweep,
`dvc queue start -j 1`, wait on `dvc queue status`, then `dvc exp show --json`. The queue runs each
experiment in a temp copy of the repo through a detached celery worker (`dvc exp queue-worker`);
the fixture stops that worker whatever happens. In a tiny pipeline repo of its own, as `dvc repro`
left it (conftest's private_pipeline_repo, one per module)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import dvc_args as _dvc
from conftest import run_checked as _run

LRS = (1.0e-5, 3.0e-5)
QUEUE_TIMEOUT_S = 1200  # two tiny train+evaluate+predict runs on a shared 2-core CPU
WORKER_PID = Path(".dvc/tmp/exps/celery/dvc-exp-worker-1.pid")
WORKER_LOG = Path(".dvc/tmp/exps/celery/dvc-exp-worker-1.out")


def _queue_status(path: Path, env: dict) -> str:
    # The worker takes the repo lock while it collects a finished experiment: retry, don't fail.
    done = subprocess.run(_dvc("queue", "status"), cwd=path, env=env, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def _task_statuses(status_text: str) -> list[str]:
    """The Status column of `dvc queue status` (one row per task)."""
    return [line.split()[-1] for line in status_text.splitlines()
            if line.split() and line.split()[-1] in {"Queued", "Running", "Success", "Failed"}]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _stop_worker(path: Path, env: dict) -> None:
    """Make sure the worker this test started, and the experiment it runs, are gone.

    `dvc queue start` spawns `dvc exp queue-worker` in a new process group (with the `dvc exp exec-run`
    and stage processes under it); the worker exits by itself about 10 s after the queue empties.
    `dvc queue stop` only while it is alive: its shutdown message stays in the filesystem broker
    (.dvc/tmp/exps/celery/broker/in/*pidbox.msg), and the next worker in that repo, which has the same
    node name, reads it and stops after its first task."""
    pid_file = path / WORKER_PID
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    if _alive(pid):
        subprocess.run(_dvc("queue", "stop", "--kill"), cwd=path, env=env, capture_output=True, timeout=120)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid):
            return
        os.killpg(os.getpgid(pid), sig)
        time.sleep(2)


@pytest.fixture(scope="module")
def sweep(private_pipeline_repo):
    """Queue a two-value lr sweep on top of the committed repro and run it to completion."""
    path, env = private_pipeline_repo
    _run(["git", "add", "-A"], path, env)  # dvc.lock and the uncached metrics: the sweep's baseline
    _run(["git", "commit", "-qm", "reproduced"], path, env)
    # Target `evaluate`: the sweep needs its metrics, not a submission (saves a predict run per value).
    queued = _run(_dvc("exp", "run", "--queue", "-S", "train.lr=1.0e-5,3.0e-5", "evaluate"), path, env)
    assert queued.count("Queued experiment") == len(LRS), queued
    assert _task_statuses(_queue_status(path, env)) == ["Queued"] * len(LRS)

    try:
        _run(_dvc("queue", "start", "-j", "1"), path, env)
        deadline = time.monotonic() + QUEUE_TIMEOUT_S
        worker_gone_polls = 0
        while True:
            status = _queue_status(path, env)
            statuses = _task_statuses(status)
            if len(statuses) == len(LRS) and set(statuses) <= {"Success", "Failed"}:
                break
            pid_file = path / WORKER_PID
            worker_gone_polls += pid_file.exists() and not _alive(int(pid_file.read_text()))
            if time.monotonic() > deadline or worker_gone_polls > 2:
                log = (path / WORKER_LOG).read_text(errors="replace")[-4000:] if (path / WORKER_LOG).exists() else ""
                pytest.fail(f"queue not done (worker gone: {worker_gone_polls > 2}):\n{status}\nworker log:\n{log}")
            time.sleep(5)
        if "Failed" in statuses:
            log = (path / WORKER_LOG).read_text(errors="replace")[-4000:]
            pytest.fail(f"queued experiment failed:\n{status}\nworker log:\n{log}")
    finally:
        _stop_worker(path, env)
    return path, env, status


def _experiments(shown: list[dict]) -> list[dict]:
    """The experiment revisions in `dvc exp show --json` (baseline commits left out)."""
    found = []
    for commit in shown:
        for exp in commit.get("experiments") or []:
            found.extend(exp.get("revs", []))
    return found


@pytest.mark.slow
def test_queued_sweep_runs_both_experiments(sweep):
    path, env, status = sweep
    assert _task_statuses(status) == ["Success"] * len(LRS)
    pid_file = path / WORKER_PID
    assert not pid_file.exists() or not _alive(int(pid_file.read_text())), "queue worker left running"


@pytest.mark.slow
def test_exp_show_lists_each_lr_with_its_evaluate_metrics(sweep):
    path, env, _ = sweep
    shown = json.loads(_run(_dvc("exp", "show", "--json"), path, env))
    by_lr = {}
    for revision in _experiments(shown):
        data = revision["data"]
        lr = data["params"]["params.yaml"]["data"]["train"]["lr"]
        by_lr[lr] = data["metrics"]["metrics/evaluate/metrics.json"]["data"]
    assert set(by_lr) == set(LRS)
    for metrics in by_lr.values():
        assert 0 < metrics["log_loss"] and 0 <= metrics["accuracy"] <= 1
