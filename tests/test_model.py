import numpy as np
import pytest
import torch

from arena_pref.collate import collate_pairs
from arena_pref import params as params_module
from arena_pref.model import (HEADS, POOLINGS, SPEC_KEYS, AttentionPool, ConcatHead, SymmetricHead, mean_pool,
                              spec_of)
from helpers import tiny_model


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_the_params_name_the_models_heads_and_pools():
    assert params_module.HEADS == tuple(HEADS) and params_module.POOLINGS == tuple(POOLINGS)


def test_an_untrained_attention_pool_is_the_mean_pool():
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    torch.testing.assert_close(AttentionPool(4)(hidden, mask), mean_pool(hidden, mask), rtol=0, atol=1e-6)


def test_a_trained_attention_pool_ignores_padding_and_weights_tokens():
    pool = AttentionPool(2)
    with torch.no_grad():
        pool.score.weight.copy_(torch.tensor([[1.0, 0.0]]))  # score = the first coordinate
    hidden = torch.tensor([[[0.0, 1.0], [torch.log(torch.tensor(3.0)), 5.0], [100.0, 100.0]]])
    # weights softmax(0, log 3) = (1/4, 3/4) over the two real tokens; the padded third one gets none
    torch.testing.assert_close(pool(hidden, torch.tensor([[1, 1, 0]])),
                               torch.tensor([[0.75 * torch.log(torch.tensor(3.0)), 0.25 * 1.0 + 0.75 * 5.0]]))


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_each_pooling_gives_the_model_with_the_same_head(pooling):
    mean, other = tiny_model(), tiny_model(pooling=pooling)
    assert all(torch.equal(p, q) for p, q in zip(mean.head.parameters(), other.head.parameters()))
    batch = collate_pairs([[1, 2, 3], [4, 5]], [[6], [7, 8, 9, 10]], pad_token_id=0)
    with torch.no_grad():
        hidden = mean.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        expected = mean.compare(*(hidden[:, 0] if pooling == "cls" else mean_pool(hidden, batch["attention_mask"])
                                  ).chunk(2))
        torch.testing.assert_close(other(**batch), expected, rtol=0, atol=1e-6)
        if pooling == "cls":
            assert not torch.allclose(other(**batch), mean(**batch))


def test_spec_of_a_file_written_before_pooling_reads_mean():
    stored = {"head": "symmetric", "dropout": 0.1, "n_side_stats": 2, "stats_prior": True}
    assert spec_of(stored) == stored | {"pooling": "mean"}
    assert spec_of(stored | {"pooling": "attention"})["pooling"] == "attention"
    with pytest.raises(KeyError):
        spec_of({key: stored[key] for key in ("head", "dropout", "n_side_stats")})
    assert set(SPEC_KEYS) == set(stored) | {"pooling"}


def test_multi_sample_dropout_averages_the_heads_passes_in_training_only():
    model = tiny_model(dropout=0.5, dropout_samples=3).train()
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    torch.manual_seed(1)
    averaged = model.compare(a, b)
    torch.manual_seed(1)
    passes = [model.head(a, b) for _ in range(3)]
    assert not torch.allclose(passes[0], passes[1])  # each pass draws its own dropout masks
    assert torch.equal(averaged, torch.stack(passes).mean(dim=0))
    model.eval()
    single = tiny_model(dropout=0.5).eval()  # same seed, same weights; one pass
    with torch.no_grad():
        assert torch.equal(model.compare(a, b), single.compare(a, b))
    assert "dropout_samples" not in model.spec()


@pytest.mark.parametrize("head", ["symmetric", "concat"])
def test_logits_shape_is_pairs_by_three(head):
    model = tiny_model(head)
    batch = collate_pairs([[1, 2, 3], [4, 5]], [[6], [7, 8, 9, 10]], pad_token_id=0)
    assert model(**batch).shape == (2, 3)


def test_symmetric_head_swaps_win_logits_and_keeps_tie():
    head = SymmetricHead(8, dropout=0.0).eval()
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    ab, ba = head(a, b), head(b, a)
    torch.testing.assert_close(ab[:, 0], ba[:, 1])
    torch.testing.assert_close(ab[:, 1], ba[:, 0])
    torch.testing.assert_close(ab[:, 2], ba[:, 2])


def test_concat_head_is_not_symmetric_by_construction():
    torch.manual_seed(0)
    head = ConcatHead(8, dropout=0.0).eval()
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    assert not torch.allclose(head(a, b)[:, 0], head(b, a)[:, 1])


def test_padding_does_not_change_logits():
    model = tiny_model()
    short = collate_pairs([[1, 2, 3]], [[4, 5]], pad_token_id=0)
    padded = collate_pairs([[1, 2, 3]], [[4, 5]], pad_token_id=0, pad_to_multiple_of=8)
    torch.testing.assert_close(model(**short), model(**padded), atol=1e-5, rtol=1e-5)


def test_stacked_pass_equals_separate_passes():
    model = tiny_model()
    batch = collate_pairs([[1, 2, 3], [4, 5, 6, 7]], [[8, 9], [10]], pad_token_id=0)
    a_only = collate_pairs([[1, 2, 3], [4, 5, 6, 7]], [[1, 2, 3], [4, 5, 6, 7]], pad_token_id=0)
    with torch.no_grad():
        a_stacked, _ = model.encode_pairs(**batch)
        a_alone, _ = model.encode_pairs(**a_only)
    torch.testing.assert_close(a_stacked, a_alone, atol=1e-5, rtol=1e-5)


def test_side_stats_reach_the_head_and_keep_the_swap_symmetry():
    model = tiny_model(n_side_stats=2)
    a_stats = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    b_stats = np.array([[0.5, 0.6], [0.7, 0.8]], dtype=np.float32)
    ids_a, ids_b = [[1, 2, 3], [4, 5]], [[6], [7, 8, 9]]
    with torch.no_grad():
        ab = model(**collate_pairs(ids_a, ids_b, 0, 1, a_stats, b_stats))
        ba = model(**collate_pairs(ids_b, ids_a, 0, 1, b_stats, a_stats))
        other = model(**collate_pairs(ids_a, ids_b, 0, 1, a_stats * 2, b_stats))
    torch.testing.assert_close(ab[:, [1, 0, 2]], ba, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ab, other)


def test_missing_side_stats_is_an_error():
    model = tiny_model(n_side_stats=2)
    with pytest.raises(ValueError, match="side_stats"):
        model(**collate_pairs([[1, 2]], [[3]], pad_token_id=0))


def length_voted_stats(n: int, seed: int = 0):
    """Side statistics and labels where the longer side (first statistic) tends to win and near-equal
    sides tie: what the stats prior has to learn."""
    rng = np.random.default_rng(seed)
    a, b = rng.random((n, 2), dtype=np.float32), rng.random((n, 2), dtype=np.float32)
    margin = a[:, 0] - b[:, 0] + rng.normal(0, 0.2, n)
    labels = np.where(np.abs(margin) < 0.15, 2, np.where(margin > 0, 0, 1))
    return torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(labels)


def test_untrained_model_with_stats_prior_is_exactly_the_prior():
    model = tiny_model(n_side_stats=2, stats_prior=True)
    a, b, labels = length_voted_stats(40)
    model.fit_prior(a, b, labels)
    batch = collate_pairs([[1, 2, 3], [4, 5]], [[6], [7, 8, 9]], 0, 1, a[:2].numpy(), b[:2].numpy())
    with torch.no_grad():
        torch.testing.assert_close(model(**batch), model.prior(a[:2], b[:2]))
    assert model.prior(a[:2], b[:2]).abs().sum() > 0


def test_stats_prior_swaps_win_logits_and_keeps_tie():
    model = tiny_model(n_side_stats=2, stats_prior=True)
    a, b, labels = length_voted_stats(40)
    model.fit_prior(a, b, labels)
    ab, ba = model.prior(a, b), model.prior(b, a)
    torch.testing.assert_close(ab[:, [1, 0, 2]], ba)


def test_stats_prior_fit_reaches_the_logistic_regression_optimum():
    """The prior is a multinomial logistic regression on [d, |d|, s] constrained to be swap-symmetric; on
    swap-augmented data the unconstrained optimum is symmetric too, so both reach the same training loss."""
    from sklearn.linear_model import LogisticRegression

    a, b, labels = length_voted_stats(300)
    model = tiny_model(n_side_stats=2, stats_prior=True)
    model.fit_prior(a, b, labels)
    with torch.no_grad():
        prior_loss = torch.nn.functional.cross_entropy(model.prior(a, b), labels).item()
    swapped = torch.tensor([1, 0, 2])[labels]
    features = lambda x, y: torch.cat([x - y, (x - y).abs(), x + y], dim=-1).numpy()
    X = np.vstack([features(a, b), features(b, a)])
    y = np.concatenate([labels.numpy(), swapped.numpy()])
    reference = LogisticRegression(C=1.0e6, max_iter=5000).fit(X, y)
    reference_loss = -np.log(reference.predict_proba(features(a, b))[np.arange(300), labels.numpy()]).mean()
    uniform_loss = np.log(3)
    assert prior_loss < uniform_loss - 0.1
    assert prior_loss == pytest.approx(reference_loss, abs=2e-3)


def test_stats_prior_stays_frozen_while_the_head_trains():
    from arena_pref.loop import build_optimizer

    model = tiny_model(n_side_stats=2, stats_prior=True).train()
    a, b, labels = length_voted_stats(8)
    model.fit_prior(a, b, labels)
    prior_before = {k: v.clone() for k, v in model.prior.state_dict().items()}
    head_before = [p.clone() for p in model.head.parameters()]
    optimizer = build_optimizer(model, lr=1e-2, head_lr=1e-2, weight_decay=0.0)
    batch = collate_pairs([[1, 2, 3]] * 8, [[4, 5]] * 8, 0, 1, a.numpy(), b.numpy())
    for _ in range(3):
        torch.nn.functional.cross_entropy(model(**batch), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    for key, value in model.prior.state_dict().items():
        assert torch.equal(value, prior_before[key])
    assert any(not torch.equal(p, q) for p, q in zip(model.head.parameters(), head_before))


def test_stats_prior_survives_a_checkpoint_round_trip():
    from arena_pref.checkpoint import model_from_checkpoint, model_payload

    model = tiny_model(n_side_stats=2, stats_prior=True)
    a, b, labels = length_voted_stats(40)
    model.fit_prior(a, b, labels)
    rebuilt = model_from_checkpoint(model_payload(model)).eval()
    assert rebuilt.spec() == model.spec() == {"head": "symmetric", "dropout": 0.0, "n_side_stats": 2,
                                              "stats_prior": True, "pooling": "mean"}
    batch = collate_pairs([[1, 2, 3], [4, 5]], [[6], [7, 8, 9]], 0, 1, a[:2].numpy(), b[:2].numpy())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(**batch), model(**batch))


def test_stats_prior_without_side_stats_is_refused():
    with pytest.raises(ValueError, match="needs side statistics"):
        tiny_model(stats_prior=True)


def test_prediction_includes_the_stats_prior_in_both_orders():
    """predict_pairs scores (a, b) and (b, a) from one encoder pass: both must include the prior."""
    from arena_pref.collate import PairColumns
    from arena_pref.infer import predict_pairs
    from arena_pref.precision import resolve_precision
    from helpers import pairs as random_pairs

    model = tiny_model(n_side_stats=2, stats_prior=True)
    a, b, labels = length_voted_stats(40)
    model.fit_prior(a, b, labels)
    rows = random_pairs(4)
    cpu = torch.device("cpu")
    predicted = predict_pairs(model, PairColumns(rows), 2, cpu, resolve_precision("fp32", cpu), 0, show_progress=False)
    a_stats, b_stats = np.stack(rows["a_stats"]), np.stack(rows["b_stats"])
    with torch.no_grad():
        forward = model(**collate_pairs(list(rows["a_ids"]), list(rows["b_ids"]), 0, 1, a_stats, b_stats))
        swapped = model(**collate_pairs(list(rows["b_ids"]), list(rows["a_ids"]), 0, 1, b_stats, a_stats))
    np.testing.assert_allclose(predicted.forward, torch.softmax(forward.double(), -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(predicted.swapped_back, torch.softmax(swapped.double(), -1).numpy()[:, [1, 0, 2]],
                               atol=1e-6)
    assert np.abs(predicted.forward - 1 / 3).max() > 0.01  # the head starts at zero: this is the prior


def test_attention_pool_learns_at_the_head_rate_and_survives_a_checkpoint_round_trip():
    from arena_pref.checkpoint import model_from_checkpoint, model_payload
    from arena_pref.loop import build_optimizer

    model = tiny_model(pooling="attention").train()
    optimizer = build_optimizer(model, lr=1e-3, head_lr=1e-2, weight_decay=0.0)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert rate[id(model.pool.score.weight)] == rate[id(model.pool.score.bias)] == 1e-2
    batch = collate_pairs([[1, 2, 3], [4, 5, 6, 7]], [[6], [7, 8, 9, 10]], pad_token_id=0)
    for _ in range(3):
        torch.nn.functional.cross_entropy(model(**batch), torch.tensor([0, 1])).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert model.pool.score.weight.abs().sum() > 0
    model.eval()
    rebuilt = model_from_checkpoint(model_payload(model)).eval()
    assert rebuilt.spec()["pooling"] == "attention"
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(**batch), model(**batch), rtol=0, atol=0)
