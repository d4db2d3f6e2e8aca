import math

import numpy as np
import pytest
import torch

from arena_pref.checkpoint import load_checkpoint, model_from_checkpoint, save_atomic
from arena_pref.collate import PairColumns
from arena_pref.infer import predict_pairs
from arena_pref.errors import InputError
from arena_pref.loop import (NonFiniteLossError, build_optimizer, freeze_bottom_layers, is_window_end, layers_below_top,
                             plan_steps, train, window_size)
from arena_pref.precision import Precision, cpu_has_native_bf16, resolve_precision
from helpers import pairs, params, tiny_model

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)


def run(tmp_path, model, train_pairs, valid_pairs, p, logged=None):
    logged = logged if logged is not None else []
    return train(model, train_pairs, valid_pairs, p, seed=0, device=CPU, precision=FP32, pad_token_id=0,
                 best_path=tmp_path / "best.pt", last_path=tmp_path / "last.pt",
                 payload_extra={},
                 log_metrics=lambda step, metrics: logged.append((step, metrics)))


def test_plan_counts_the_last_partial_window():
    plan = plan_steps(train_pairs=10, batch_size=2, grad_accum_steps=2, epochs=3, warmup_ratio=0.1)
    assert (plan.micro_batches_per_epoch, plan.optimizer_steps_per_epoch, plan.total_steps) == (5, 3, 9)
    assert plan.warmup_steps == 1 and plan.effective_batch == 4


def test_window_sizes_divide_the_loss_by_the_micro_batches_in_the_window():
    assert [window_size(i, 5, 2) for i in range(5)] == [2, 2, 2, 2, 1]
    assert [is_window_end(i, 5, 2) for i in range(5)] == [False, True, False, True, True]
    assert [window_size(i, 3, 4) for i in range(3)] == [3, 3, 3]


def test_optimizer_groups_skip_decay_on_biases_and_norms():
    model = tiny_model()
    optimizer = build_optimizer(model, lr=1e-5, head_lr=1e-3, weight_decay=0.1)
    by_id = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    assert by_id[id(model.backbone.embeddings.LayerNorm.weight)]["weight_decay"] == 0.0
    assert by_id[id(model.backbone.embeddings.LayerNorm.weight)]["lr"] == 1e-5
    assert by_id[id(model.head.win[1].weight)] == next(g for g in optimizer.param_groups
                                                     if g["lr"] == 1e-3 and g["weight_decay"] == 0.1)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_layers_below_top_counts_from_the_top_encoder_layer():
    assert [layers_below_top(f"encoder.layer.{i}.attention.self.query.weight", 12) for i in (11, 10, 0)] == [0, 1, 11]
    assert layers_below_top("model.layers.3.self_attn.q_proj.weight", 4) == 0  # decoder naming
    assert layers_below_top("embeddings.word_embeddings.weight", 12) == 12
    assert layers_below_top("encoder.rel_embeddings.weight", 12) == 12
    assert layers_below_top("pooler.dense.weight", 12) == 0


def test_layer_lr_decay_gives_each_layer_its_rate():
    model = tiny_model()  # 2 encoder layers
    optimizer = build_optimizer(model, lr=1e-3, head_lr=1e-2, weight_decay=0.1, layer_lr_decay=0.5)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    backbone = model.backbone
    assert rate[id(backbone.encoder.layer[1].attention.self.query_proj.weight)] == 1e-3
    assert rate[id(backbone.encoder.layer[0].attention.self.query_proj.weight)] == 5e-4
    assert rate[id(backbone.embeddings.word_embeddings.weight)] == 2.5e-4
    assert rate[id(backbone.encoder.rel_embeddings.weight)] == 2.5e-4
    assert rate[id(model.head.win[1].weight)] == 1e-2
    assert decay[id(backbone.encoder.layer[0].attention.self.query_proj.bias)] == 0.0
    assert decay[id(backbone.encoder.layer[0].attention.self.query_proj.weight)] == 0.1
    assert optimizer.param_groups[0]["lr"] == 1e-3  # the logged train/lr is the top rate
    assert sorted(rate) == sorted(id(p) for p in model.parameters() if p.requires_grad)


def frozen_names(model) -> list[str]:
    return sorted(name for name, p in model.named_parameters() if not p.requires_grad)


@pytest.mark.parametrize("freeze_layers, frozen_prefixes", [
    (0, ()),
    (1, ("embeddings.", "encoder.rel_embeddings.")),
    (2, ("embeddings.", "encoder.rel_embeddings.", "encoder.layer.0.")),
])
def test_freeze_layers_freezes_the_embeddings_then_the_lowest_layers(freeze_layers, frozen_prefixes):
    model = tiny_model()  # 2 encoder layers
    freeze_bottom_layers(model, freeze_layers)
    backbone_names = [name for name, _ in model.backbone.named_parameters()]
    assert frozen_names(model) == sorted("backbone." + name for name in backbone_names
                                         if name.startswith(frozen_prefixes))
    assert all(p.requires_grad for p in model.head.parameters())


def test_freeze_layers_keeps_the_top_layer_learning():
    with pytest.raises(InputError, match="train.freeze_layers is 3, but the backbone has 2 encoder layers"):
        freeze_bottom_layers(tiny_model(), 3)


def test_a_run_with_frozen_layers_leaves_them_at_their_start(tmp_path):
    model = tiny_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, pairs(8), pairs(4, seed=1), params(batch_size=2, grad_accum_steps=1, freeze_layers=2), seed=0,
          device=CPU, precision=FP32, pad_token_id=0, best_path=tmp_path / "best.pt", last_path=tmp_path / "last.pt",
          payload_extra={}, log_metrics=lambda step, metrics: None)
    frozen = frozen_names(model)
    assert "backbone.encoder.layer.0.attention.self.query_proj.weight" in frozen
    for name, value in model.state_dict().items():
        assert torch.equal(value, start[name]) == (name in frozen or not value.is_floating_point()), name
    # A saved optimizer names its parameters by index: one per parameter it updates.
    groups = load_checkpoint(tmp_path / "last.pt")["optimizer"]["param_groups"]
    optimized = [index for group in groups for index in group["params"]]
    assert len(set(optimized)) == len(optimized) == sum(p.requires_grad for p in model.parameters())


def test_layer_lr_decay_one_matches_the_plain_optimizer():
    model = tiny_model()
    plain = build_optimizer(model, lr=1e-3, head_lr=1e-2, weight_decay=0.1)
    same = build_optimizer(model, lr=1e-3, head_lr=1e-2, weight_decay=0.1, layer_lr_decay=1.0)
    assert [(g["lr"], g["weight_decay"], [id(p) for p in g["params"]]) for g in plain.param_groups] == \
        [(g["lr"], g["weight_decay"], [id(p) for p in g["params"]]) for g in same.param_groups]
    assert len({g["lr"] for g in plain.param_groups}) == 2


def test_ema_checkpoints_the_average_and_resumes_the_live_weights(tmp_path):
    decay = 0.75
    model = tiny_model()
    live = []  # the live weights after each optimizer step (train metrics are logged right after it)

    def snapshot(step, metrics):
        if "train/loss" in metrics:
            live.append({k: v.clone() for k, v in model.state_dict().items()})

    train(model, pairs(4), pairs(4, seed=1), params(batch_size=2, grad_accum_steps=1, ema_decay=decay), seed=0,
          device=CPU, precision=FP32, pad_token_id=0, best_path=tmp_path / "best.pt", last_path=tmp_path / "last.pt",
          payload_extra={}, log_metrics=snapshot)
    assert len(live) == 2
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    key = "backbone.encoder.layer.0.attention.self.query_proj.weight"
    assert not torch.equal(live[0][key], live[1][key])
    # The first update copies the weights, each later one moves the average (1 - decay) of the way.
    torch.testing.assert_close(best["model"][key], decay * live[0][key] + (1 - decay) * live[1][key])
    torch.testing.assert_close(last["ema"]["module." + key], best["model"][key])
    assert torch.equal(last["model"][key], live[1][key])  # resuming continues from the live weights


def test_ema_run_interrupted_and_resumed_ends_as_an_uninterrupted_one(tmp_path):
    p = params(batch_size=2, grad_accum_steps=1, eval_every_steps=1, ema_decay=0.5)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    run(tmp_path / "a", tiny_model(), pairs(8), pairs(4, seed=1), p)

    class Killed(Exception):
        pass

    def kill_at_step_three(step, metrics):
        if step == 3 and "train/loss" in metrics:  # after step 2's checkpoint, before step 3's
            raise Killed

    def start(resume_from, log_metrics):
        return train(tiny_model(), pairs(8), pairs(4, seed=1), p, seed=0, device=CPU, precision=FP32,
                     pad_token_id=0, best_path=tmp_path / "b/best.pt", last_path=tmp_path / "b/last.pt",
                     payload_extra={}, log_metrics=log_metrics, resume_from=resume_from)

    with pytest.raises(Killed):
        start(None, kill_at_step_three)
    assert load_checkpoint(tmp_path / "b/last.pt")["step"] == 2
    assert start(load_checkpoint(tmp_path / "b/last.pt"), lambda *_: None).steps == 4
    for name in ("best.pt", "last.pt"):
        a, b = load_checkpoint(tmp_path / "a" / name), load_checkpoint(tmp_path / "b" / name)
        assert a["step"] == b["step"]
        for key in a["model"]:
            torch.testing.assert_close(b["model"][key], a["model"][key], rtol=0, atol=0)
    torch.testing.assert_close(load_checkpoint(tmp_path / "b/last.pt")["ema"],
                               load_checkpoint(tmp_path / "a/last.pt")["ema"], rtol=0, atol=0)


def test_five_micro_batches_with_accumulation_two_take_three_steps(tmp_path):
    model = tiny_model()
    logged = []
    result = run(tmp_path, model, pairs(10), pairs(4, seed=1), params(), logged)
    assert result.steps == 3
    assert [step for step, m in logged if "train/loss" in m] == [1, 2, 3]


def test_cosine_schedule_warms_up_then_decays_to_zero(tmp_path):
    logged = []
    run(tmp_path, tiny_model(), pairs(16), pairs(4, seed=1), params(batch_size=1, grad_accum_steps=1,
                                                                     warmup_ratio=0.25), logged)
    lrs = [m["train/lr"] for _, m in logged if "train/lr" in m]
    assert len(lrs) == 16
    # LambdaLR reports the rate for the next step: warmup 4 steps ramps up, then cosine to 0.
    assert lrs[:4] == pytest.approx([2.5e-4, 5.0e-4, 7.5e-4, 1.0e-3])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))


def test_two_steps_change_parameters_and_best_checkpoint_reloads(tmp_path):
    model = tiny_model(n_side_stats=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    valid = pairs(6, seed=1)
    result = run(tmp_path, model, pairs(4), valid, params(batch_size=2, grad_accum_steps=1))
    assert result.steps == 2
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("backbone.") for k in changed) and any(k.startswith("head.") for k in changed)

    reloaded = model_from_checkpoint(load_checkpoint(tmp_path / "best.pt"))
    args = (PairColumns(valid), 4, CPU, FP32, 0)
    expected = predict_pairs(model, *args, show_progress=False).forward
    np.testing.assert_allclose(predict_pairs(reloaded, *args, show_progress=False).forward, expected, atol=1e-6)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["step"] == 2 and "optimizer" in last and "scheduler" in last
    assert load_checkpoint(tmp_path / "best.pt")["val_loss"] == pytest.approx(result.best_val_loss)


def test_nan_loss_stops_with_the_step_named(tmp_path, monkeypatch):
    model = tiny_model()
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: original(*a, **k) * float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at optimizer step 1"):
        run(tmp_path, model, pairs(4), pairs(2, seed=1), params())


def test_save_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    save_atomic({"version": 1}, target)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_atomic({"version": 2}, target)
    assert load_checkpoint(target) == {"version": 1}


def test_fp16_is_refused_on_cpu():
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        resolve_precision("fp16", CPU)
    assert resolve_precision("auto", CPU).name == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert math.isclose(resolve_precision("auto", torch.device("cuda")).pad_to_multiple_of, 8)


def test_same_seed_gives_identical_runs(tmp_path):
    results = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        model = tiny_model(seed=0)  # the backbone's dropout (p=0.1) draws from the RNG while training
        logged = []
        result = run(tmp_path / name, model, pairs(8), pairs(4, seed=1), params(), logged)
        results.append((result.best_val_loss, [m for _, m in logged]))
    assert results[0] == results[1]


# fp16 needs CUDA, but GradScaler's skip-and-back-off logic is device independent: a precision with
# the scaler on and no autocast runs that path on the CPU.
SCALED = Precision(name="fp16", autocast_dtype=None, use_grad_scaler=True, pad_to_multiple_of=1)


def run_scaled(tmp_path, model, n_pairs, logged):
    return train(model, pairs(n_pairs), pairs(4, seed=1), params(batch_size=1, grad_accum_steps=1), seed=0,
                 device=CPU, precision=SCALED, pad_token_id=0, best_path=tmp_path / "best.pt",
                 last_path=tmp_path / "last.pt", payload_extra={},
                 log_metrics=lambda step, metrics: logged.append((step, metrics)))


def test_grad_scaler_skips_a_transient_nan_step_and_training_goes_on(tmp_path, monkeypatch):
    model = tiny_model()
    original, calls = model.forward, []

    def nan_once(*args, **kwargs):
        calls.append(1)
        out = original(*args, **kwargs)
        return out * float("nan") if len(calls) == 1 else out

    monkeypatch.setattr(model, "forward", nan_once)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logged = []
    result = run_scaled(tmp_path, model, 4, logged)
    assert result.steps == 4
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_persistent_nan_under_the_scaler_stops_naming_the_step(tmp_path, monkeypatch):
    model = tiny_model()
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: original(*a, **k) * float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"non-finite for 20 optimizer steps in a row up to step 20"):
        run_scaled(tmp_path, model, 24, [])
