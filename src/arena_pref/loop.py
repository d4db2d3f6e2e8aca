"""The training loop: setup, epochs of micro-batches, optimizer steps, evaluation, checkpoints.

Kept as one visible function (`train`) with small builders around it. It knows nothing of DVC or
DVCLive: metrics go to a `log_metrics(step, metrics)` callback so that only rank 0 needs a logger.

Accumulation: micro-batches are grouped into windows of `grad_accum_steps`; each micro-batch loss is
divided by its window's size, so a window's gradient is the mean over its micro-batches, and the last
window of an epoch steps the optimizer even when it is shorter. The scheduler counts optimizer steps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .checkpoint import model_payload, save_atomic
from .collate import collate_pairs, length_grouped_batches, pair_lengths
from .infer import predict_pairs
from .metrics import kaggle_log_loss
from .model import SiamesePreferenceModel
from .params import TrainParams
from .precision import Precision, autocast

log = logging.getLogger(__name__)

# fp16 overflow makes GradScaler skip a step and halve its scale; after this many skipped steps in a
# row the scale is 2**-20 of where it was, so the run is diverging rather than finding its scale.
MAX_CONSECUTIVE_NONFINITE = 20


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss that loss scaling could not absorb."""


@dataclass(frozen=True)
class StepPlan:
    """Derived sizes of a run, logged before step one."""

    train_pairs: int
    micro_batches_per_epoch: int
    optimizer_steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    effective_batch: int


def plan_steps(train_pairs: int, batch_size: int, grad_accum_steps: int, epochs: int,
               warmup_ratio: float) -> StepPlan:
    micro = math.ceil(train_pairs / batch_size)
    per_epoch = math.ceil(micro / grad_accum_steps)
    total = per_epoch * epochs
    return StepPlan(train_pairs=train_pairs, micro_batches_per_epoch=micro, optimizer_steps_per_epoch=per_epoch,
                    total_steps=total, warmup_steps=round(total * warmup_ratio),
                    effective_batch=batch_size * grad_accum_steps)


def window_size(micro_batch: int, micro_batches: int, grad_accum_steps: int) -> int:
    """Number of micro-batches in the accumulation window holding `micro_batch` (0-based)."""
    window_start = micro_batch - micro_batch % grad_accum_steps
    return min(grad_accum_steps, micro_batches - window_start)


def is_window_end(micro_batch: int, micro_batches: int, grad_accum_steps: int) -> bool:
    return (micro_batch + 1) % grad_accum_steps == 0 or micro_batch + 1 == micro_batches


def build_optimizer(model: SiamesePreferenceModel, lr: float, head_lr: float,
                    weight_decay: float) -> torch.optim.AdamW:
    """AdamW with a lower learning rate for the pretrained backbone than for the new head, and no
    weight decay on biases and LayerNorm weights (every parameter with fewer than 2 dimensions)."""
    groups = []
    for module, group_lr in ((model.backbone, lr), (model.head, head_lr)):
        params = [p for p in module.parameters() if p.requires_grad]
        groups.append({"params": [p for p in params if p.ndim >= 2], "lr": group_lr, "weight_decay": weight_decay})
        groups.append({"params": [p for p in params if p.ndim < 2], "lr": group_lr, "weight_decay": 0.0})
    return torch.optim.AdamW([g for g in groups if g["params"]])


def evaluate_loss(model: SiamesePreferenceModel, pairs: pd.DataFrame, batch_size: int, device: torch.device,
                  precision: Precision, pad_token_id: int) -> dict[str, float]:
    """Validation loss and accuracy (no TTA) on labelled pairs."""
    predictions = predict_pairs(model, list(pairs["a_ids"]), list(pairs["b_ids"]), batch_size, device,
                                precision, pad_token_id, desc="validate")
    labels = pairs["label"].to_numpy()
    return {"loss": kaggle_log_loss(labels, predictions.forward),
            "acc": float((predictions.forward.argmax(axis=1) == labels).mean())}


@dataclass
class TrainResult:
    best_val_loss: float
    best_step: int
    steps: int


def train(model: SiamesePreferenceModel, train_pairs: pd.DataFrame, valid_pairs: pd.DataFrame,
          params: TrainParams, seed: int, device: torch.device, precision: Precision, pad_token_id: int,
          best_path: Path, last_path: Path, payload_extra: dict,
          log_metrics: Callable[[int, dict[str, float]], None]) -> TrainResult:
    """Train `model` on `train_pairs`, evaluate on `valid_pairs`, and write checkpoints.

    pairs: DataFrames of featurized pairs (a_ids, b_ids, label). `payload_extra` is stored in every
    checkpoint (head and dropout, to rebuild the model). Returns the best validation loss and its step.
    """
    torch.manual_seed(seed)
    model.to(device)
    plan = plan_steps(len(train_pairs), params.batch_size, params.grad_accum_steps, params.epochs,
                      params.warmup_ratio)
    log.info("train pairs %d, valid pairs %d, device %s, precision %s", plan.train_pairs, len(valid_pairs),
             device, precision.name)
    log.info("micro-batch %d x accumulation %d = effective batch %d; %d micro-batches and %d optimizer steps "
             "per epoch; %d steps in all, %d warmup", params.batch_size, params.grad_accum_steps,
             plan.effective_batch, plan.micro_batches_per_epoch, plan.optimizer_steps_per_epoch,
             plan.total_steps, plan.warmup_steps)

    optimizer = build_optimizer(model, params.lr, params.head_lr, params.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, plan.warmup_steps, plan.total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)
    lengths = pair_lengths(train_pairs["a_ids"], train_pairs["b_ids"])
    a_ids, b_ids = list(train_pairs["a_ids"]), list(train_pairs["b_ids"])
    labels = torch.tensor(train_pairs["label"].to_numpy(), dtype=torch.long)

    step, best_val_loss, best_step, nonfinite_run = 0, math.inf, 0, 0

    def validate_and_checkpoint(epoch: int) -> None:
        nonlocal best_val_loss, best_step
        metrics = evaluate_loss(model, valid_pairs, params.batch_size * 2, device, precision, pad_token_id)
        model.train()
        log_metrics(step, {"val/loss": metrics["loss"], "val/acc": metrics["acc"]})
        log.info("step %d: val loss %.4f, val acc %.4f", step, metrics["loss"], metrics["acc"])
        payload = model_payload(model, **payload_extra) | {"step": step, "epoch": epoch, "val_loss": metrics["loss"]}
        if metrics["loss"] < best_val_loss:
            best_val_loss, best_step = metrics["loss"], step
            save_atomic(payload, best_path)
        save_atomic(payload | {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                               "scaler": scaler.state_dict()}, last_path)

    for epoch in range(params.epochs):
        model.train()
        batches = length_grouped_batches(lengths, params.batch_size, seed + epoch)
        window_loss, window_correct, window_pairs = 0.0, 0, 0
        progress = tqdm(batches, desc=f"epoch {epoch + 1}/{params.epochs}", unit="batch")
        for micro, index in enumerate(progress):
            batch = collate_pairs([a_ids[i] for i in index], [b_ids[i] for i in index], pad_token_id,
                                  precision.pad_to_multiple_of)
            target = labels[index].to(device)
            with autocast(precision, device):
                logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            # The loss is computed in fp32 on upcast logits: fp16 log-softmax loses the small
            # probability differences this task is about.
            loss = F.cross_entropy(logits.float(), target)
            if not torch.isfinite(loss) and not precision.use_grad_scaler:
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at optimizer step {step + 1} (epoch {epoch + 1}, micro-batch {micro + 1}) "
                    f"with precision {precision.name}; lower train.lr, check the input rows, or use fp32")
            scaler.scale(loss / window_size(micro, len(batches), params.grad_accum_steps)).backward()
            window_loss += loss.item() * len(index)
            window_correct += int((logits.argmax(dim=-1) == target).sum())
            window_pairs += len(index)
            if not is_window_end(micro, len(batches), params.grad_accum_steps):
                continue
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            scale_before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            skipped = precision.use_grad_scaler and scaler.get_scale() < scale_before
            nonfinite_run = nonfinite_run + 1 if skipped else 0
            if nonfinite_run >= MAX_CONSECUTIVE_NONFINITE:
                raise NonFiniteLossError(
                    f"fp16 gradients were non-finite for {nonfinite_run} optimizer steps in a row up to step {step}; "
                    "lower train.lr or train.max_grad_norm, or use train.precision=bf16/fp32")
            train_metrics = {"train/loss": window_loss / window_pairs, "train/acc": window_correct / window_pairs}
            log_metrics(step, train_metrics | {"train/lr": scheduler.get_last_lr()[0]})
            progress.set_postfix(loss=f"{train_metrics['train/loss']:.4f}", step=step)
            window_loss, window_correct, window_pairs = 0.0, 0, 0
            if params.eval_every_steps and step % params.eval_every_steps == 0 and micro + 1 < len(batches):
                validate_and_checkpoint(epoch)
        validate_and_checkpoint(epoch)
    return TrainResult(best_val_loss=best_val_loss, best_step=best_step, steps=step)

