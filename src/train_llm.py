"""Stage llm: a decoder LLM with LoRA as a 3-way judge, on the same folds as the other members.

    python -m torch.distributed.run --standalone --nproc_per_node 1 src/train_llm.py --prepared data/prepared \
        --models models/llm --live-dir metrics/llm_train --out-dir metrics/llm \
        --oof data/predictions/oof_llm.csv --test data/predictions/test_llm.csv
Reads base.seed, train.fold and llm.* from params.yaml (docs/llm.md). Per validation fold k: trains LoRA
adapters and a head (models/llm/fold_k/best.safetensors, last.pt for resuming after a kill, DVCLive curves
under metrics/llm_train/fold_k), then predicts fold k and the test rows with swap TTA. With llm.enabled
false it writes empty placeholders and loads no model.
"""

import logging
from pathlib import Path

import pandas as pd
import torch

from arena_pref.distributed import barrier, init_from_env, shutdown
from arena_pref.errors import run_stage
from arena_pref.files import stage_arguments
from arena_pref.folds import validation_folds
from arena_pref.llm_model import load_llm_tokenizer
from arena_pref.llm_train import KEY_COLUMNS, Paths, encode_tables, predict_folds, train_folds, write_disabled
from arena_pref.params import load_params
from arena_pref.precision import resolve_device, resolve_precision
from arena_pref.predictions import write_cross_fit

log = logging.getLogger("llm")


def main() -> None:
    args = stage_arguments(__doc__, "--prepared", "--models", "--live-dir", "--out-dir", "--oof", "--test")
    params = load_params()
    m = params.llm
    paths = Paths(models=Path(args.models), live=Path(args.live_dir))
    metrics_path = Path(args.out_dir) / "metrics.json"
    if not m.enabled:
        write_disabled(metrics_path, Path(args.oof), Path(args.test), paths)
        log.info("llm.enabled is false: wrote empty placeholders")
        return
    device = resolve_device(m.device)
    ctx = init_from_env(device.type)
    if device.type == "cuda" and ctx.enabled:
        device = resolve_device(f"cuda:{ctx.local_rank}")
        torch.cuda.set_device(device)
    precision = resolve_precision(m.precision, device)
    for root in (paths.models, paths.live):
        (root / "DISABLED").unlink(missing_ok=True)

    train_rows = pd.read_parquet(f"{args.prepared}/train.parquet")
    test_rows = pd.read_parquet(f"{args.prepared}/test.parquet")
    tokenizer = load_llm_tokenizer(m.backbone, m.revision)
    table, test, meta = encode_tables(train_rows, test_rows, tokenizer, m)
    folds = validation_folds(table["fold"].to_numpy(), params.train.fold)
    train_folds(table, folds, params, tokenizer.pad_token_id, meta, paths, device, precision, ctx)
    barrier(ctx)
    if ctx.is_main:  # one process predicts: the other ranks' share would be too small to pay for the gathering
        fit = predict_folds(table, test, folds, params, tokenizer.pad_token_id, paths.models, device, precision)
        write_cross_fit("llm", fit, table[KEY_COLUMNS], folds, test["id"], metrics_path, args.oof, args.test)
    shutdown(ctx)


if __name__ == "__main__":
    run_stage(main)
