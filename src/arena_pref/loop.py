"""The training loop: setup, epochs of micro-batches, optimizer steps, evaluation, checkpoints.

Kept as one visible function (`train`) with small builders around it. It knows nothing of DVC or
DVCLive: metrics go to a `log_metrics(step, metrics)` callback, called on rank 0 only.

Resume: every evaluation writes the last checkpoint with model, optimizer, scheduler, GradScaler, RNG
states and `Progress` (step, epoch, micro-batch); batch order is a pure function of seed and epoch, so a
resumed run replays exactly the batches an uninterrupted run would have seen.

Accumulation: micro-batches are grouped into windows of `grad_accum_steps`; each micro-batch loss is
divided by its window's size, so a window's gradient is the mean over its micro-batches, and the last
window of an epoch steps the optimizer even when it is shorter. The scheduler counts optimizer steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .checkpoint import model_payload, save_atomic
from .collate import PairColumns, length_grouped_batches
from .infer import predict_pairs
from .distributed import SINGLE, DistContext, all_reduce_sum, shard
from .errors import InputError
from .metrics import row_log_losses
from .model import SiamesePreferenceModel
from .params import TrainParams
from .precision import Precision, autocast

log = logging.getLogger(__name__)

# fp16 overflow makes GradScaler skip a step and halve its scale; after this many skipped steps in a
# row the scale is 2**-20 of where it was, so the run is diverging rather than finding its scale.
MAX_CONSECUTIVE_NONFINITE = 20


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss that loss scaling could not absorb."""


def _siamese_forward_probs(model, pairs: pd.DataFrame, batch_size: int, device: torch.device, precision: Precision,
                           pad_token_id: int, desc: str, show_progress: bool) -> np.ndarray:
    return predict_pairs(model, PairColumns(pairs), batch_size, device, precision, pad_token_id, desc=desc,
                         show_progress=show_progress).forward


def _load_model_state(model: torch.nn.Module, checkpoint: dict) -> None:
    model.load_state_dict(checkpoint["model"])


@dataclass(frozen=True)
class ModelIO:
    """What the loop needs to know about a kind of model besides its forward(**batch) -> (B, 3) logits and
    its `backbone` and `head` submodules (the optimizer's two learning rates). The defaults are the
    siamese model's; the LLM member (llm_model.LLM_IO) reads one sequence per pair and checkpoints only
    its adapters and head.

    columns(pairs): an object with lengths() and batch(index, pad_token_id, pad_to_multiple_of).
    forward_probs(model, pairs, batch_size, device, precision, pad_token_id, desc, show_progress): (n, 3)
        probabilities without TTA, for the validation loss.
    payload(model): the weights part of a checkpoint; load(model, checkpoint) puts them back.
    save_best(payload, path): writes the best checkpoint.
    """

    columns: Callable[[pd.DataFrame], Any] = PairColumns
    forward_probs: Callable[..., np.ndarray] = _siamese_forward_probs
    payload: Callable[[torch.nn.Module], dict] = model_payload
    load: Callable[[torch.nn.Module, dict], None] = _load_model_state
    save_best: Callable[[dict, Path], None] = save_atomic


SIAMESE_IO = ModelIO()


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
               warmup_ratio: float, world_size: int = 1) -> StepPlan:
    """Sizes of a run; micro-batches are counted per rank (each rank takes every world_size-th one)."""
    micro = math.ceil(math.ceil(train_pairs / batch_size) / world_size)
    per_epoch = math.ceil(micro / grad_accum_steps)
    total = per_epoch * epochs
    return StepPlan(train_pairs=train_pairs, micro_batches_per_epoch=micro, optimizer_steps_per_epoch=per_epoch,
                    total_steps=total, warmup_steps=round(total * warmup_ratio),
                    effective_batch=batch_size * grad_accum_steps * world_size)


def window_size(micro_batch: int, micro_batches: int, grad_accum_steps: int) -> int:
    """Number of micro-batches in the accumulation window holding `micro_batch` (0-based)."""
    window_start = micro_batch - micro_batch % grad_accum_steps
    return min(grad_accum_steps, micro_batches - window_start)


def is_window_end(micro_batch: int, micro_batches: int, grad_accum_steps: int) -> bool:
    return (micro_batch + 1) % grad_accum_steps == 0 or micro_batch + 1 == micro_batches


# A backbone parameter's layer: "layer.3." (BERT, DeBERTa) or "layers.3." (most decoders).
LAYER_INDEX = re.compile(r"\blayers?\.(\d+)\.")


def layers_below_top(name: str, n_layers: int) -> int:
    """How many layers a backbone parameter sits below the top encoder layer: 0 for the top layer and for
    anything outside the numbered layers except the embeddings (a final norm, a pooler), n_layers for the
    embeddings (every parameter whose name says "embeddings", DeBERTa's relative ones too)."""
    match = LAYER_INDEX.search(name)
    if match:
        return max(n_layers - 1 - int(match.group(1)), 0)
    return n_layers if "embeddings" in name else 0


def freeze_bottom_layers(model: SiamesePreferenceModel, freeze_layers: int) -> None:
    """Keep the backbone's `freeze_layers` lowest layers at their pretrained weights, the embeddings
    counting as the lowest (`layers_below_top`): 1 freezes the embeddings, 3 the embeddings and the first
    two encoder layers. On a small training set the general lower layers then cannot drift, and backward
    stops at the lowest trainable layer, so a step costs less. The top encoder layer always learns."""
    if not freeze_layers:
        return
    n_layers = model.backbone.config.num_hidden_layers
    if freeze_layers > n_layers:
        raise InputError(f"train.freeze_layers is {freeze_layers}, but the backbone has {n_layers} encoder layers "
                         f"and the embeddings: at most {n_layers} of them can be frozen (the top layer learns)")
    for name, param in model.backbone.named_parameters():
        if layers_below_top(name, n_layers) > n_layers - freeze_layers:
            param.requires_grad_(False)


def build_optimizer(model: SiamesePreferenceModel, lr: float, head_lr: float, weight_decay: float,
                    layer_lr_decay: float = 1.0) -> torch.optim.AdamW:
    """AdamW with a lower learning rate for the pretrained backbone than for the new head, and no
    weight decay on biases and LayerNorm weights (every parameter with fewer than 2 dimensions).

    layer_lr_decay < 1 (layer-wise learning-rate decay): a backbone parameter k layers below the top
    layer (`layers_below_top`) gets lr * layer_lr_decay**k, so the lower, more general layers move
    less than the task-specific top ones. Group 0 always holds the backbone's top rate `lr` (the
    logged train/lr).
    """
    depth_of = {}
    if layer_lr_decay != 1.0:
        n_layers = model.backbone.config.num_hidden_layers
        depth_of = {name: layers_below_top(name, n_layers) for name, _ in model.backbone.named_parameters()}
    groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
    rated = [(p, lr * layer_lr_decay ** depth_of.get(name, 0)) for name, p in model.backbone.named_parameters()]
    # Everything outside the backbone is new: the head, a learned pool (model.pooling: attention).
    rated += [(p, head_lr) for name, p in model.named_parameters() if not name.startswith("backbone.")]
    for param, group_lr in sorted(rated, key=lambda item: item[1] != lr):  # stable: the top rate's groups first
        if param.requires_grad:
            groups.setdefault((group_lr, param.ndim >= 2), []).append(param)
    return torch.optim.AdamW([{"params": params, "lr": group_lr, "weight_decay": weight_decay if decayed else 0.0}
                              for (group_lr, decayed), params in groups.items()])


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the model's weights (decay per optimizer step; None at 0): the
    weights that are validated and checkpointed as best, while the optimizer keeps updating the live ones.
    Parameters only: the backbones here keep no running statistics, and averaging integer buffers
    (position ids) would round them."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


def evaluate_loss(model: SiamesePreferenceModel, pairs: pd.DataFrame, batch_size: int, device: torch.device,
                  precision: Precision, pad_token_id: int, ctx: DistContext = SINGLE,
                  io: ModelIO = SIAMESE_IO) -> dict[str, float]:
    """Validation loss and accuracy (no TTA) on labelled pairs; under torchrun each rank scores every
    world_size-th pair and the sums are all-reduced, so every rank returns the full-set figures."""
    mine = pairs.iloc[ctx.rank::ctx.world_size]
    forward = io.forward_probs(model, mine, batch_size, device, precision, pad_token_id, desc="validate",
                               show_progress=ctx.is_main)
    labels = mine["label"].to_numpy()
    loss_sum, correct, count = all_reduce_sum(
        [float(row_log_losses(labels, forward).sum()), float((forward.argmax(axis=1) == labels).sum()),
         float(len(mine))], ctx, device)
    return {"loss": loss_sum / count, "acc": correct / count}


@dataclass
class Progress:
    """Where a run stands. Saved in the last checkpoint, so a killed run continues from there."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # epoch in progress
    micro: int = 0  # micro-batches of `epoch` already done (always the end of a window)
    best_val_loss: float = math.inf
    best_step: int = 0
    nonfinite_run: int = 0  # optimizer steps skipped in a row by the fp16 GradScaler


@dataclass
class TrainResult:
    best_val_loss: float
    best_step: int
    steps: int


def capture_rng() -> dict:
    """RNG states that training draws from (dropout), for an exact resume."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(model: SiamesePreferenceModel, train_pairs: pd.DataFrame, valid_pairs: pd.DataFrame,
          params: TrainParams, seed: int, device: torch.device, precision: Precision, pad_token_id: int,
          best_path: Path, last_path: Path, payload_extra: dict,
          log_metrics: Callable[[int, dict[str, float]], None], resume_from: dict | None = None,
          ctx: DistContext = SINGLE, io: ModelIO = SIAMESE_IO, targets: np.ndarray | None = None) -> TrainResult:
    """Train `model` on `train_pairs`, evaluate on `valid_pairs`, and write checkpoints.

    pairs: DataFrames of featurized pairs (a_ids, b_ids, a_stats, b_stats, label). `payload_extra` is
    stored in every checkpoint (the run's fingerprint and length, to decide on resuming). `resume_from`: a last
    checkpoint of this same run to continue from. `io`: how to batch, score and checkpoint this kind of
    model (the siamese one by default). `targets`: (n, 3) class probabilities to train towards, one row per
    training pair (arena_pref.teacher's soft targets); None = the one-hot labels. Validation always scores
    the labels. Returns the best validation loss and its step.
    """
    torch.manual_seed(seed)
    model.to(device)
    plan = plan_steps(len(train_pairs), params.batch_size, params.grad_accum_steps, params.epochs,
                      params.warmup_ratio, ctx.world_size)
    if ctx.is_main:
        log.info("train pairs %d, valid pairs %d, device %s, precision %s, processes %d", plan.train_pairs,
                 len(valid_pairs), device, precision.name, ctx.world_size)
        log.info("micro-batch %d x accumulation %d x processes %d = effective batch %d; %d micro-batches per "
                 "process and %d optimizer steps per epoch; %d steps in all, %d warmup", params.batch_size,
                 params.grad_accum_steps, ctx.world_size, plan.effective_batch, plan.micro_batches_per_epoch,
                 plan.optimizer_steps_per_epoch, plan.total_steps, plan.warmup_steps)

    freeze_bottom_layers(model, params.freeze_layers)
    optimizer = build_optimizer(model, params.lr, params.head_lr, params.weight_decay, params.layer_lr_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, plan.warmup_steps, plan.total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)
    averaged = weight_average(model, params.ema_decay)
    scored = model if averaged is None else averaged.module  # what is validated and saved as best
    progress = Progress()
    if resume_from is not None:
        io.load(model, resume_from)
        if averaged is not None:
            averaged.load_state_dict(resume_from["ema"])
        optimizer.load_state_dict(resume_from["optimizer"])
        scheduler.load_state_dict(resume_from["scheduler"])
        scaler.load_state_dict(resume_from["scaler"])
        restore_rng(resume_from["rng"])
        progress = Progress(**resume_from["progress"])
        if ctx.is_main:
            log.info("resuming at optimizer step %d (epoch %d, micro-batch %d) from %s", progress.step,
                     progress.epoch + 1, progress.micro, last_path)
    # DDP all-reduces gradients on backward; `no_sync` skips that on all but the last micro-batch of a window.
    runner = torch.nn.parallel.DistributedDataParallel(model) if ctx.enabled else model
    columns = io.columns(train_pairs)
    lengths = columns.lengths()
    labels = torch.tensor(train_pairs["label"].to_numpy(), dtype=torch.long)
    target_probs = None if targets is None else torch.as_tensor(targets, dtype=torch.float32)

    def validate_and_checkpoint(next_epoch: int, next_micro: int) -> None:
        metrics = evaluate_loss(scored, valid_pairs, params.batch_size * 2, device, precision, pad_token_id, ctx, io)
        model.train()
        progress.epoch, progress.micro = next_epoch, next_micro
        improved = metrics["loss"] < progress.best_val_loss
        if improved:
            progress.best_val_loss, progress.best_step = metrics["loss"], progress.step
        if not ctx.is_main:
            return
        log_metrics(progress.step, {"val/loss": metrics["loss"], "val/acc": metrics["acc"]})
        log.info("step %d: val loss %.4f, val acc %.4f", progress.step, metrics["loss"], metrics["acc"])
        stamp = payload_extra | {"step": progress.step, "val_loss": metrics["loss"]}
        live = io.payload(model) | stamp
        if improved:
            io.save_best(live if scored is model else io.payload(scored) | stamp, best_path)
        # The last checkpoint is written after the best one: a kill in between resumes from the
        # previous last checkpoint, whose best is never newer than best.pt. It holds the live weights
        # (and the average's, with train.ema_decay) to resume from.
        save_atomic(live | {
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng": capture_rng(), "progress": dataclasses.asdict(progress)}
            | ({} if averaged is None else {"ema": averaged.state_dict()}), last_path)

    for epoch in range(progress.epoch, params.epochs):
        model.train()
        batches = shard(length_grouped_batches(lengths, params.batch_size, seed + epoch), ctx)
        first = progress.micro if epoch == progress.epoch else 0
        window_loss, window_correct, window_pairs = 0.0, 0, 0
        bar = tqdm(range(first, len(batches)), desc=f"epoch {epoch + 1}/{params.epochs}", unit="batch",
                   disable=not ctx.is_main)
        for micro in bar:
            index = batches[micro]
            window_end = is_window_end(micro, len(batches), params.grad_accum_steps)
            batch = {k: v.to(device) for k, v in columns.batch(index, pad_token_id, precision.pad_to_multiple_of).items()}
            target = labels[index].to(device)
            # cross_entropy takes class indices or, for soft targets, class probabilities.
            loss_target = target if target_probs is None else target_probs[index].to(device)
            with contextlib.nullcontext() if window_end or not ctx.enabled else runner.no_sync():
                with autocast(precision, device):
                    logits = runner(**batch)
                # The loss is computed in fp32 on upcast logits: fp16 log-softmax loses the small
                # probability differences this task is about.
                loss = F.cross_entropy(logits.float(), loss_target)
                if not torch.isfinite(loss) and not precision.use_grad_scaler:
                    raise NonFiniteLossError(
                        f"loss is {loss.item()} at optimizer step {progress.step + 1} (epoch {epoch + 1}, "
                        f"micro-batch {micro + 1}) with precision {precision.name}; lower train.lr, check the "
                        "input rows, or use fp32")
                scaler.scale(loss / window_size(micro, len(batches), params.grad_accum_steps)).backward()
            window_loss += loss.item() * len(index)
            window_correct += int((logits.argmax(dim=-1) == target).sum())
            window_pairs += len(index)
            if not window_end:
                continue
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            scale_before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            # GradScaler skips the optimizer step on inf/NaN gradients and lowers its scale; the
            # schedule then waits too, as it counts the steps the optimizer really took.
            skipped = precision.use_grad_scaler and scaler.get_scale() < scale_before
            if not skipped:
                scheduler.step()
                if averaged is not None:
                    averaged.update_parameters(model)
            progress.step += 1
            progress.nonfinite_run = progress.nonfinite_run + 1 if skipped else 0
            if progress.nonfinite_run >= MAX_CONSECUTIVE_NONFINITE:
                raise NonFiniteLossError(
                    f"fp16 gradients were non-finite for {progress.nonfinite_run} optimizer steps in a row up to "
                    f"step {progress.step}; lower train.lr or train.max_grad_norm, or use train.precision=bf16/fp32")
            if ctx.is_main:
                train_metrics = {"train/loss": window_loss / window_pairs, "train/acc": window_correct / window_pairs}
                log_metrics(progress.step, train_metrics | {"train/lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{train_metrics['train/loss']:.4f}", step=progress.step)
            window_loss, window_correct, window_pairs = 0.0, 0, 0
            if params.eval_every_steps and progress.step % params.eval_every_steps == 0 and micro + 1 < len(batches):
                validate_and_checkpoint(epoch, micro + 1)
        validate_and_checkpoint(epoch + 1, 0)
    return TrainResult(best_val_loss=progress.best_val_loss, best_step=progress.best_step, steps=progress.step)
