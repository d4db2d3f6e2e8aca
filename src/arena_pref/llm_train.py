"""The llm stage's library: encode the prepared rows as judge sequences, train one LoRA classifier per
validation fold (resumable, DVCLive curves, torchrun), then predict each fold's rows and the test rows
with its best adapters, and write the member's files like gbdt and tfidf do (predictions.write_cross_fit).

With llm.enabled false the stage writes only empty placeholders (no model is loaded); the ensemble then
leaves the member out (its member list reads llm.enabled), so the pipeline is as without this stage.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .crossfit import KEY_COLUMNS, CrossFit
from .distributed import SINGLE, DistContext, barrier
from .files import write_json
from .folds import fold_dir, split_fold
from .labels import N_CLASSES
from .live import train_logged
from .llm_model import LLM_IO, build_llm_classifier, load_adapters, load_trainable_state, predict_judged
from .llm_text import JudgeLayout, encode_judge_rows
from .loop import train
from .metrics import kaggle_log_loss
from .params import LlmParams, Params, TrainParams
from .precision import Precision
from .predictions import probs_frame, write_probs
from .resume import FINISHED, checkpoint_state, hash_identity, plan_folds
from .swap import swap_labels

log = logging.getLogger("llm")

BEST, LAST = "best.safetensors", "last.pt"


def judge_layout(m: LlmParams) -> JudgeLayout:
    """llm.truncation=left keeps only the end of a cut turn: head_tail with no head."""
    return JudgeLayout(max_tokens=m.max_tokens, prompt_share=m.prompt_share,
                       head_share=m.head_share if m.truncation == "middle" else 0.0,
                       min_round_tokens=m.min_round_tokens)


def loop_settings(params: Params) -> TrainParams:
    """The training loop's settings from the llm section (the loop reads a TrainParams); the validation
    folds are train.fold's, as for every member. The LoRA adapters all learn at one rate (no layer-wise
    decay), no weight average is kept (it would copy the whole base model), no layer is frozen beyond the
    base model LoRA already freezes, and it learns from the human labels alone."""
    m = params.llm
    own = {"fold": params.train.fold, "layer_lr_decay": 1.0, "ema_decay": 0.0, "freeze_layers": 0,
           "soft_target_weight": 0.0}
    shared = {f.name: getattr(m, f.name) for f in dataclasses.fields(TrainParams) if f.name not in own}
    return TrainParams(**own, **shared)


def with_swapped_judged(table: pd.DataFrame) -> pd.DataFrame:
    """Encoded pairs plus a copy of each with A and B exchanged (ids <-> swapped_ids, label swapped),
    column `swapped` telling them apart: the input `folds.split_fold` expects."""
    swapped = table.assign(ids=table["swapped_ids"], swapped_ids=table["ids"],
                           label=np.where(table["label"] >= 0, swap_labels(table["label"].clip(lower=0)),
                                          table["label"]))
    return pd.concat([table.assign(swapped=False), swapped.assign(swapped=True)], ignore_index=True)


def run_fingerprint(params: Params, layout_meta: dict, world_size: int, fold: int) -> str:
    """Identity of one fold's llm run (a last checkpoint resumes only a run with the same one)."""
    settings = dataclasses.asdict(params.llm)
    for key in ("enabled", "resume", "nproc_per_node", "tta", "predict_batch_size"):
        settings.pop(key)
    return hash_identity({"seed": params.base.seed, "llm": settings, "inputs": layout_meta,
                          "world_size": world_size, "fold": fold})


@dataclass(frozen=True)
class Paths:
    models: Path  # models/llm: fold_k/best.safetensors, fold_k/last.pt
    live: Path  # DVCLive curves per fold


def train_fold(fold: int, resume_from: dict | None, pairs: pd.DataFrame, params: Params, pad_token_id: int,
               fingerprint: str, paths: Paths, device: torch.device, precision: Precision,
               ctx: DistContext = SINGLE) -> None:
    """Train the classifier of validation fold `fold` and write its checkpoints and curves."""
    m = params.llm
    train_pairs, valid_pairs = split_fold(pairs, fold, train_on_swapped=m.swap_train)
    model = build_llm_classifier(m, params.base.seed, device, precision)
    models_dir, live_dir = Path(fold_dir(str(paths.models), fold)), Path(fold_dir(str(paths.live), fold))
    if resume_from is None and ctx.is_main:
        # Outputs persist between runs (dvc.yaml) so that a resume finds them; a fresh run starts clean.
        shutil.rmtree(models_dir, ignore_errors=True)
        shutil.rmtree(live_dir, ignore_errors=True)
    barrier(ctx)
    extra = {"fingerprint": fingerprint, "epochs": m.epochs, "fold": fold}
    args = (model, train_pairs, valid_pairs, loop_settings(params), params.base.seed, device, precision, pad_token_id,
            models_dir / BEST, models_dir / LAST, extra)
    if ctx.is_main:
        log.info("fold %d: %d training and %d validation sequences", fold, len(train_pairs), len(valid_pairs))
    result = train_logged(lambda log_metrics: train(*args, log_metrics, resume_from, ctx, LLM_IO), live_dir,
                          resume_from["step"] if resume_from else None, ctx.is_main)
    if ctx.is_main:
        log.info("fold %d: best validation loss %.4f at step %d of %d", fold, result.best_val_loss,
                 result.best_step, result.steps)


def train_folds(table: pd.DataFrame, folds: list[int], params: Params, pad_token_id: int, layout_meta: dict,
                paths: Paths, device: torch.device, precision: Precision, ctx: DistContext = SINGLE) -> None:
    """Train every validation fold, keeping or resuming the folds of an interrupted run (llm.resume)."""
    pairs = with_swapped_judged(table)
    fingerprints = {fold: run_fingerprint(params, layout_meta, ctx.world_size, fold) for fold in folds}
    states = {fold: checkpoint_state(Path(fold_dir(str(paths.models), fold)) / LAST, fingerprints[fold])
              for fold in folds}
    if ctx.is_main:  # drop folds of an earlier run that validated on other folds
        for root in (paths.models, paths.live):
            for path in root.glob("fold_*"):
                if path.name not in {f"fold_{f}" for f in folds}:
                    shutil.rmtree(path)
    for fold, state in plan_folds(states, params.llm.resume).items():
        if state == FINISHED:
            log.info("fold %d finished in the interrupted run: kept", fold)
            continue
        train_fold(fold, state, pairs, params, pad_token_id, fingerprints[fold], paths, device, precision, ctx)


def predict_folds(table: pd.DataFrame, test: pd.DataFrame, folds: list[int], params: Params, pad_token_id: int,
                  models: Path, device: torch.device, precision: Precision) -> CrossFit:
    """Each fold's best adapters predict its validation rows and the test rows (swap TTA with llm.tta);
    test probabilities are the mean over the fold models, as for the other members."""
    m = params.llm
    oof = np.full((len(table), N_CLASSES), np.nan)
    losses, test_probs = {}, []
    model = build_llm_classifier(m, params.base.seed, device, precision).to(device)
    for fold in folds:
        state, _ = load_adapters(Path(fold_dir(str(models), fold)) / BEST)
        load_trainable_state(model, state)
        rows = (table["fold"] == fold).to_numpy()
        oof[rows] = predict_judged(model, table[rows], m.predict_batch_size, device, precision, pad_token_id,
                                   m.tta).tta
        losses[fold] = kaggle_log_loss(table["label"].to_numpy()[rows], oof[rows])
        test_probs.append(predict_judged(model, test, m.predict_batch_size, device, precision, pad_token_id,
                                         m.tta).tta)
        log.info("fold %d: out-of-fold log loss %.4f", fold, losses[fold])
    return CrossFit(oof=oof, fold_losses=losses, test=np.mean(test_probs, axis=0))


def write_disabled(metrics_path: Path, oof_path: Path, test_path: Path, paths: Paths) -> None:
    """llm.enabled false: empty placeholders for the stage's outputs (the ensemble does not read them)."""
    empty = probs_frame([], np.zeros((0, N_CLASSES)))
    write_probs(empty.assign(fold=pd.Series(dtype=np.int64), label=pd.Series(dtype=np.int64))[
        ["id", "fold", "label", *empty.columns[1:]]], oof_path)
    write_probs(empty, test_path)
    write_json({"enabled": False}, metrics_path)
    for root in (paths.models, paths.live):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "DISABLED").write_text("llm.enabled is false: nothing trained\n")


def encode_tables(train_rows: pd.DataFrame, test_rows: pd.DataFrame, tokenizer,
                  m: LlmParams) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Judge sequences of the training and test rows, and what identifies them (for the fingerprint)."""
    layout = judge_layout(m)
    table, test = encode_judge_rows(train_rows, tokenizer, layout), encode_judge_rows(test_rows, tokenizer, layout)
    lengths = table["ids"].map(len)
    log.info("judge sequences: %d training rows, length mean %.0f, max %d (llm.max_tokens %d); %d test rows",
             len(table), lengths.mean(), lengths.max(), m.max_tokens, len(test))
    meta = dataclasses.asdict(layout) | {"rows": len(table), "tokens": int(lengths.sum()),
                                         "pad_token_id": tokenizer.pad_token_id}
    return table, test, meta


__all__ = ["KEY_COLUMNS", "Paths", "encode_tables", "predict_folds", "train_folds", "write_disabled"]
