"""Validation loss after training with the pipeline's recipe and with the original-notebook recipe.

    python bench/val_loss.py              # defaults: about 10-12 minutes on a 2-core CPU
    python bench/val_loss.py --help

bench/throughput.py shows the pipeline is faster; this shows the speed does not cost validation loss.
The recipes differ in more than padding (see bench/_common.py): ours trains in bf16 where
train.precision=auto picks it, with no attention-probability dropout, on length-grouped batches, while
naive trains in fp32 with the checkpoint's attention dropout on batches in input order. So both are
trained here, from the same starting weights, on the same training rows for the same number of
optimizer steps (one pass, AdamW from arena_pref.loop.build_optimizer, the pipeline's cosine schedule
with warmup), their steps interleaved so that other load on the machine hits both alike. Then both
are scored on the same validation rows (fold --valid-fold of the prepare stage's folds, grouped by
prompt, so no validation prompt was trained on) with one evaluator: arena_pref.infer.predict_pairs in
fp32 with TTA. In eval mode the two models compute the same function of their weights (throughput.py
checks the logits), so the evaluator compares the weights the recipes produced, not their inference
code.

The last stdout line is  val_loss_naive=<x> val_loss_ours=<y> ours_minus_naive=<d>  (log loss).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import torch
from transformers import get_cosine_schedule_with_warmup

from arena_pref.collate import length_grouped_batches
from arena_pref.infer import predict_pairs
from arena_pref.loop import build_optimizer
from arena_pref.metrics import row_log_losses
from arena_pref.precision import resolve_precision

import _common
from _common import log

EVAL_BATCH = 16


def parse_args() -> argparse.Namespace:
    p, params = _common.bench_parser(__doc__, "pairs per optimizer step, both recipes")
    p.add_argument("--train-pairs", type=int, default=320,
                   help="training pairs, drawn from the other folds; one pass (default %(default)s)")
    p.add_argument("--valid-fold", type=int, default=0, help="validation fold (default %(default)s)")
    # The README's offline MiniLM recipe; params.yaml's train.lr and train.head_lr are set for DeBERTa
    # on 57k rows and barely move a head in 20 steps.
    p.add_argument("--lr", type=float, default=3.0e-5, help="backbone learning rate (default %(default)s)")
    p.add_argument("--head-lr", type=float, default=1.0e-3, help="head learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = _common.parse_bench_args(p, params)
    return args


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    tp, model_params, prep = args.params.train, args.params.model, args.params.prepare
    maxlen, bs = args.max_tokens_per_side, args.batch_size

    log(f"reading and tokenizing {args.csv} (max_tokens_per_side={maxlen}, folds of prepare.n_folds={prep.n_folds})")
    pairs, pad_id = _common.load_tokenized(args.csv, args.backbone, maxlen, args.params.featurize.prompt_share,
                                           args.params.featurize.head_share, folds=(prep.n_folds, prep.seed))
    rng = np.random.default_rng(args.seed)
    others = np.flatnonzero(pairs["fold"].to_numpy() != args.valid_fold)
    if args.train_pairs > len(others):
        sys.exit(f"bench: --train-pairs {args.train_pairs} but only {len(others)} rows outside fold {args.valid_fold}")
    train = _common.Sample(pairs.iloc[rng.choice(others, args.train_pairs, replace=False)])
    valid = _common.Sample(pairs[pairs["fold"] == args.valid_fold])
    log(f"{len(train)} training pairs, {len(valid)} validation pairs (fold {args.valid_fold})")

    ours_attn = model_params.attention_dropout
    naive_attn = _common.checkpoint_attention_dropout(args.backbone)
    recipes = {k: v for k, v in _common.make_recipes(pad_id, maxlen, tp.max_grad_norm, ours_attn, naive_attn).items()
               if k in ("naive", "ours")}
    label = {k: v.label for k, v in recipes.items()}
    models = {k: _common.build_model(args.backbone, model_params.head, model_params.dropout, v.attention_dropout,
                                     model_params.side_stats, args.seed) for k, v in recipes.items()}
    untrained = copy.deepcopy(models["ours"])
    ours_batches = length_grouped_batches(train.lengths, bs, args.seed)
    schedules = {k: _common.train_schedule(k, len(train), bs, ours_batches, args.seed) for k in recipes}
    steps = len(schedules["naive"])
    if len(schedules["ours"]) != steps:
        sys.exit(f"bench: the recipes would take different step counts ({steps} vs {len(schedules['ours'])})")
    optims = {k: build_optimizer(m, args.lr, args.head_lr, tp.weight_decay) for k, m in models.items()}
    warmup = int(round(tp.warmup_ratio * steps))
    schedulers = {k: get_cosine_schedule_with_warmup(o, warmup, steps) for k, o in optims.items()}
    log(f"training {steps} steps of {bs} pairs per recipe (lr {args.lr:g}, head_lr {args.head_lr:g}, cosine with "
        f"{warmup} warm-up steps): " + "; ".join(f"{label[k]} {v.precision.name}, attention dropout "
                                                  f"{v.attention_dropout:g}" for k, v in recipes.items()))

    # Each recipe keeps its own dropout RNG stream, so interleaving does not change what either draws.
    torch.manual_seed(args.seed)
    rng_state = {k: torch.get_rng_state() for k in recipes}
    seconds = dict.fromkeys(recipes, 0.0)
    losses = {k: [] for k in recipes}
    for m in models.values():
        m.train()
    for step in range(steps):
        for name in (list(recipes) if step % 2 == 0 else list(recipes)[::-1]):
            torch.set_rng_state(rng_state[name])
            t0 = time.perf_counter()
            losses[name].append(recipes[name].train_step(models[name], optims[name], train,
                                                         schedules[name][step]))
            schedulers[name].step()
            seconds[name] += time.perf_counter() - t0
            rng_state[name] = torch.get_rng_state()
        if (step + 1) % 5 == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps}: " + ", ".join(
                f"{label[k]} loss {np.mean(losses[k][-5:]):.4f} ({seconds[k]:.0f} s so far)" for k in recipes))

    fp32 = resolve_precision("fp32", _common.CPU)
    labels = valid.labels.numpy()
    scores, row_losses = {}, {}
    for name, model in [("untrained", untrained)] + list(models.items()):
        probs = predict_pairs(model.eval(), valid.columns, EVAL_BATCH, _common.CPU, fp32, pad_id,
                              show_progress=False).tta
        row_losses[name] = row_log_losses(labels, probs)
        scores[name] = (float(row_losses[name].mean()), float((probs.argmax(axis=1) == labels).mean()))

    print()
    print(f"Validation, fold {args.valid_fold} ({len(valid)} pairs), max_tokens_per_side={maxlen}, scored in fp32 "
          f"with TTA by one evaluator; training: {len(train)} pairs, {steps} steps of {bs}")
    print(f"  {'model':20s} {'log loss':>9s} {'accuracy':>9s} {'train s':>8s} {'mean train loss':>16s}")
    for name, (loss, acc) in scores.items():
        extra = (f"{seconds[name]:8.0f} {np.mean(losses[name]):16.4f}" if name in recipes
                 else f"{'-':>8s} {'-':>16s}")
        print(f"  {label.get(name, name):20s} {loss:9.4f} {acc:9.3f} {extra}")
    # Paired over the same rows: the standard error of the mean per-row difference.
    paired = row_losses["ours"] - row_losses["naive"]
    diff, se = float(paired.mean()), float(paired.std(ddof=1) / np.sqrt(len(paired)))
    verdict = "better" if diff < -2 * se else "worse" if diff > 2 * se else "equal within 2 standard errors"
    print(f"  ours - naive validation log loss: {diff:+.4f} (paired standard error {se:.4f}: {verdict}); "
          f"training time naive / ours: "
          f"{seconds['naive'] / seconds['ours']:.2f}x; wall time {(time.perf_counter() - started) / 60:.1f} min")
    print(f"val_loss_naive={scores['naive'][0]:.4f} val_loss_ours={scores['ours'][0]:.4f} ours_minus_naive={diff:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
