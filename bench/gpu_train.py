"""Training throughput of a DeBERTa-v3-xsmall-shaped SiamesePreferenceModel on one CUDA GPU, fp16 and bf16.

    bash bench/gpu.sh                          # on a CUDA machine (checks for the GPU, then runs this)
    python bench/gpu_train.py --device cpu --tiny   # seconds on CPU: checks the code path only

Random weights (a DebertaV2Config with deberta-v3-xsmall's sizes; nothing is downloaded) and random
token batches of --batch-size pairs x --seq-len tokens per side, collated by arena_pref.collate and
trained as arena_pref.loop.train trains one micro-batch: autocast forward, fp32 loss, GradScaler for
fp16, unscale + clip, AdamW (arena_pref.loop.build_optimizer). Per precision: pairs/s over timed steps
after warm-up steps, peak GPU memory (torch.cuda.max_memory_allocated) and achieved TFLOP/s, with

    FLOPs per step = 6 * N * T  +  12 * layers * hidden * seq^2 * S
    N = parameters excluding embedding tables (word and relative-position embeddings), head included
    T = tokens per step = S * seq;  S = sequences per step = 2 * batch (both sides of every pair)

6 N T is forward (2) + backward (4) FLOPs of every dense weight per token; the second term is QK^T and
AV (4 seq^2 hidden per layer and sequence forward, x3 for training). DeBERTa's disentangled c2p/p2c
attention adds 24 * layers * hidden * seq * position_buckets * S on top, printed as a second figure.

Then prediction: arena_pref.infer.predict_pairs (the evaluate and predict stages' code, swap TTA included)
over --predict-pairs random pairs in batches of --predict-batch-size, after one untimed warm-up call.

fp16 must take finite optimizer steps: the GradScaler's scale is printed, and the run fails (exit 1)
when no step was taken, the last step was skipped, or a weight ended non-finite.
Exits 2 with a message when --device cuda finds no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--tiny", action="store_true", help="a 2-layer 32-wide config and small batches (code check)")
    p.add_argument("--precisions", default="fp16,bf16", help="comma-separated: fp16, bf16, fp32")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 16; tiny 2)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per side (default 512; tiny 64)")
    p.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (default 5; tiny 2)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30; tiny 3)")
    p.add_argument("--predict-pairs", type=int, default=None, help="pairs to predict (default 2048; tiny 8)")
    p.add_argument("--predict-batch-size", type=int, default=None, help="pairs per prediction batch (default 64; tiny 4)")
    p.add_argument("--head", default="symmetric", choices=("symmetric", "concat"))
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--head-lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    defaults = {"batch_size": (16, 2), "seq_len": (512, 64), "warmup_steps": (5, 2), "steps": (30, 3),
                "predict_pairs": (2048, 8), "predict_batch_size": (64, 4)}
    for key, (full, tiny) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.tiny else full)
    args.precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    bad = set(args.precisions) - {"fp16", "bf16", "fp32"}
    if bad:
        p.error(f"--precisions: unknown {sorted(bad)}")
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


def non_embedding_params(model: torch.nn.Module) -> int:
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()) - embedding


def time_prediction(model, config, precision, args: argparse.Namespace, device: torch.device, sync) -> float:
    """Seconds that predict_pairs takes over --predict-pairs random pairs of --seq-len tokens a side."""
    import numpy as np
    import pandas as pd

    from arena_pref.collate import PairColumns
    from arena_pref.infer import predict_pairs

    rng = np.random.default_rng(args.seed)
    n = args.predict_pairs
    frame = pd.DataFrame({
        "a_ids": list(rng.integers(5, config.vocab_size, (n, args.seq_len))),
        "b_ids": list(rng.integers(5, config.vocab_size, (n, args.seq_len))),
        "a_stats": list(np.zeros((n, 0), dtype=np.float32)), "b_stats": list(np.zeros((n, 0), dtype=np.float32)),
    })

    def run(rows: pd.DataFrame):
        return predict_pairs(model, PairColumns(rows), args.predict_batch_size, device, precision, config.pad_token_id,
                             show_progress=False)

    run(frame.iloc[: args.predict_batch_size])  # warm-up: kernel selection, allocator
    sync()
    t0 = time.perf_counter()
    predictions = run(frame)
    sync()
    seconds = time.perf_counter() - t0
    if not np.isfinite(predictions.tta).all():
        raise RuntimeError(f"{precision.name}: predict_pairs returned non-finite probabilities")
    return seconds


def run_precision(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    from transformers import DebertaV2Model

    from arena_pref.collate import collate_pairs
    from arena_pref.loop import build_optimizer
    from arena_pref.model import SiamesePreferenceModel
    from arena_pref.precision import autocast

    precision = precision_for(name, device)
    config = xsmall_config(args.tiny)
    torch.manual_seed(args.seed)
    model = SiamesePreferenceModel(DebertaV2Model(config), args.head, dropout=0.1).to(device).train()
    optimizer = build_optimizer(model, args.lr, args.head_lr, weight_decay=0.01)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)

    generator = torch.Generator().manual_seed(args.seed)
    n_batches = 4  # a few distinct random batches, reused in turn
    batches = []
    for _ in range(n_batches):
        ids = torch.randint(5, config.vocab_size, (2, args.batch_size, args.seq_len), generator=generator)
        batch = collate_pairs(ids[0].tolist(), ids[1].tolist(), config.pad_token_id, precision.pad_to_multiple_of)
        labels = torch.randint(0, 3, (args.batch_size,), generator=generator)
        batches.append(({k: v.to(device) for k, v in batch.items()}, labels.to(device)))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    losses, skipped = [], []
    probe = next(p for p in model.backbone.encoder.parameters() if p.ndim >= 2)
    probe_before = probe.detach().float().clone()

    def step(i: int) -> None:
        batch, labels = batches[i % n_batches]
        with autocast(precision, device):
            logits = model(**batch)
        loss = F.cross_entropy(logits.float(), labels)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scale_before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        skipped.append(precision.use_grad_scaler and scaler.get_scale() < scale_before)

    initial_scale = scaler.get_scale() if precision.use_grad_scaler else None
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup_steps):
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup_steps + i)
    sync()
    seconds = time.perf_counter() - t0

    peak_train_gib = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    predict_seconds = time_prediction(model, config, precision, args, device, sync)

    sequences = 2 * args.batch_size
    tokens = sequences * args.seq_len
    n_dense = non_embedding_params(model)
    flops_dense_attn = 6 * n_dense * tokens + 12 * config.num_hidden_layers * config.hidden_size * args.seq_len ** 2 * sequences
    flops_rel = 24 * config.num_hidden_layers * config.hidden_size * args.seq_len * config.position_buckets * sequences
    losses_f = [float(x) for x in losses]
    weights_finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    result = {
        "precision": name,
        "pairs_per_s": args.steps * args.batch_size / seconds,
        "step_ms": 1000 * seconds / args.steps,
        "predict_pairs_per_s": args.predict_pairs / predict_seconds,
        "peak_mem_gib": peak_train_gib,
        "tflops": flops_dense_attn * args.steps / seconds / 1e12,
        "tflops_with_rel": (flops_dense_attn + flops_rel) * args.steps / seconds / 1e12,
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_non_embedding": n_dense,
        "flops_per_step": flops_dense_attn,
        "final_loss": losses_f[-1],
        "weights_finite": weights_finite,
        "weights_changed": bool((probe.detach().float() != probe_before).any()),
        "steps_total": len(skipped),
        "steps_skipped": int(sum(skipped)),
        "last_step_skipped": bool(skipped[-1]),
        "scale_initial": initial_scale,
        "scale_final": scaler.get_scale() if precision.use_grad_scaler else None,
    }
    del model, optimizer, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


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
          f"{args.seq_len} tokens per side, {args.warmup_steps} warm-up + {args.steps} timed steps", flush=True)
    if "bf16" in args.precisions and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print("bf16: this GPU has no bf16 support; skipped", flush=True)
        args.precisions = [p for p in args.precisions if p != "bf16"]

    results = []
    for name in args.precisions:
        r = run_precision(name, args, device)
        results.append(r)
        print(json.dumps(r), flush=True)

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
    print(" ".join(f"{r['precision']}_pairs_per_s={r['pairs_per_s']:.1f}" for r in results)
          + " " + " ".join(f"{r['precision']}_predict_pairs_per_s={r['predict_pairs_per_s']:.1f}" for r in results)
          + " " + " ".join(f"{r['precision']}_tflops={r['tflops']:.3g}" for r in results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
