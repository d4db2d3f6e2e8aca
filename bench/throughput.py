"""CPU throughput of the pipeline's training and prediction against the original-notebook recipe.

    python bench/throughput.py            # defaults: about 10-14 minutes on a 2-core CPU
    python bench/throughput.py --help

All recipes run in this one process on the same real rows (read with arena_pref.data.read_rows,
tokenized with arena_pref.encode.encode_rows and the MiniLM tokenizer), the same backbone weights and
the same max_tokens_per_side, interleaved step by step (training) and repeat by repeat (prediction) so
that load from other processes hits all of them alike:

  naive      the notebook: the backbone exactly as pretrained (the checkpoint's own
             attention_probs_dropout_prob, 0.1 for MiniLM), every side padded to max_tokens_per_side,
             separate backbone passes for A and B, fixed batches in input order, fp32, TTA as a second
             full pass with A and B exchanged.
  ours       the pipeline with its default params.yaml: model.attention_dropout, model.dropout, model.head
             and model.side_stats as configured, train.precision=auto as resolve_precision("auto", cpu)
             resolves it here (bf16 on CPUs with AMX/AVX512-BF16, else fp32); length_grouped_batches +
             PairColumns.batch / collate_pairs (dynamic padding, one stacked [A; B] pass), predict_pairs
             (longest first, no grad, TTA folded into the same pass).
  ours_fp32  the same in fp32, for reference (only where auto does not already resolve to fp32).
(With the symmetric head the train stage also skips the swapped copies of the training pairs, which
halves an epoch; that changes time per epoch, not pairs/s, so it is not part of these figures.)

Samples: whole batches of the pipeline's own batching of the whole file (length_grouped_batches for
training, sorted_batches for prediction), taken across the range of batch widths (_common.pick_batches),
so a sample of a few batches pads the way the full run does; naive gets the same rows in random order.
Training: pairs/s of forward + backward + clip + AdamW step, after a short warm-up, median over repeats
(one repeat = one pass over the training sample). Prediction: pairs/s with TTA, median over repeats.
Peak RSS: VmHWM (the counter behind ru_maxrss) of a fresh child process (bench/_rss_probe.py) that
trains on the recipe's widest batch, run before the timing; a process's peak never goes down and this
one holds every recipe.

The last stdout line is  train_speedup=<x> predict_speedup=<y> train_peak_rss_gb=<z> : the speedups
are ours / naive pairs/s (ours = the pipeline's defaults, precision auto; ours_fp32 is in the table),
the RSS is that of training with ours at --batch-size.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arena_pref.collate import length_grouped_batches, sorted_batches
from arena_pref.loop import build_optimizer
from arena_pref.metrics import kaggle_log_loss
from arena_pref.precision import resolve_precision

import _common
from _common import Recipe, Sample, log
import _naive

TEST_PAIRS = 25_000  # about the size of Kaggle's hidden test set
LOGIT_TOL = 1e-4


def parse_args() -> argparse.Namespace:
    p, params = _common.bench_parser(__doc__, "training pairs per step, both recipes")
    p.add_argument("--train-batches", type=int, default=2,
                   help="training batches per timed repeat; the sample is that many batches (default %(default)s)")
    p.add_argument("--predict-batch-size", type=int, default=16,
                   help="prediction batch, both recipes (default %(default)s; the pipeline's predict.batch_size "
                        "is 64, but CPU throughput is flat in batch size and a small batch lets a small sample "
                        "hold several batches)")
    p.add_argument("--predict-batches", type=int, default=2, help="prediction batches per timed repeat")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per recipe; medians are reported")
    p.add_argument("--warmup-steps", type=int, default=1,
                   help="untimed training steps per recipe first, each on --warmup-pairs pairs")
    p.add_argument("--warmup-pairs", type=int, default=4,
                   help="pairs per warm-up step and warm-up prediction (kernels and threads start up the same)")
    p.add_argument("--rss-steps", type=int, default=1,
                   help="training steps on the widest batch in each peak-RSS probe (after a 2-pair step "
                        "that creates the optimizer state)")
    p.add_argument("--max-minutes", type=float, default=14.0,
                   help="time guard: once 2 repeats are done, skip a further repeat that would end past 60%% "
                        "(training) or 90%% (prediction) of this many minutes (default %(default)s)")
    p.add_argument("--rss-predict", action="store_true", help="also probe the peak RSS of prediction")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    p.add_argument("--recipes", default="naive,ours,ours_fp32",
                   help="comma-separated subset that holds naive and ours (ours_fp32 is skipped anyway where "
                        "train.precision=auto resolves to fp32)")
    p.add_argument("--bf16-loss-tol", type=float, default=0.01,
                   help="largest |loss(bf16) - loss(fp32)| for bf16 to count as 'loss stays close'")
    p.add_argument("--bf16-min-gain", type=float, default=1.05,
                   help="bf16 counts as faster only above this pairs/s ratio to fp32 (timings are noisy)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    args = _common.parse_bench_args(p, params)
    args.recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = set(args.recipes) - {"naive", "ours", "ours_fp32"}
    if unknown or "naive" not in args.recipes or "ours" not in args.recipes:
        p.error("--recipes: a subset of naive,ours,ours_fp32 that holds naive and ours")
    return args


def padding_efficiency(len_a: np.ndarray, len_b: np.ndarray, batches, fixed_width: int | None) -> float:
    """Real tokens / tokens the backbone processes over `batches` (padded to fixed_width, or per batch)."""
    real = padded = 0
    for index in batches:
        la, lb = len_a[index], len_b[index]
        real += int(la.sum() + lb.sum())
        padded += 2 * len(index) * (fixed_width or int(max(la.max(), lb.max())))
    return real / padded


def fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def rotated(names: list[str], k: int) -> list[str]:
    k %= len(names)
    return names[k:] + names[:k]


@dataclass
class Samples:
    """The whole file and the two samples the recipes run on (see the module docstring)."""

    everything: Sample
    train: Sample  # in naive's (random) input order
    predict: Sample
    file_train_batches: list[np.ndarray]  # length_grouped_batches of the whole file
    train_batches: list[np.ndarray]  # the training sample's batches, as rows of the file
    ours_train_batches: list[np.ndarray]  # the same batches, as positions in `train`
    train_rows: np.ndarray  # the rows of the file in `train`, in its order
    predict_rows: np.ndarray  # the rows of the file in `predict`, in its order

    def ours_predict_batches(self, batch_size: int) -> list[np.ndarray]:
        """predict_pairs' batches of the prediction sample (sorted_batches), as rows of the file."""
        return [self.predict_rows[b] for b in sorted_batches(self.predict.lengths, batch_size)]


@dataclass
class Lineup:
    """The recipes under test and the model each starts from (recipes with the same attention dropout
    share one; every run below works on copies)."""

    recipes: dict[str, Recipe]
    start: dict[str, torch.nn.Module]
    ours_attention_dropout: float  # model.attention_dropout of params.yaml
    naive_attention_dropout: float  # the checkpoint's own

    @property
    def names(self) -> list[str]:
        return list(self.recipes)

    @property
    def labels(self) -> dict[str, str]:
        return {k: v.label for k, v in self.recipes.items()}

    def fp32_ours(self) -> str | None:
        """The fp32 variant of ours (ours itself where auto resolves to fp32): it must match naive."""
        if "ours_fp32" in self.recipes:
            return "ours_fp32"
        return "ours" if self.recipes["ours"].precision.name == "fp32" else None


@dataclass
class Timings:
    """Per recipe: seconds of each timed repeat (a pass over `pairs` pairs), and what the repeats produced."""

    pairs: int
    seconds: dict[str, list[float]]
    losses: dict[str, list[float]] | None = None  # training: the loss of every timed step
    probs: dict[str, np.ndarray] | None = None  # prediction: TTA probabilities of the first repeat

    def pairs_per_s(self) -> dict[str, float]:
        """Pairs per second at the median repeat."""
        return {k: self.pairs / statistics.median(v) for k, v in self.seconds.items()}


def side_lengths(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    return np.array([len(x) for x in sample.a_ids]), np.array([len(x) for x in sample.b_ids])


def read_file(args: argparse.Namespace) -> tuple[Sample, int]:
    """Every row of --csv, tokenized as the featurize stage does, and the tokenizer's pad token id."""
    maxlen = args.max_tokens_per_side
    log(f"reading and tokenizing {args.csv} (max_tokens_per_side={maxlen})")
    pairs, pad_id = _common.load_tokenized(args.csv, args.backbone, maxlen, args.params.featurize.prompt_share,
                                           args.params.featurize.head_share)
    everything = Sample(pairs)
    sides = np.concatenate(side_lengths(everything))
    log(f"load average {load_average()} (other processes on this machine slow every recipe)")
    log(f"{len(pairs)} rows; sides: mean {sides.mean():.0f} tokens, median {np.median(sides):.0f}, "
        f"{np.mean(sides >= maxlen):.0%} cut at {maxlen}")
    return everything, pad_id


def draw_samples(everything: Sample, args: argparse.Namespace) -> Samples:
    """Whole batches of the pipeline's own batching of the file, across its range of widths: the training
    sample from length_grouped_batches, the prediction sample from sorted_batches of the other rows."""
    bs, pbs = args.batch_size, args.predict_batch_size
    rng = np.random.default_rng(args.seed)
    file_train_batches = length_grouped_batches(everything.lengths, bs, args.seed)
    train_batches = _common.pick_batches(file_train_batches, everything.lengths, args.train_batches, bs)
    train_rows = rng.permutation(np.concatenate(train_batches))  # the naive recipe's input order
    position = {row: i for i, row in enumerate(train_rows)}
    ours_train_batches = [np.array([position[row] for row in b]) for b in train_batches]
    rest = np.setdiff1d(np.arange(len(everything)), train_rows)
    rest_batches = [rest[b] for b in sorted_batches(everything.lengths[rest], pbs)]
    predict_rows = rng.permutation(np.concatenate(_common.pick_batches(rest_batches, everything.lengths,
                                                                       args.predict_batches, pbs)))
    return Samples(everything, everything.subset(train_rows), everything.subset(predict_rows), file_train_batches,
                   train_batches, ours_train_batches, train_rows, predict_rows)


def padding_table(samples: Samples, args: argparse.Namespace) -> list[tuple]:
    """Rows (label, train sample, predict sample, whole file) of the share of real tokens among those the
    backbone processes; None where a recipe does not process that set that way."""
    len_a, len_b = side_lengths(samples.everything)
    maxlen, pbs = args.max_tokens_per_side, args.predict_batch_size
    whole = np.arange(len(samples.everything))
    predict_batches = samples.ours_predict_batches(pbs)
    file_predict_batches = sorted_batches(samples.everything.lengths, args.params.predict.batch_size)
    return [
        ("naive (pad to max)", padding_efficiency(len_a, len_b, [samples.train_rows], maxlen),
         padding_efficiency(len_a, len_b, [samples.predict_rows], maxlen),
         padding_efficiency(len_a, len_b, [whole], maxlen)),
        ("ours train (length-grouped)", padding_efficiency(len_a, len_b, samples.train_batches, None), None,
         padding_efficiency(len_a, len_b, samples.file_train_batches, None)),
        ("ours predict (sorted)", None, padding_efficiency(len_a, len_b, predict_batches, None),
         padding_efficiency(len_a, len_b, file_predict_batches, None)),
    ]


def build_lineup(args: argparse.Namespace, pad_id: int) -> Lineup:
    """The --recipes and their starting models: pretrained backbone + the configured head, the backbone's
    attention dropout per recipe (ours: model.attention_dropout from params.yaml; naive: the checkpoint's
    own value, as the notebook loaded it). Same weights either way (same_starting_weights checks)."""
    model_params = args.params.model
    ours_attn = model_params.attention_dropout
    naive_attn = _common.checkpoint_attention_dropout(args.backbone)
    all_recipes = _common.make_recipes(pad_id, args.max_tokens_per_side, args.params.train.max_grad_norm, ours_attn,
                                       naive_attn)
    recipes = {k: v for k, v in all_recipes.items() if k in args.recipes}
    if "ours_fp32" in args.recipes and "ours_fp32" not in all_recipes:
        log("ours_fp32 skipped: train.precision=auto already resolves to fp32 on this CPU")
    built: dict[float, torch.nn.Module] = {}
    for recipe in recipes.values():
        if recipe.attention_dropout not in built:
            built[recipe.attention_dropout] = _common.build_model(
                args.backbone, model_params.head, model_params.dropout, recipe.attention_dropout,
                model_params.side_stats, args.seed)
    start = {k: built[v.attention_dropout] for k, v in recipes.items()}
    return Lineup(recipes, start, ours_attn, naive_attn)


def same_starting_weights(lineup: Lineup) -> bool:
    reference = lineup.start["ours"].state_dict()
    return all(torch.equal(reference[key], value) for key, value in lineup.start["naive"].state_dict().items())


def log_lineup(lineup: Lineup, args: argparse.Namespace) -> None:
    model_params = args.params.model
    log(f"model: {sum(p.numel() for p in lineup.start['ours'].parameters()) / 1e6:.1f}M parameters, head="
        f"{model_params.head}, dropout={model_params.dropout}, side_stats={model_params.side_stats} (params.yaml); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    log("recipes: " + "; ".join(
        f"{lineup.labels[k]}: {v.precision.name}, attention_probs_dropout_prob {v.attention_dropout:g} "
        f"({'checkpoint config' if k == 'naive' else 'model.attention_dropout'})" for k, v in lineup.recipes.items())
        + "; same starting weights")


def logits_agree(lineup: Lineup, sample: Sample, args: argparse.Namespace, pad_id: int) -> bool:
    """The same function, padded differently: ours in fp32 (no autocast) against naive on four pairs of
    `sample`, both in eval mode, where every dropout is off (attention dropout included), so the two
    backbone configurations compute the same logits. Prints the check."""
    maxlen = args.max_tokens_per_side
    check_ours, check_naive = copy.deepcopy(lineup.start["ours"]).eval(), copy.deepcopy(lineup.start["naive"]).eval()
    fp32 = resolve_precision("fp32", _common.CPU)
    # Pairs from the shortest to the 3rd quartile, none at the cap, so ours pads to less than naive does.
    order = list(np.argsort(sample.lengths, kind="stable"))
    below_cap = [i for i in order if sample.lengths[i] < maxlen]
    order = below_cap if len(below_cap) >= 4 else order
    check = np.array([order[int(q * (len(order) - 1))] for q in (0.0, 0.25, 0.5, 0.75)])
    with torch.no_grad():
        batch = sample.columns.batch(check, pad_id, fp32.pad_to_multiple_of)
        logits_ours = check_ours(**batch)
        logits_naive = _naive.naive_logits(check_naive, [sample.a_ids[i] for i in check],
                                           [sample.b_ids[i] for i in check], sample.a_stats[check],
                                           sample.b_stats[check], maxlen, pad_id)
    logit_diff = float((logits_ours - logits_naive).abs().max())
    sides = [len(sample.a_ids[i]) for i in check] + [len(sample.b_ids[i]) for i in check]
    print(f"logit check (fp32, eval mode: dropout off; {len(check)} pairs with sides of {sides} tokens; ours "
          f"padded to {batch['input_ids'].shape[1]} in one stacked pass, naive to {maxlen} in two passes; attention "
          f"dropout in training ours {lineup.ours_attention_dropout:g}, naive {lineup.naive_attention_dropout:g}): "
          f"max |ours - naive| = {logit_diff:.2e} -> {'PASS' if logit_diff <= LOGIT_TOL else 'FAIL'} "
          f"(tolerance {LOGIT_TOL:g})", flush=True)
    return logit_diff <= LOGIT_TOL


def probe_peak_rss(args: argparse.Namespace, samples: Samples, lineup: Lineup, pad_id: int) -> dict[tuple, dict]:
    """{(recipe, mode): the probe's JSON line}: a fresh child process (bench/_rss_probe.py) per recipe and
    mode, run before the timing while this process is still small. Empty with --no-rss."""
    if args.no_rss:
        return {}
    model_params, tp = args.params.model, args.params.train
    modes = ("train", "predict") if args.rss_predict else ("train",)
    rss = {}
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        payload = Path(tmp) / "sample.pkl"
        with open(payload, "wb") as f:
            pickle.dump({"train": samples.train.frame, "ours_train_batches": samples.ours_train_batches,
                         "predict": samples.predict.frame, "pad_token_id": pad_id, "backbone": args.backbone,
                         "head": model_params.head, "dropout": model_params.dropout,
                         "ours_attention_dropout": lineup.ours_attention_dropout,
                         "naive_attention_dropout": lineup.naive_attention_dropout,
                         "side_stats": model_params.side_stats, "lr": tp.lr, "head_lr": tp.head_lr,
                         "weight_decay": tp.weight_decay, "max_grad_norm": tp.max_grad_norm,
                         "max_length": args.max_tokens_per_side, "batch_size": args.batch_size,
                         "predict_batch_size": args.predict_batch_size, "seed": args.seed, "steps": args.rss_steps,
                         "threads": args.threads}, f)
        for name in lineup.names:
            for mode in modes:
                done = subprocess.run([sys.executable, str(Path(__file__).with_name("_rss_probe.py")),
                                       str(payload), name, mode], capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"bench: peak-RSS probe {name} {mode} failed")
                rss[name, mode] = json.loads(done.stdout.strip().splitlines()[-1])
                log(f"peak RSS {lineup.labels[name]} {mode}: {rss[name, mode]['peak_rss_gb']:.2f} GB (child process; "
                    f"{rss[name, mode]['setup_rss_gb']:.2f} GB before the first step)")
    return rss


def past_time_guard(repeat: int, seconds: dict[str, list[float]], started: float, share: float,
                    max_minutes: float) -> bool:
    """Whether `repeat` (0-based), if it takes as long as the last one did, would end past `share` of
    --max-minutes since the start; never before 2 repeats are done."""
    if repeat < 2:
        return False
    last_repeat = sum(times[-1] for times in seconds.values())
    return time.perf_counter() - started + last_repeat > share * 60 * max_minutes


def seeded_rng_state(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.get_rng_state()


def time_training(args: argparse.Namespace, lineup: Lineup, sample: Sample, ours_batches: list[np.ndarray],
                  started: float) -> Timings:
    """Training: --warmup-steps untimed steps per recipe, then --repeats passes over `sample`, the recipes
    interleaved step by step (the order rotates) so that a load change on the machine hits all of them.
    Each recipe keeps its own dropout RNG stream, so ours and ours_fp32 draw the same dropout masks although
    their steps interleave."""
    tp, names, labels = args.params.train, lineup.names, lineup.labels
    models = {k: copy.deepcopy(lineup.start[k]) for k in names}
    optims = {k: build_optimizer(models[k], tp.lr, tp.head_lr, tp.weight_decay) for k in names}
    for model in models.values():
        model.train()

    def schedule(name: str, seed: int) -> list[np.ndarray]:
        return _common.train_schedule(name, len(sample), args.batch_size, ours_batches, seed)

    def train_step(name: str, index: np.ndarray, rng_state: torch.Tensor) -> tuple[float, float, torch.Tensor]:
        """(seconds, loss, RNG state after) of one step."""
        torch.set_rng_state(rng_state)
        t0 = time.perf_counter()
        loss = lineup.recipes[name].train_step(models[name], optims[name], sample, index)
        return time.perf_counter() - t0, loss, torch.get_rng_state()

    log(f"training: {args.warmup_steps} warm-up step(s) of {args.warmup_pairs} pairs per recipe, then "
        f"{args.repeats} repeats of {len(sample)} pairs (batch {args.batch_size})")
    for name in names:
        state = seeded_rng_state(args.seed + 10_000)
        for index in schedule(name, args.seed + 10_000)[:args.warmup_steps]:
            _, _, state = train_step(name, index[:args.warmup_pairs], state)
    timings = Timings(len(sample), seconds={k: [] for k in names}, losses={k: [] for k in names})
    for r in range(args.repeats):
        if past_time_guard(r, timings.seconds, started, 0.6, args.max_minutes):
            log(f"time guard: training stops after {r} repeats (--max-minutes {args.max_minutes:g})")
            break
        schedules = {k: schedule(k, args.seed + r) for k in names}
        states = {k: seeded_rng_state(args.seed + r) for k in names}
        seconds = dict.fromkeys(names, 0.0)
        for step in range(max(len(batches) for batches in schedules.values())):
            for name in rotated(names, r + step):
                if step < len(schedules[name]):
                    dt, loss, states[name] = train_step(name, schedules[name][step], states[name])
                    seconds[name] += dt
                    timings.losses[name].append(loss)
        for name in names:
            timings.seconds[name].append(seconds[name])
        log(f"train repeat {r + 1}/{args.repeats}: " + ", ".join(f"{labels[k]} {seconds[k]:.1f} s" for k in names))
    return timings


def time_prediction(args: argparse.Namespace, lineup: Lineup, sample: Sample, started: float) -> Timings:
    """Prediction with TTA: a --warmup-pairs warm-up per recipe, then --repeats passes over `sample`, the
    recipes interleaved repeat by repeat (the order rotates)."""
    names, labels, pbs = lineup.names, lineup.labels, args.predict_batch_size
    models = {k: copy.deepcopy(lineup.start[k]).eval() for k in names}
    log(f"prediction: a {args.warmup_pairs}-pair warm-up per recipe, then {args.repeats} repeats of "
        f"{len(sample)} pairs (batch {pbs})")
    warm_sample = sample.subset(np.arange(min(args.warmup_pairs, len(sample))))
    for name in names:
        lineup.recipes[name].predict(models[name], warm_sample, pbs)
    timings = Timings(len(sample), seconds={k: [] for k in names}, probs={})
    for r in range(args.repeats):
        if past_time_guard(r, timings.seconds, started, 0.9, args.max_minutes):
            log(f"time guard: prediction stops after {r} repeats (--max-minutes {args.max_minutes:g})")
            break
        for name in rotated(names, r):
            t0 = time.perf_counter()
            out = lineup.recipes[name].predict(models[name], sample, pbs)
            timings.seconds[name].append(time.perf_counter() - t0)
            timings.probs.setdefault(name, out)
        log(f"predict repeat {r + 1}/{args.repeats}: "
            + ", ".join(f"{labels[k]} {timings.seconds[k][-1]:.1f} s" for k in names))
    return timings


def print_padding(rows: list[tuple], args: argparse.Namespace) -> None:
    print()
    print(f"Padding efficiency: real tokens / tokens through the backbone (batch {args.batch_size} train, "
          f"{args.predict_batch_size} predict; whole file predict at predict.batch_size="
          f"{args.params.predict.batch_size})")
    print(f"  {'':30s} {'train sample':>13s} {'predict sample':>15s} {'whole file':>11s}")
    for row_label, *cells in rows:
        cells = [f"{x:.1%}" if x is not None else "-" for x in cells]
        print(f"  {row_label:30s} {cells[0]:>13s} {cells[1]:>15s} {cells[2]:>11s}")


def print_throughput(args: argparse.Namespace, lineup: Lineup, rss: dict, training: Timings,
                     prediction: Timings) -> None:
    labels = lineup.labels
    train_rate, predict_rate = training.pairs_per_s(), prediction.pairs_per_s()
    print()
    print(f"Throughput, MiniLM-L6 ({torch.get_num_threads()} threads), max_tokens_per_side={args.max_tokens_per_side}; "
          f"train: {training.pairs} pairs x {len(training.seconds['naive'])} repeats, batch {args.batch_size}; "
          f"predict with TTA: {prediction.pairs} pairs x {len(prediction.seconds['naive'])} repeats, batch "
          f"{args.predict_batch_size}. Medians.")
    with_predict_rss = args.rss_predict and rss
    print(f"  {'recipe':18s} {'train pairs/s':>13s} {'vs naive':>9s} {'predict pairs/s':>15s} {'vs naive':>9s} "
          f"{'train peak RSS':>15s}" + (f" {'predict peak RSS':>17s}" if with_predict_rss else ""))
    for name in lineup.names:
        line = (f"  {labels[name]:18s} {train_rate[name]:13.2f} {train_rate[name] / train_rate['naive']:8.2f}x "
                f"{predict_rate[name]:15.2f} {predict_rate[name] / predict_rate['naive']:8.2f}x "
                + (f"{rss[name, 'train']['peak_rss_gb']:12.2f} GB" if (name, "train") in rss else f"{'-':>15s}"))
        if with_predict_rss:
            line += f" {rss[name, 'predict']['peak_rss_gb']:14.2f} GB" if (name, "predict") in rss else f" {'-':>17s}"
        print(line)
    print("  seconds per repeat: " + "; ".join(
        f"{labels[k]} train {[round(t, 1) for t in training.seconds[k]]} "
        f"predict {[round(t, 1) for t in prediction.seconds[k]]}" for k in lineup.names))
    if rss:
        print(f"  peak RSS = VmHWM of a fresh process that loaded the sample and the model, ran a 2-pair step "
              f"(creates the AdamW state) and {args.rss_steps} training step(s) on the recipe's widest batch"
              + (" (predict: predicting its widest batch with TTA)" if args.rss_predict else ""))


def print_same_results(lineup: Lineup, labels: np.ndarray, prediction: Timings) -> dict[str, float]:
    """Prints how far each recipe's TTA probabilities are from naive's and their log loss; returns the
    log losses."""
    probs = prediction.probs
    prob_diff = {k: float(np.abs(probs[k] - probs["naive"]).max()) for k in lineup.names if k != "naive"}
    eval_loss = {k: kaggle_log_loss(labels, v) for k, v in probs.items()}
    print()
    print(f"Same results: TTA probabilities vs naive over {len(labels)} pairs, max |diff|: "
          + ", ".join(f"{lineup.labels[k]} {d:.1e}" + (" (fp32: must be ~0)" if k == lineup.fp32_ours() else "")
                      for k, d in prob_diff.items())
          + "; log loss on them (untrained head): "
          + ", ".join(f"{lineup.labels[k]} {v:.5f}" for k, v in eval_loss.items()))
    return eval_loss


def print_precision_verdict(args: argparse.Namespace, lineup: Lineup, training: Timings, prediction: Timings,
                            eval_loss: dict[str, float]) -> None:
    """Where train.precision=auto is not fp32: is ours (auto) more than --bf16-min-gain faster than
    ours_fp32, with losses within --bf16-loss-tol? Prints nothing where there is no ours_fp32."""
    auto_name = lineup.recipes["ours"].precision.name
    if auto_name == "fp32" or "ours_fp32" not in lineup.recipes:
        return
    train_rate, predict_rate = training.pairs_per_s(), prediction.pairs_per_s()
    losses, probs = training.losses, prediction.probs
    d_eval = abs(eval_loss["ours"] - eval_loss["ours_fp32"])
    d_prob = float(np.abs(probs["ours"] - probs["ours_fp32"]).max())
    d_train = float(np.abs(np.subtract(losses["ours"], losses["ours_fp32"])).max())
    close = d_eval <= args.bf16_loss_tol and d_train <= args.bf16_loss_tol
    faster_train = train_rate["ours"] > args.bf16_min_gain * train_rate["ours_fp32"]
    faster_predict = predict_rate["ours"] > args.bf16_min_gain * predict_rate["ours_fp32"]
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    print(f"{auto_name} (auto) vs fp32, ours: train {train_rate['ours'] / train_rate['ours_fp32']:.2f}x, predict "
          f"{predict_rate['ours'] / predict_rate['ours_fp32']:.2f}x; CPU bf16 support: {', '.join(isa) or 'none'}")
    print(f"  loss: training loss per step (same batches and dropout masks, {len(losses['ours'])} steps) "
          f"max |{auto_name} - fp32| {d_train:.1e}; prediction log loss |diff| {d_eval:.1e}, max |prob diff| "
          f"{d_prob:.1e}; tolerance {args.bf16_loss_tol:g} -> {'close' if close else 'NOT close'}")
    use = {"train": faster_train and close, "predict": faster_predict and close}
    agrees = use["train"] and use["predict"]
    print(f"  verdict on this CPU ({auto_name} must be > {args.bf16_min_gain:g}x fp32 and close): train in "
          f"{auto_name if use['train'] else 'fp32'}, predict in {auto_name if use['predict'] else 'fp32'}; "
          f"train.precision=auto picks {auto_name} here"
          + (", which this run confirms" if agrees else ", which this run does NOT confirm for "
             + " and ".join(k for k, v in use.items() if not v)))


def print_projection(args: argparse.Namespace, samples: Samples, lineup: Lineup, prediction: Timings) -> None:
    """Time to predict TEST_PAIRS pairs, at the sample's length mix and scaled to the whole file's."""
    labels = lineup.labels
    predict_rate = prediction.pairs_per_s()
    lengths = samples.everything.lengths

    # The sample's length mix is not exactly the file's: also scale ours by padded tokens per pair (linear
    # in tokens, so it ignores attention's quadratic share; naive always processes 2 x max tokens per pair).
    def padded_per_pair(batches) -> float:
        return sum(2 * len(b) * int(lengths[b].max()) for b in batches) / sum(len(b) for b in batches)

    scale = (padded_per_pair(sorted_batches(lengths, args.params.predict.batch_size))
             / padded_per_pair(samples.ours_predict_batches(args.predict_batch_size)))
    print(f"Projected time to predict {TEST_PAIRS:,} test pairs with TTA on this CPU: at this sample's length mix "
          + ", ".join(f"{labels[k]} {fmt_duration(TEST_PAIRS / predict_rate[k])}" for k in lineup.names)
          + f"; ours scaled to the whole file's padded tokens per pair (x{scale:.2f}): "
          + ", ".join(f"{labels[k]} {fmt_duration(scale * TEST_PAIRS / predict_rate[k])}" for k in lineup.names
                      if k != "naive"))


def print_summary_line(rss: dict, training: Timings, prediction: Timings) -> None:
    """The last line: the pipeline as it runs by default (ours: params.yaml, precision auto) over the
    notebook, and the peak RSS of training with ours."""
    train_rate, predict_rate = training.pairs_per_s(), prediction.pairs_per_s()
    train_rss = rss["ours", "train"]["peak_rss_gb"] if rss else float("nan")
    print(f"train_speedup={train_rate['ours'] / train_rate['naive']:.2f} "
          f"predict_speedup={predict_rate['ours'] / predict_rate['naive']:.2f} "
          f"train_peak_rss_gb={train_rss:.2f}", flush=True)


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    everything, pad_id = read_file(args)
    samples = draw_samples(everything, args)
    padding = padding_table(samples, args)

    lineup = build_lineup(args, pad_id)
    if not same_starting_weights(lineup):
        print("bench: the naive and ours models start from different weights", file=sys.stderr)
        return 1
    log_lineup(lineup, args)
    if not logits_agree(lineup, samples.predict, args, pad_id):
        print("bench: ours and naive compute different logits, so their speeds are not comparable", file=sys.stderr)
        return 1

    rss = probe_peak_rss(args, samples, lineup, pad_id)
    training = time_training(args, lineup, samples.train, samples.ours_train_batches, started)
    prediction = time_prediction(args, lineup, samples.predict, started)

    print_padding(padding, args)
    print_throughput(args, lineup, rss, training, prediction)
    eval_loss = print_same_results(lineup, samples.predict.labels.numpy(), prediction)
    print_precision_verdict(args, lineup, training, prediction, eval_loss)
    print()
    print_projection(args, samples, lineup, prediction)
    print(f"Benchmark wall time: {fmt_duration(time.perf_counter() - started)}; load average at the end "
          f"{load_average()} (1, 5, 15 min)")
    print_summary_line(rss, training, prediction)
    return 0


if __name__ == "__main__":
    sys.exit(main())
