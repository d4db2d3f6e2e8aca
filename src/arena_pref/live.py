"""DVCLive for the train stage: a fresh log, or the log of a resumed run cut back to its checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from dvclive import Live

if TYPE_CHECKING:
    from .loop import TrainResult


def truncate_after(live_dir: str | Path, step: int) -> None:
    """Drop rows logged after `step` from every metric table under `live_dir`/plots/metrics: a killed
    run logged past its last checkpoint, and the resumed run logs those steps again."""
    for table_path in (Path(live_dir) / "plots" / "metrics").rglob("*.tsv"):
        table = pd.read_csv(table_path, sep="\t")
        table[table["step"] <= step].to_csv(table_path, sep="\t", index=False)


def open_live(live_dir: str | Path, resume_step: int | None) -> Live:
    """A DVCLive logger writing to `live_dir`; with `resume_step` the existing log is kept up to that step.

    dvcyaml=None: the plots are declared by hand in dvc.yaml (DVCLive would otherwise rewrite it).
    """
    if resume_step is not None:
        truncate_after(live_dir, resume_step)
    return Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None, resume=resume_step is not None)


def train_logged(run: Callable[[Callable[[int, dict], None]], TrainResult], live_dir: str | Path,
                 resume_step: int | None, is_main: bool) -> TrainResult:
    """Call `run(log_metrics)` (a loop.train call) with its metrics going to a DVCLive log at `live_dir`
    (see `open_live`) on rank 0, with a no-op logger on the other ranks; the log's summary records the
    best validation loss and its step. Returns `run`'s TrainResult."""
    if not is_main:
        return run(lambda *_: None)
    with open_live(live_dir, resume_step) as live:
        def log_metrics(step: int, metrics: dict) -> None:
            live.step = step
            for name, value in metrics.items():
                live.log_metric(name, value)

        result = run(log_metrics)
        live.summary["best"] = {"val_loss": result.best_val_loss, "step": result.best_step}
    return result
