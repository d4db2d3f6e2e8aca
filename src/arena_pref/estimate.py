"""How long a training run will take, measured on the real model and the real batches before step one,
so that a CPU run that would take hours says so (and what to run instead) before it starts.

The estimate times forward + backward of one training micro-batch of median width (after one warm-up
pass) and scales it by the padded tokens of the run: every training batch once per epoch, plus one
validation pass (forward only, about a third of forward + backward) per evaluation. Optimizer steps are
left out: AdamW costs a fraction of a second per step, against seconds per micro-batch on a CPU.
The model's parameters and the RNG are left as they were: gradients are cleared and the RNG state
restored, so a run with the estimate trains exactly as one without it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from .collate import PairColumns, length_grouped_batches, sorted_batches
from .loop import capture_rng, restore_rng
from .model import SiamesePreferenceModel
from .params import TrainParams
from .precision import Precision, autocast

log = logging.getLogger(__name__)

FORWARD_SHARE = 1 / 3  # forward-only cost relative to forward + backward (backward is about twice forward)
LONG_RUN_SECONDS = 30 * 60  # above this, a CPU run lists the cheaper alternatives
CHEAPER_ALTERNATIVES = (
    "bash scripts/offline.sh (pretrained MiniLM-L6, 256 tokens, fold 0: minutes on a laptop)",
    "-S train.fold=0 (one fold instead of cross-validation)",
    "-S featurize.max_tokens_per_side=256 (about half the tokens)",
    "-S train.epochs=1",
    "a CUDA GPU (train.device=auto picks it; fp16 is tens of times faster)",
)


def padded_tokens(batches: list[np.ndarray], lengths: np.ndarray) -> int:
    """Tokens through the backbone for these batches: each batch pads both sides of its pairs to its longest."""
    return int(sum(2 * len(index) * lengths[index].max() for index in batches if len(index)))


def seconds_per_token(model: SiamesePreferenceModel, columns: PairColumns, batch_size: int, device: torch.device,
                      precision: Precision, pad_token_id: int) -> float:
    """Seconds of forward + backward per padded token, timed on the training batch of median width.
    Leaves the parameters, their gradients (None) and the RNG state as they were."""
    lengths = columns.lengths()
    batches = length_grouped_batches(lengths, batch_size, seed=0)
    widths = [lengths[index].max() for index in batches]
    index = batches[int(np.argsort(widths)[len(widths) // 2])]
    batch = {k: v.to(device) for k, v in columns.batch(index, pad_token_id, precision.pad_to_multiple_of).items()}
    target = torch.zeros(len(index), dtype=torch.long, device=device)
    rng, was_training = capture_rng(), model.training
    model.to(device).train()
    try:
        for _ in range(2):  # the first pass warms up kernels and allocators; the second is timed
            start = time.perf_counter()
            with autocast(precision, device):
                logits = model(**batch)
            F.cross_entropy(logits.float(), target).backward()
            elapsed = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
    finally:
        restore_rng(rng)
        model.train(was_training)
    return elapsed / padded_tokens([np.arange(len(index))], lengths[index])


def run_seconds(train_columns: PairColumns, valid_columns: PairColumns, params: TrainParams, folds: int,
                token_seconds: float) -> float:
    """Estimated seconds for `folds` folds of this shape: training passes plus validation passes."""
    train_lengths, valid_lengths = train_columns.lengths(), valid_columns.lengths()
    train_tokens = padded_tokens(length_grouped_batches(train_lengths, params.batch_size, seed=0), train_lengths)
    valid_tokens = padded_tokens(sorted_batches(valid_lengths, params.batch_size * 2), valid_lengths)
    steps_per_epoch = -(-len(train_columns) // (params.batch_size * params.grad_accum_steps))
    evals_per_epoch = 1 + (steps_per_epoch - 1) // params.eval_every_steps if params.eval_every_steps else 1
    per_fold = params.epochs * (train_tokens + evals_per_epoch * FORWARD_SHARE * valid_tokens) * token_seconds
    return folds * per_fold


def log_estimate(seconds: float, folds: int, device: torch.device) -> None:
    """Log the estimate; on a CPU, a run longer than LONG_RUN_SECONDS also lists what to run instead."""
    log.info("estimated training time: %.0f min for %d fold(s) on %s (timed on one micro-batch; the tqdm bar "
             "shows the real pace)", seconds / 60, folds, device)
    if device.type == "cpu" and seconds > LONG_RUN_SECONDS:
        log.warning("this is a long run for a CPU (%.1f hours). Cheaper alternatives:\n  %s", seconds / 3600,
                    "\n  ".join(CHEAPER_ALTERNATIVES))
