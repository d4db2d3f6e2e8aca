"""Deciding how a (re)started training run continues: which checkpoints belong to it, which folds to
keep, resume or train afresh."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from .checkpoint import load_checkpoint
from .params import Params

log = logging.getLogger(__name__)


def run_fingerprint(params: Params, features_meta: dict, world_size: int, fold: int,
                    teacher_digest: str | None = None) -> str:
    """Identity of one fold's training run: a last checkpoint is resumable only by a run with the same one.
    `teacher_digest`: the teacher table's, when the run reads it (soft_targets.uses_teacher)."""
    train_settings = asdict(params.train)
    train_settings.pop("resume")
    train_settings.pop("nproc_per_node")  # world_size below is what the run really had
    identity = {"seed": params.base.seed, "model": asdict(params.model), "train": train_settings,
                "features": features_meta, "world_size": world_size, "fold": fold}
    if teacher_digest is not None:  # absent otherwise, so runs without a teacher keep their fingerprints
        identity["teacher"] = teacher_digest
    return hash_identity(identity)


def hash_identity(identity: dict) -> str:
    """sha256 of a JSON-serialisable description of a run (the fingerprint stored in its checkpoints)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


FINISHED = "finished"


def checkpoint_state(last_path: Path, fingerprint: str) -> dict | str | None:
    """FINISHED, the checkpoint to resume from, or None (no checkpoint, or one of another run)."""
    if not last_path.is_file():
        return None
    checkpoint = load_checkpoint(last_path)
    if checkpoint.get("fingerprint") != fingerprint:
        log.info("%s belongs to a run with other params or features", last_path)
        return None
    return FINISHED if checkpoint["progress"]["epoch"] >= checkpoint["epochs"] else checkpoint


def plan_folds(states: dict[int, dict | str | None], resume: bool) -> dict[int, dict | str | None]:
    """What to do per fold: FINISHED (keep its outputs), a checkpoint (resume), None (train afresh).

    Finished folds are kept only while resuming an interrupted run (some fold unfinished). When every
    fold already finished, DVC reran the stage on purpose (forced, or code changed): train afresh.
    """
    finished = [fold for fold, state in states.items() if state == FINISHED]
    partial = [fold for fold, state in states.items() if state not in (None, FINISHED)]
    interrupted = bool(partial) or 0 < len(finished) < len(states)
    if resume and interrupted:
        return states
    if resume and len(finished) == len(states):
        log.info("every fold of this run already finished: training afresh")
    return {fold: None for fold in states}
