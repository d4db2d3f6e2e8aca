"""Batching and padding of pairs (arena_pref.collate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena_pref.collate import (
    SORT_WINDOW_BATCHES,
    collate_pairs,
    length_grouped_batches,
    pair_lengths,
    sorted_batches,
)


def test_pair_lengths_exact():
    out = pair_lengths([[1, 2, 3], [1], []], [[1], [1, 2], []])
    np.testing.assert_array_equal(out, [3, 2, 0])
    assert out.dtype == np.int64


def test_pair_lengths_numpy_sides():
    out = pair_lengths([np.arange(5)], [np.arange(7)])
    np.testing.assert_array_equal(out, [7])


# ------------------------------------------------------------------------------ length_grouped_batches

def test_length_grouped_batches_single_window_exact_groups():
    lengths = np.array([5, 1, 4, 2, 3])
    batches = length_grouped_batches(lengths, batch_size=2, seed=0)
    # One window: sorted longest first (5, 4 | 3, 2 | 1), then the batches are shuffled.
    assert sorted(b.tolist() for b in batches) == [[0, 2], [1], [4, 3]]


def _check_covers_once(batches, n):
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(n))


@pytest.mark.parametrize("n, batch_size", [(1, 4), (7, 3), (100, 16), (1000, 7), (2000, 16)])
def test_length_grouped_batches_every_index_once_and_sizes(n, batch_size):
    lengths = np.random.default_rng(n).integers(1, 3000, size=n)
    batches = length_grouped_batches(lengths, batch_size, seed=3)
    _check_covers_once(batches, n)
    assert all(1 <= len(b) <= batch_size for b in batches)
    # Only the last batch of each window may be short.
    window = batch_size * SORT_WINDOW_BATCHES
    windows = [min(window, n - start) for start in range(0, n, window)]
    assert len(batches) == sum(-(-w // batch_size) for w in windows)
    assert sum(len(b) < batch_size for b in batches) == sum(w % batch_size != 0 for w in windows)


def test_length_grouped_batches_exact_short_batch_count():
    # window = 7 * 64 = 448 rows: windows of 448, 448 and 104 rows; 104 = 14 * 7 + 6.
    batches = length_grouped_batches(np.arange(1000), 7, seed=0)
    assert len(batches) == 64 + 64 + 15
    assert sorted(len(b) for b in batches)[:2] == [6, 7]


def test_length_grouped_batches_each_window_sorted():
    n, batch_size, seed = 1000, 5, 11
    lengths = np.random.default_rng(1).permutation(n) + 1  # distinct lengths
    batches = length_grouped_batches(lengths, batch_size, seed)
    # Rebuild the windows from the same generator: the first permutation the function draws.
    order = np.random.default_rng(seed).permutation(n)
    window = batch_size * SORT_WINDOW_BATCHES
    for start in range(0, n, window):
        members = set(order[start:start + window].tolist())
        in_window = [b for b in batches if set(b.tolist()) <= members]
        assert sum(len(b) for b in in_window) == len(members)  # no batch straddles two windows
        # Longest first within each batch, and batches of a window do not interleave in length.
        for b in in_window:
            assert np.all(np.diff(lengths[b]) <= 0)
        spans = sorted(((lengths[b].min(), lengths[b].max()) for b in in_window), reverse=True)
        for (low, _), (_, next_high) in zip(spans, spans[1:]):
            assert next_high < low


def test_length_grouped_batches_deterministic_per_seed():
    lengths = np.random.default_rng(0).integers(1, 500, size=300)
    first = length_grouped_batches(lengths, 8, seed=5)
    again = length_grouped_batches(lengths, 8, seed=5)
    other = length_grouped_batches(lengths, 8, seed=6)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


def test_length_grouped_batches_batch_order_is_shuffled():
    # 2000 rows, 16 per batch: with sorted order kept, batch maxima would be non-increasing per window.
    lengths = np.arange(2000)
    batches = length_grouped_batches(lengths, 16, seed=0)
    maxima = [lengths[b].max() for b in batches]
    assert maxima != sorted(maxima, reverse=True)


def test_length_grouped_batches_empty():
    assert length_grouped_batches(np.array([], dtype=np.int64), 4, seed=0) == []


# ------------------------------------------------------------------------------------- sorted_batches

def test_sorted_batches_exact_longest_first_ties_stable():
    batches = sorted_batches(np.array([3, 9, 1, 9, 5]), 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def test_sorted_batches_covers_every_index_once():
    lengths = np.random.default_rng(2).integers(0, 100, size=53)
    batches = sorted_batches(lengths, 10)
    assert [len(b) for b in batches] == [10, 10, 10, 10, 10, 3]
    _check_covers_once(batches, 53)
    flat = lengths[np.concatenate(batches)]
    assert np.all(np.diff(flat) <= 0)


# -------------------------------------------------------------------------------------- collate_pairs

def test_collate_pairs_docstring_example():
    out = collate_pairs([[5, 6, 7]], [[8]], pad_token_id=0)
    assert torch.equal(out["input_ids"], torch.tensor([[5, 6, 7], [8, 0, 0]]))
    assert torch.equal(out["attention_mask"], torch.tensor([[1, 1, 1], [1, 0, 0]]))


def test_collate_pairs_exact_a_sides_then_b_sides():
    out = collate_pairs([[5, 6, 7], [9]], [[8], [1, 2, 3, 4]], pad_token_id=3)
    assert set(out) == {"input_ids", "attention_mask"}
    assert torch.equal(out["input_ids"], torch.tensor([
        [5, 6, 7, 3],
        [9, 3, 3, 3],
        [8, 3, 3, 3],
        [1, 2, 3, 4],
    ]))
    # The last row holds a real token equal to the pad id: the mask, not the id, marks padding.
    assert torch.equal(out["attention_mask"], torch.tensor([
        [1, 1, 1, 0],
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [1, 1, 1, 1],
    ]))
    assert out["input_ids"].dtype == torch.long and out["attention_mask"].dtype == torch.long


def test_collate_pairs_pad_to_multiple_of_8():
    out = collate_pairs([[5, 6, 7]], [[8]], pad_token_id=0, pad_to_multiple_of=8)
    assert torch.equal(out["input_ids"], torch.tensor([
        [5, 6, 7, 0, 0, 0, 0, 0],
        [8, 0, 0, 0, 0, 0, 0, 0],
    ]))
    assert torch.equal(out["attention_mask"], torch.tensor([
        [1, 1, 1, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0, 0],
    ]))


@pytest.mark.parametrize("longest, multiple, expected", [(8, 8, 8), (9, 8, 16), (1, 8, 8), (5, 1, 5), (6, 4, 8)])
def test_collate_pairs_rounded_length(longest, multiple, expected):
    out = collate_pairs([list(range(1, longest + 1))], [[1]], pad_token_id=0, pad_to_multiple_of=multiple)
    assert tuple(out["input_ids"].shape) == (2, expected)
    assert out["attention_mask"].sum().item() == longest + 1


def test_collate_pairs_numpy_inputs_and_empty_side():
    out = collate_pairs([np.array([4, 5], dtype=np.int32)], [np.array([], dtype=np.int64)], pad_token_id=0)
    assert torch.equal(out["input_ids"], torch.tensor([[4, 5], [0, 0]]))
    assert torch.equal(out["attention_mask"], torch.tensor([[1, 1], [0, 0]]))


def test_collate_pairs_stacks_side_stats_a_then_b():
    a_stats = np.array([[1.0, 2.0]], dtype=np.float32)
    b_stats = np.array([[3.0, 4.0]], dtype=np.float32)
    out = collate_pairs([[5]], [[6, 7]], 0, 1, a_stats, b_stats)
    assert torch.equal(out["side_stats"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
