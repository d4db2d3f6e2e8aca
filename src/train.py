"""Stage train: fine-tune the siamese model on every fold but train.fold, validate on train.fold.

    python src/train.py --features data/features --models models --live-dir metrics/train
Reads base.seed, model.* and train.* from params.yaml. Writes models/best.pt (lowest validation
loss), models/last.pt (with optimizer state), and DVCLive logs of loss and accuracy per step.
"""

import argparse
import logging
from pathlib import Path

import pandas as pd
from dvclive import Live

from arena_pref.backbone import load_pretrained_backbone
from arena_pref.files import read_json, setup_logging
from arena_pref.folds import split_fold
from arena_pref.loop import train
from arena_pref.model import SiamesePreferenceModel
from arena_pref.params import load_params
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--live-dir", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    device = resolve_device(params.train.device)
    precision = resolve_precision(params.train.precision, device)

    pairs = pd.read_parquet(f"{args.features}/train.parquet")
    pad_token_id = read_json(f"{args.features}/meta.json")["pad_token_id"]
    train_pairs, valid_pairs = split_fold(pairs, params.train.fold)
    backbone = load_pretrained_backbone(params.model.backbone, params.model.revision)
    check_fits_positions(backbone.config, pairs)
    model = SiamesePreferenceModel(backbone, params.model.head, params.model.dropout)

    # dvcyaml=None: plots are declared by hand in dvc.yaml (DVCLive would otherwise rewrite it).
    with Live(dir=args.live_dir, dvcyaml=None, save_dvc_exp=False, report=None) as live:
        def log_metrics(step: int, metrics: dict) -> None:
            live.step = step
            for name, value in metrics.items():
                live.log_metric(name, value)

        result = train(model, train_pairs, valid_pairs, params.train, params.base.seed, device, precision,
                       pad_token_id, Path(args.models) / "best.pt", Path(args.models) / "last.pt",
                       {"head": params.model.head, "dropout": params.model.dropout}, log_metrics)
        live.summary["best"] = {"val_loss": result.best_val_loss, "step": result.best_step}
    log.info("best validation loss %.4f at step %d of %d", result.best_val_loss, result.best_step, result.steps)


if __name__ == "__main__":
    main()
