"""Stage train: fine-tune the siamese model on every fold but train.fold, validate on train.fold.

    python src/train.py --features data/features --models models --live-dir metrics/train
Reads base.seed, model.* and train.* from params.yaml. Writes models/best.pt (lowest validation
loss), models/last.pt (with optimizer state, for resuming), and DVCLive logs of loss and accuracy.

With train.resume, a rerun after a crash or kill continues from models/last.pt when that checkpoint
belongs to the same run (same params and features) and did not finish; otherwise it starts afresh.
Multi-GPU: `torchrun --nproc_per_node N src/train.py ...` (see README); rank 0 logs and checkpoints.
"""

import argparse
import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from arena_pref.backbone import load_pretrained_backbone
from arena_pref.checkpoint import load_checkpoint
from arena_pref.distributed import barrier, init_from_env, shutdown
from arena_pref.encode import SIDE_STATS
from arena_pref.files import read_json, setup_logging
from arena_pref.folds import split_fold
from arena_pref.live import open_live
from arena_pref.loop import train
from arena_pref.model import SiamesePreferenceModel
from arena_pref.params import Params, load_params
from arena_pref.precision import resolve_device, resolve_precision

log = logging.getLogger("train")


def check_fits_positions(config, pairs: pd.DataFrame) -> None:
    """Models with absolute position embeddings cannot read sides longer than they were trained on
    (DeBERTa's relative positions can); fail before training rather than on an index error."""
    longest = int(max(pairs["a_ids"].map(len).max(), pairs["b_ids"].map(len).max()))
    limit = getattr(config, "max_position_embeddings", None)
    relative = config.model_type == "deberta-v2" and not getattr(config, "position_biased_input", True)
    if limit is not None and not relative and longest > limit:
        raise ValueError(f"featurize.max_tokens_per_side gives sides of {longest} tokens but the backbone has "
                         f"{limit} positions; set featurize.max_tokens_per_side <= {limit}")


def run_fingerprint(params: Params, features_meta: dict, world_size: int) -> str:
    """Identity of a training run: a last checkpoint is resumable only by a run with the same one."""
    train_settings = asdict(params.train)
    train_settings.pop("resume")
    identity = {"seed": params.base.seed, "model": asdict(params.model), "train": train_settings,
                "features": features_meta, "world_size": world_size}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def resumable_checkpoint(last_path: Path, fingerprint: str) -> dict | None:
    """The last checkpoint if it belongs to this run and stopped before the end, else None (logged)."""
    if not last_path.is_file():
        return None
    checkpoint = load_checkpoint(last_path)
    if checkpoint.get("fingerprint") != fingerprint:
        log.info("%s belongs to a run with other params or features: starting afresh", last_path)
        return None
    if checkpoint["progress"]["epoch"] >= checkpoint["epochs"]:
        log.info("%s is the end of a finished run: starting afresh", last_path)
        return None
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--live-dir", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    device = resolve_device(params.train.device)
    ctx = init_from_env(device.type)
    if device.type == "cuda" and ctx.enabled:
        device = resolve_device(f"cuda:{ctx.local_rank}")
        torch.cuda.set_device(device)
    precision = resolve_precision(params.train.precision, device)

    pairs = pd.read_parquet(f"{args.features}/train.parquet")
    features_meta = read_json(f"{args.features}/meta.json")
    train_pairs, valid_pairs = split_fold(pairs, params.train.fold)
    backbone = load_pretrained_backbone(params.model.backbone, params.model.revision)
    check_fits_positions(backbone.config, pairs)
    n_side_stats = len(SIDE_STATS) if params.model.side_stats else 0
    torch.manual_seed(params.base.seed)  # the head's initial weights
    model = SiamesePreferenceModel(backbone, params.model.head, params.model.dropout, n_side_stats)

    models, live_dir = Path(args.models), Path(args.live_dir)
    best_path, last_path = models / "best.pt", models / "last.pt"
    fingerprint = run_fingerprint(params, features_meta, ctx.world_size)
    resume_from = resumable_checkpoint(last_path, fingerprint) if params.train.resume else None
    if resume_from is None and ctx.is_main:
        # Outputs are persisted between runs (dvc.yaml) so that a resume finds them; a fresh run must
        # not leave a stale best.pt or stale curves behind.
        best_path.unlink(missing_ok=True)
        last_path.unlink(missing_ok=True)
        shutil.rmtree(live_dir, ignore_errors=True)
    barrier(ctx)
    payload_extra = {"fingerprint": fingerprint, "epochs": params.train.epochs}

    if not ctx.is_main:
        train(model, train_pairs, valid_pairs, params.train, params.base.seed, device, precision,
              features_meta["pad_token_id"], best_path, last_path, payload_extra, lambda *_: None, resume_from, ctx)
        shutdown(ctx)
        return
    with open_live(live_dir, resume_from["step"] if resume_from else None) as live:
        def log_metrics(step: int, metrics: dict) -> None:
            live.step = step
            for name, value in metrics.items():
                live.log_metric(name, value)

        result = train(model, train_pairs, valid_pairs, params.train, params.base.seed, device, precision,
                       features_meta["pad_token_id"], best_path, last_path, payload_extra, log_metrics,
                       resume_from, ctx)
        live.summary["best"] = {"val_loss": result.best_val_loss, "step": result.best_step}
    log.info("best validation loss %.4f at step %d of %d", result.best_val_loss, result.best_step, result.steps)
    shutdown(ctx)


if __name__ == "__main__":
    main()
