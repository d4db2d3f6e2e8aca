"""Training throughput of a DeBERTa-v3-xsmall-shaped SiamesePreferenceModel on one CUDA GPU, fp16 and bf16.

    bash bench/gpu.sh                          # on a CUDA machine (checks for the GPU, then runs this)
    python bench/gpu_train.py --device cpu --tiny   # seconds on CPU: checks the code path only

Random weights (a DebertaV2Config with deberta-v3-xsmall's sizes; nothing is downloaded) and random-token
pairs of --seq-len tokens per side, held as the featurize stage holds pairs (a_ids, b_ids, a_stats,
b_stats, label). Training is the pipeline's own loop, arena_pref.loop.train, for one epoch of
--warmup-steps + --steps optimizer steps of --batch-size pairs (no gradient accumulation, no evaluation
until the epoch ends; the other train settings from params.yaml). Its log_metrics callback stops the clock:
pairs/s over the --steps steps after the warm-up, timed between device synchronisations at the end of the
last warm-up step and of the last step, so the validation and the checkpoints loop.train writes after the
epoch are not timed. Per precision it reports pairs/s, peak GPU memory (torch.cuda.max_memory_allocated,
reset before the run) and achieved TFLOP/s, with

    FLOPs per step = 6 * N * T  +  12 * layers * hidden * seq^2 * S
    N = parameters excluding embedding tables (word and relative-position embeddings), head included
    T = tokens per step = S * seq;  S = sequences per step = 2 * batch (both sides of every pair)

6 N T is forward (2) + backward (4) FLOPs of every dense weight per token; the second term is QK^T and
AV (4 seq^2 hidden per layer and sequence forward, x3 for training). DeBERTa's disentangled c2p/p2c
attention adds 24 * layers * hidden * seq * position_buckets * S on top, printed as a second figure.

Then prediction: arena_pref.infer.predict_pairs (the evaluate and predict stages' code, swap TTA included)
over --predict-pairs random pairs in batches of --predict-batch-size, after one untimed warm-up call.

fp16 must take finite optimizer steps: the GradScaler's scale is printed, and the run fails (exit 1)
when no step was taken, the last step was skipped, or a weight ended non-finite. Skipped steps are read
from the last checkpoint loop.train wrote: its scheduler counts only the steps the optimizer took.
Exits 2 with a message when --device cuda finds no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent
# Token ids below this are the tokenizer's pad and special tokens; random text is drawn above them.
FIRST_ORDINARY_TOKEN = 5


def parse_args() -> argparse.Namespace:
    from arena_pref.params import load_params

    params = load_params(REPO / "params.yaml")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--tiny", action="store_true", help="a 2-layer 32-wide config and small batches (code check)")
    p.add_argument("--precisions", default="fp16,bf16", help="comma-separated: fp16, bf16, fp32")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 16; tiny 2)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per side (default 512; tiny 64)")
    p.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first, at least 1 (default 5; tiny 2)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30; tiny 3)")
    p.add_argument("--predict-pairs", type=int, default=None, help="pairs to predict (default 2048; tiny 8)")
    p.add_argument("--predict-batch-size", type=int, default=None, help="pairs per prediction batch (default 64; tiny 4)")
    p.add_argument("--head", default="symmetric", choices=("symmetric", "concat"))
    p.add_argument("--lr", type=float, default=params.train.lr, help="default: train.lr (%(default)s)")
    p.add_argument("--head-lr", type=float, default=params.train.head_lr, help="default: train.head_lr (%(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    defaults = {"batch_size": (16, 2), "seq_len": (512, 64), "warmup_steps": (5, 2), "steps": (30, 3),
                "predict_pairs": (2048, 8), "predict_batch_size": (64, 4)}
    for key, (full, tiny) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.tiny else full)
    if args.warmup_steps < 1 or args.steps < 1:
        p.error("--warmup-steps and --steps must be at least 1 (the clock starts at the end of the warm-up)")
    args.precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    bad = set(args.precisions) - {"fp16", "bf16", "fp32"}
    if bad:
        p.error(f"--precisions: unknown {sorted(bad)}")
    args.params = params
    return args


def xsmall_config(tiny: bool):
    """deberta-v3-xsmall's architecture (its config.json), or a tiny one of the same kind."""
    from transformers import DebertaV2Config

    sizes = dict(vocab_size=128100, hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                 intermediate_size=1536, position_buckets=256)
    if tiny:
        sizes = dict(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, position_buckets=32)
    return DebertaV2Config(**sizes, max_position_embeddings=512, relative_attention=True, max_relative_positions=-1,
                           pos_att_type="p2c|c2p", position_biased_input=False, norm_rel_ebd="layer_norm",
                           share_att_key=True, type_vocab_size=0, layer_norm_eps=1e-7, hidden_act="gelu",
                           hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0)


def precision_for(name: str, device: torch.device):
    from arena_pref.precision import Precision, resolve_precision

    if name == "fp16" and device.type == "cpu":
        # The pipeline refuses fp16 off CUDA; for the CPU code check, run the same fp16 path (autocast
        # float16 + GradScaler) anyway so that --device cpu --tiny exercises it.
        return Precision(name="fp16", autocast_dtype=torch.float16, use_grad_scaler=True, pad_to_multiple_of=8)
    return resolve_precision(name, device)


def random_pairs(n: int, seq_len: int, vocab_size: int, seed: int) -> pd.DataFrame:
    """`n` featurized pairs of random tokens, every side `seq_len` long, random labels, and no side
    statistics (the model is built without them)."""
    from arena_pref.labels import N_CLASSES

    rng = np.random.default_rng(seed)
    no_stats = list(np.zeros((n, 0), dtype=np.float32))
    return pd.DataFrame({
        "a_ids": list(rng.integers(FIRST_ORDINARY_TOKEN, vocab_size, (n, seq_len))),
        "b_ids": list(rng.integers(FIRST_ORDINARY_TOKEN, vocab_size, (n, seq_len))),
        "a_stats": no_stats, "b_stats": no_stats,
        "label": rng.integers(0, N_CLASSES, n),
    })


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock:
    """loop.train's log_metrics callback: the wall time of the optimizer steps after `warmup_steps`, up
    to `warmup_steps + steps`, the training loss of every step, and the peak GPU memory by the last step."""

    def __init__(self, warmup_steps: int, steps: int, device: torch.device):
        self.start_step, self.end_step, self.device = warmup_steps, warmup_steps + steps, device
        self.started = self.seconds = self.peak_mem_gib = None
        self.losses: list[float] = []

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if "train/loss" not in metrics:  # the validation after the epoch: not timed
            return
        self.losses.append(metrics["train/loss"])
        if step == self.start_step:
            sync(self.device)
            self.started = time.perf_counter()
        elif step == self.end_step:
            sync(self.device)
            self.seconds = time.perf_counter() - self.started
            if self.device.type == "cuda":
                self.peak_mem_gib = torch.cuda.max_memory_allocated(self.device) / 2 ** 30


@dataclass
class TrainingRun:
    clock: StepClock
    steps_total: int  # optimizer steps loop.train ran, skipped ones included
    steps_skipped: int  # steps the fp16 GradScaler skipped on overflow
    last_step_skipped: bool
    scale_initial: float | None  # the GradScaler's scale; None without one
    scale_final: float | None
    weights_changed: bool


def time_training(model, config, precision, args: argparse.Namespace, device: torch.device) -> TrainingRun:
    """One epoch of loop.train over (warm-up + timed steps) x --batch-size random pairs."""
    from arena_pref.checkpoint import load_checkpoint
    from arena_pref.loop import train

    steps = args.warmup_steps + args.steps
    train_pairs = random_pairs(steps * args.batch_size, args.seq_len, config.vocab_size, args.seed)
    valid_pairs = random_pairs(args.batch_size, args.seq_len, config.vocab_size, args.seed + 1)
    settings = replace(args.params.train, epochs=1, batch_size=args.batch_size, grad_accum_steps=1,
                       lr=args.lr, head_lr=args.head_lr, eval_every_steps=0)
    clock = StepClock(args.warmup_steps, args.steps, device)
    probe = next(p for p in model.backbone.encoder.parameters() if p.ndim >= 2)
    probe_before = probe.detach().float().clone()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix="gpu-train-") as tmp:
        result = train(model, train_pairs, valid_pairs, settings, args.seed, device, precision, config.pad_token_id,
                       best_path=Path(tmp) / "best.pt", last_path=Path(tmp) / "last.pt", payload_extra={},
                       log_metrics=clock)
        last = load_checkpoint(Path(tmp) / "last.pt")
    # The scheduler steps only when the optimizer did (loop.train), so it counts the steps taken.
    taken = last["scheduler"]["last_epoch"]
    scaling = precision.use_grad_scaler
    return TrainingRun(
        clock=clock, steps_total=result.steps, steps_skipped=result.steps - taken,
        last_step_skipped=last["progress"]["nonfinite_run"] > 0,
        # loop.train's GradScaler starts from torch's default scale
        scale_initial=torch.amp.GradScaler(device.type).get_scale() if scaling else None,
        scale_final=last["scaler"]["scale"] if scaling else None,
        weights_changed=bool((probe.detach().float() != probe_before).any()))


def time_prediction(model, config, precision, args: argparse.Namespace, device: torch.device) -> float:
    """Seconds that predict_pairs takes over --predict-pairs random pairs of --seq-len tokens a side."""
    from arena_pref.collate import PairColumns
    from arena_pref.infer import predict_pairs

    pairs = random_pairs(args.predict_pairs, args.seq_len, config.vocab_size, args.seed)

    def run(rows: pd.DataFrame):
        return predict_pairs(model, PairColumns(rows), args.predict_batch_size, device, precision, config.pad_token_id,
                             show_progress=False)

    run(pairs.iloc[: args.predict_batch_size])  # warm-up: kernel selection, allocator
    sync(device)
    t0 = time.perf_counter()
    predictions = run(pairs)
    sync(device)
    seconds = time.perf_counter() - t0
    if not np.isfinite(predictions.tta).all():
        raise RuntimeError(f"{precision.name}: predict_pairs returned non-finite probabilities")
    return seconds


def non_embedding_params(model: torch.nn.Module) -> int:
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()) - embedding


def flops_per_step(n_dense: int, config, args: argparse.Namespace) -> tuple[float, float]:
    """(dense + attention FLOPs, DeBERTa's c2p/p2c FLOPs) of one training step (see the module docstring)."""
    sequences = 2 * args.batch_size
    tokens = sequences * args.seq_len
    layers, hidden = config.num_hidden_layers, config.hidden_size
    dense_attn = 6 * n_dense * tokens + 12 * layers * hidden * args.seq_len ** 2 * sequences
    relative = 24 * layers * hidden * args.seq_len * config.position_buckets * sequences
    return dense_attn, relative


def run_precision(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    from transformers import DebertaV2Model

    from arena_pref.model import SiamesePreferenceModel

    precision = precision_for(name, device)
    config = xsmall_config(args.tiny)
    torch.manual_seed(args.seed)
    model = SiamesePreferenceModel(DebertaV2Model(config), args.head, dropout=args.params.model.dropout).to(device)
    run = time_training(model, config, precision, args, device)
    predict_seconds = time_prediction(model, config, precision, args, device)

    seconds = run.clock.seconds
    n_dense = non_embedding_params(model)
    flops_dense_attn, flops_rel = flops_per_step(n_dense, config, args)
    result = {
        "precision": name,
        "pairs_per_s": args.steps * args.batch_size / seconds,
        "step_ms": 1000 * seconds / args.steps,
        "predict_pairs_per_s": args.predict_pairs / predict_seconds,
        "peak_mem_gib": run.clock.peak_mem_gib,
        "tflops": flops_dense_attn * args.steps / seconds / 1e12,
        "tflops_with_rel": (flops_dense_attn + flops_rel) * args.steps / seconds / 1e12,
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_non_embedding": n_dense,
        "flops_per_step": flops_dense_attn,
        "final_loss": run.clock.losses[-1],
        "weights_finite": all(bool(torch.isfinite(p).all()) for p in model.parameters()),
        "weights_changed": run.weights_changed,
        "steps_total": run.steps_total,
        "steps_skipped": run.steps_skipped,
        "last_step_skipped": run.last_step_skipped,
        "scale_initial": run.scale_initial,
        "scale_final": run.scale_final,
    }
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def print_table(results: list[dict]) -> None:
    first = results[0]
    print()
    print(f"parameters: {first['params_total'] / 1e6:.1f}M total, {first['params_non_embedding'] / 1e6:.1f}M without "
          f"embedding tables; FLOPs per step (6*N*T + 12*layers*hidden*seq^2*S): {first['flops_per_step'] / 1e12:.3g} T")
    print(f"{'precision':9s} {'pairs/s':>9s} {'ms/step':>9s} {'peak GiB':>9s} {'TFLOP/s':>8s} {'+c2p/p2c':>9s} "
          f"{'final loss':>10s} {'predict pairs/s':>16s}")
    for r in results:
        mem = f"{r['peak_mem_gib']:.2f}" if r["peak_mem_gib"] is not None else "-"
        print(f"{r['precision']:9s} {r['pairs_per_s']:9.1f} {r['step_ms']:9.1f} {mem:>9s} {r['tflops']:8.3g} "
              f"{r['tflops_with_rel']:9.3g} {r['final_loss']:10.4f} {r['predict_pairs_per_s']:16.1f}")


def checks_pass(results: list[dict]) -> bool:
    """Finite weights and loss in every precision; in fp16, optimizer steps the GradScaler let through."""
    ok = True
    for r in results:
        if not (r["weights_finite"] and math.isfinite(r["final_loss"])):
            print(f"{r['precision']}: FAIL non-finite weights or loss", flush=True)
            ok = False
    fp16 = next((r for r in results if r["precision"] == "fp16"), None)
    if fp16 is not None:
        taken = fp16["steps_total"] - fp16["steps_skipped"]
        fine = taken > 0 and not fp16["last_step_skipped"] and fp16["weights_finite"] and fp16["weights_changed"]
        print(f"fp16 GradScaler: scale {fp16['scale_initial']:g} -> {fp16['scale_final']:g}; {taken} of "
              f"{fp16['steps_total']} optimizer steps taken ({fp16['steps_skipped']} skipped on overflow, the scaler's "
              f"back-off), last step {'skipped' if fp16['last_step_skipped'] else 'taken'}, weights "
              f"{'finite' if fp16['weights_finite'] else 'NOT finite'} and {'updated' if fp16['weights_changed'] else 'NOT updated'}"
              f" -> {'OK' if fine else 'FAIL'}")
        ok = ok and fine
    return ok


def main() -> int:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu_train.py: no CUDA device is visible to torch (torch.cuda.is_available() is False); "
              "run this on a machine with an NVIDIA GPU and a CUDA build of torch, or use --device cpu --tiny "
              "to check the code path.", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {where}; torch {torch.__version__}" + (f", CUDA {torch.version.cuda}" if device.type == "cuda" else "")
          + f"; config: {'tiny' if args.tiny else 'deberta-v3-xsmall shape'}, {args.batch_size} pairs x "
          f"{args.seq_len} tokens per side, {args.warmup_steps} warm-up + {args.steps} timed steps of loop.train",
          flush=True)
    if "bf16" in args.precisions and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print("bf16: this GPU has no bf16 support; skipped", flush=True)
        args.precisions = [p for p in args.precisions if p != "bf16"]

    results = []
    for name in args.precisions:
        results.append(run_precision(name, args, device))
        print(json.dumps(results[-1]), flush=True)
    print_table(results)
    ok = checks_pass(results)
    print(" ".join(f"{r['precision']}_pairs_per_s={r['pairs_per_s']:.1f}" for r in results)
          + " " + " ".join(f"{r['precision']}_predict_pairs_per_s={r['predict_pairs_per_s']:.1f}" for r in results)
          + " " + " ".join(f"{r['precision']}_tflops={r['tflops']:.3g}" for r in results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
