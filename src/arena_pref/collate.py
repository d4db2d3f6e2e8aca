"""Batches of pairs: which pairs go together, and how they become padded tensors.

Padding waste is the main cost of encoder training on these texts (answers range from a few tokens to
thousands, and attention cost grows with the square of the padded length), so batches hold pairs of
similar length and are padded only to their own longest side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

# Pairs sorted together when grouping by length: large enough that neighbours have similar lengths,
# small enough that batch composition still changes from epoch to epoch.
SORT_WINDOW_BATCHES = 64


def pair_lengths(a_ids: Sequence, b_ids: Sequence) -> np.ndarray:
    """Padded length each pair needs: the longer of its two sides."""
    return np.asarray([max(len(a), len(b)) for a, b in zip(a_ids, b_ids)], dtype=np.int64)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Training batches (arrays of row indices) of similar length, in random order.

    Shuffle all rows, sort each window of SORT_WINDOW_BATCHES * batch_size rows by length, cut it into
    batches, then shuffle the batches. Every index appears exactly once; the last batch may be short.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * SORT_WINDOW_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Inference batches: all rows sorted longest first (a too-large batch fails on the first one)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad_right(sequences: Sequence[Sequence[int]], pad_token_id: int, pad_to_multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """input_ids and attention_mask of shape (N, L): each sequence left-aligned, padded on the right to
    L = the longest rounded up to `pad_to_multiple_of`. Right padding suits decoders too: causal attention
    keeps real tokens from ever seeing the pads after them.

    Example: [[5, 6, 7], [8]], pad_token_id=0 gives input_ids [[5, 6, 7], [8, 0, 0]], attention_mask
    [[1, 1, 1], [1, 0, 0]].
    """
    longest = max(len(s) for s in sequences)
    length = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, ids in enumerate(sequences):
        # torch.tensor copies: ids read back from parquet are read-only arrays, which as_tensor warns about.
        input_ids[row, :len(ids)] = torch.tensor(np.asarray(ids), dtype=torch.long)
        attention_mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def collate_pairs(a_ids: Sequence[Sequence[int]], b_ids: Sequence[Sequence[int]], pad_token_id: int,
                  pad_to_multiple_of: int = 1, a_stats: np.ndarray | None = None,
                  b_stats: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Stack both sides of B pairs into one padded batch for a single backbone pass.

    Returns input_ids and attention_mask of shape (2B, L): rows 0..B-1 are the A sides, rows B..2B-1
    the B sides, L = longest side rounded up to `pad_to_multiple_of` (8 suits tensor cores on GPU).
    With side statistics (a_stats, b_stats: (B, k) arrays) also side_stats of shape (2B, k), same order.

    Example: a_ids=[[5, 6, 7]], b_ids=[[8]], pad_token_id=0 gives
        input_ids      = [[5, 6, 7], [8, 0, 0]]
        attention_mask = [[1, 1, 1], [1, 0, 0]]
    """
    batch = pad_right(list(a_ids) + list(b_ids), pad_token_id, pad_to_multiple_of)
    if a_stats is not None and b_stats is not None:
        batch["side_stats"] = torch.as_tensor(np.concatenate([a_stats, b_stats]), dtype=torch.float32)
    return batch


class PairColumns:
    """Featurized pairs (a DataFrame with a_ids, b_ids, a_stats, b_stats) held as Python lists and
    arrays, so that building a batch indexes memory instead of pandas rows."""

    def __init__(self, pairs: pd.DataFrame):
        self.a_ids, self.b_ids = list(pairs["a_ids"]), list(pairs["b_ids"])
        self.a_stats = np.stack(pairs["a_stats"].to_numpy()).astype(np.float32)
        self.b_stats = np.stack(pairs["b_stats"].to_numpy()).astype(np.float32)

    def __len__(self) -> int:
        return len(self.a_ids)

    def lengths(self) -> np.ndarray:
        return pair_lengths(self.a_ids, self.b_ids)

    def batch(self, index: np.ndarray, pad_token_id: int, pad_to_multiple_of: int) -> dict[str, torch.Tensor]:
        """The collated batch (see `collate_pairs`) of the pairs at positions `index`."""
        return collate_pairs([self.a_ids[i] for i in index], [self.b_ids[i] for i in index], pad_token_id,
                             pad_to_multiple_of, self.a_stats[index], self.b_stats[index])


class SequenceColumns:
    """One token sequence per pair (the LLM member's judge sequences, column `column` of `pairs`), with
    the interface of `PairColumns` that the training loop and batched inference use."""

    def __init__(self, pairs: pd.DataFrame, column: str = "ids"):
        self.ids = list(pairs[column])

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return np.asarray([len(s) for s in self.ids], dtype=np.int64)

    def batch(self, index: np.ndarray, pad_token_id: int, pad_to_multiple_of: int) -> dict[str, torch.Tensor]:
        """input_ids and attention_mask (see `pad_right`) of the sequences at positions `index`."""
        return pad_right([self.ids[i] for i in index], pad_token_id, pad_to_multiple_of)
