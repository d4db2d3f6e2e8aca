"""Checkpoints: written atomically, reloaded without the hub.

A checkpoint is a dict saved with torch.save:
    model: state_dict of SiamesePreferenceModel
    backbone_config: the backbone's config.to_dict() (rebuilds the architecture offline)
    head, dropout, n_side_stats, stats_prior, pooling: how the head was built (SiamesePreferenceModel.spec)
    plus training state in the `last` checkpoint (optimizer, scheduler, scaler, progress).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .backbone import backbone_from_config
from .model import SiamesePreferenceModel, spec_of


def save_atomic(payload, path: str | Path, write: Callable[[Any, BinaryIO], None] | None = None) -> None:
    """Write `payload` to `path` so that a kill mid-write leaves the previous file intact:
    write a temp file in the same directory, fsync it, then rename over the target.
    `write(payload, file)` serialises it; torch.save by default."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        (write or torch.save)(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def model_payload(model: SiamesePreferenceModel) -> dict:
    """What any checkpoint holds: the weights and what is needed to rebuild the module around them."""
    return {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "backbone_config": model.backbone.config.to_dict(),
    } | model.spec()


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; run the train stage first (dvc repro train)")
    # weights_only=False: the payload holds plain dicts of config values and optimizer state that we
    # wrote ourselves; never load checkpoints from untrusted sources.
    return torch.load(path, map_location="cpu", weights_only=False)


def model_from_checkpoint(checkpoint: dict) -> SiamesePreferenceModel:
    """Rebuild the model of a checkpoint (architecture from its config, weights from its state)."""
    backbone = backbone_from_config(checkpoint["backbone_config"])
    model = SiamesePreferenceModel(backbone, **spec_of(checkpoint))
    model.load_state_dict(checkpoint["model"])
    return model
