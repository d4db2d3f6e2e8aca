import numpy as np
import pytest
import torch

from arena_pref.collate import collate_pairs
from arena_pref.model import ConcatHead, SymmetricHead, mean_pool
from helpers import tiny_model


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


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
