"""The CUDA code paths of the real training loop and predictor: fp16 autocast with GradScaler, bf16,
pad-to-8 batches, checkpoints written on the GPU and read back on the CPU.

Skipped where torch sees no CUDA device (CI, the 2-core development machine); run on a GPU machine with
`pytest tests/test_cuda.py` (bench/gpu.sh runs it first). The CPU suite covers the same loop in fp32,
bf16 and a scaler-without-autocast stand-in; only a GPU runs float16 kernels under the scaler.
"""

import numpy as np
import pytest
import torch

from arena_pref.checkpoint import load_checkpoint, model_from_checkpoint
from arena_pref.collate import PairColumns
from arena_pref.infer import predict_pairs
from arena_pref.loop import train
from arena_pref.precision import resolve_device, resolve_precision
from helpers import pairs, params, tiny_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CPU = torch.device("cpu")
FP32_CPU = resolve_precision("fp32", CPU)


def train_on_cuda(tmp_path, precision_name: str, n_pairs: int = 24):
    device = resolve_device("auto")
    precision = resolve_precision(precision_name, device)
    model = tiny_model(n_side_stats=2).to(device)
    before = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    valid = pairs(6, seed=1)
    logged = []
    result = train(model, pairs(n_pairs), valid, params(batch_size=2, grad_accum_steps=2, precision=precision_name,
                                                      device="cuda", eval_every_steps=1),
                   seed=0, device=device, precision=precision, pad_token_id=0, best_path=tmp_path / "best.pt",
                   last_path=tmp_path / "last.pt", payload_extra={},
                   log_metrics=lambda step, metrics: logged.append((step, metrics)))
    return model, before, valid, result, logged


def test_auto_resolves_to_fp16_with_a_grad_scaler_and_pad_to_eight():
    precision = resolve_precision("auto", resolve_device("auto"))
    assert (precision.name, precision.autocast_dtype, precision.use_grad_scaler, precision.pad_to_multiple_of) == (
        "fp16", torch.float16, True, 8)


@pytest.mark.parametrize("precision_name", ["fp16", "bf16"])
def test_training_on_cuda_takes_finite_steps_and_the_checkpoint_reloads_on_cpu(tmp_path, precision_name):
    model, before, valid, result, logged = train_on_cuda(tmp_path, precision_name)
    assert result.steps == 6  # 24 pairs, batch 2, accumulation 2
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    assert all(torch.isfinite(v.float()).all() for v in state.values())
    assert all(v.dtype == before[k].dtype for k, v in state.items())  # master weights stay fp32 under autocast
    changed = [k for k, v in state.items() if not torch.equal(v, before[k])]
    assert any(k.startswith("backbone.") for k in changed) and any(k.startswith("head.") for k in changed)
    assert [step for step, metrics in logged if "val/loss" in metrics] == [1, 2, 3, 4, 5, 6]

    last = load_checkpoint(tmp_path / "last.pt")
    # fp16 may skip its first steps while the scaler finds its scale (65536 halves on overflow); some
    # steps must go through, and the scaler's state must be in the checkpoint for an exact resume.
    if precision_name == "fp16":
        assert 0 < last["scaler"]["scale"] <= 65536.0
    else:
        assert last["scaler"] == {}
    # The best checkpoint, read on the CPU in fp32, predicts what the CUDA model predicts under autocast,
    # up to half-precision rounding.
    cuda_model = model_from_checkpoint(load_checkpoint(tmp_path / "best.pt")).to("cuda")
    cuda_precision = resolve_precision(precision_name, torch.device("cuda"))
    on_gpu = predict_pairs(cuda_model, PairColumns(valid), 4, torch.device("cuda"), cuda_precision, 0,
                           show_progress=False)
    on_cpu = predict_pairs(model_from_checkpoint(load_checkpoint(tmp_path / "best.pt")), PairColumns(valid), 4, CPU,
                           FP32_CPU, 0, show_progress=False)
    np.testing.assert_allclose(on_gpu.tta, on_cpu.tta, atol=2e-2)
    np.testing.assert_allclose(on_gpu.forward.sum(axis=1), 1.0, atol=1e-12)


def test_fp16_logits_are_half_but_the_loss_the_loop_takes_is_fp32():
    device, precision = torch.device("cuda"), resolve_precision("fp16", torch.device("cuda"))
    model = tiny_model().to(device)
    batch = {k: v.to(device) for k, v in PairColumns(pairs(4)).batch(np.arange(4), 0, 8).items()}
    assert batch["input_ids"].shape[1] % 8 == 0
    with torch.autocast("cuda", dtype=precision.autocast_dtype):
        a, b = model.encode_pairs(batch["input_ids"], batch["attention_mask"])
        logits = model.head(a, b)
    assert a.dtype == torch.float32  # pooled in fp32 (an fp16 sum over 512 tokens can overflow)
    assert logits.dtype == torch.float16
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 0], device=device))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
