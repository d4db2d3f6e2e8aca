"""The run-time estimate the train stage logs before step one (arena_pref.estimate)."""

import logging

import numpy as np
import torch

from arena_pref.collate import PairColumns, length_grouped_batches, sorted_batches
from arena_pref.estimate import (CHEAPER_ALTERNATIVES, FORWARD_SHARE, LONG_RUN_SECONDS, log_estimate,
                                 padded_tokens, run_seconds, seconds_per_token)
from arena_pref.precision import resolve_precision
from helpers import pairs, params, tiny_model

CPU = torch.device("cpu")


def test_padded_tokens_pads_both_sides_of_each_batch_to_its_longest():
    lengths = np.array([3, 5, 2])
    assert padded_tokens([np.array([0, 1]), np.array([2])], lengths) == 2 * 2 * 5 + 2 * 1 * 2


def test_timing_leaves_weights_gradients_and_rng_as_they_were():
    model = tiny_model(n_side_stats=2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    seconds = seconds_per_token(model, PairColumns(pairs(12)), 4, CPU, resolve_precision("fp32", CPU), 0)
    assert seconds > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_run_seconds_counts_epochs_folds_and_validation_passes():
    train, valid = PairColumns(pairs(10, seed=1)), PairColumns(pairs(6, seed=2))
    p = params(epochs=3, batch_size=2, grad_accum_steps=1, eval_every_steps=2)
    train_tokens = padded_tokens(length_grouped_batches(train.lengths(), 2, seed=0), train.lengths())
    valid_tokens = padded_tokens(sorted_batches(valid.lengths(), 4), valid.lengths())
    # 5 optimizer steps an epoch, evaluation every 2 steps and at the end: 3 validation passes an epoch
    expected = 4 * 3 * (train_tokens + 3 * FORWARD_SHARE * valid_tokens) * 0.5
    assert np.isclose(run_seconds(train, valid, p, folds=4, token_seconds=0.5), expected)
    # eval_every_steps 0: one validation pass an epoch
    once = run_seconds(train, valid, params(epochs=1, batch_size=2, eval_every_steps=0), 1, 1.0)
    assert np.isclose(once, train_tokens + FORWARD_SHARE * valid_tokens)


def test_a_long_cpu_run_lists_the_cheaper_alternatives(caplog):
    with caplog.at_level(logging.INFO, logger="arena_pref.estimate"):
        log_estimate(LONG_RUN_SECONDS - 1, 1, CPU)
    assert "estimated training time" in caplog.text and "Cheaper alternatives" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="arena_pref.estimate"):
        log_estimate(LONG_RUN_SECONDS + 1, 5, CPU)
    assert "Cheaper alternatives" in caplog.text
    assert all(alternative in caplog.text for alternative in CHEAPER_ALTERNATIVES)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="arena_pref.estimate"):
        log_estimate(10 * LONG_RUN_SECONDS, 5, torch.device("cuda"))
    assert "Cheaper alternatives" not in caplog.text
