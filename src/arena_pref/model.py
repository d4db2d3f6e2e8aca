"""Siamese preference model: one shared encoder reads both sides, a head compares them.

forward(input_ids, attention_mask) takes the stacked batch from `collate_pairs` (2B rows: A sides then
B sides) and returns logits of shape (B, 3) in class order (A wins, B wins, tie).
"""

from __future__ import annotations

import torch
from torch import nn


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of token vectors over the mask: (N, L, H), (N, L) -> (N, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def _mlp(in_features: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(hidden, 1))


class SymmetricHead(nn.Module):
    """Head for which swapping A and B swaps the two win logits and keeps the tie logit.

    win(x, y) scores "x beats y" from [x, y, x - y, x * y]; the A logit is win(a, b), the B logit
    win(b, a). The tie logit reads only symmetric features [a + b, |a - b|, a * b]. Position bias is
    thus impossible by construction rather than something swap augmentation has to train away.
    """

    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        self.win = _mlp(4 * hidden_size, hidden_size, dropout)
        self.tie = _mlp(3 * hidden_size, hidden_size, dropout)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        win_a = self.win(torch.cat([a, b, a - b, a * b], dim=-1))
        win_b = self.win(torch.cat([b, a, b - a, a * b], dim=-1))
        tie = self.tie(torch.cat([a + b, (a - b).abs(), a * b], dim=-1))
        return torch.cat([win_a, win_b, tie], dim=-1)


class ConcatHead(nn.Module):
    """Plain MLP on [a, b, a - b, a * b] -> 3 logits; can learn a position bias (measure the flip rate)."""

    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden_size, hidden_size), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden_size, 3))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([a, b, a - b, a * b], dim=-1))


HEADS = {"symmetric": SymmetricHead, "concat": ConcatHead}


class SiamesePreferenceModel(nn.Module):
    """Shared backbone + head. With `n_side_stats` > 0 each side's pooled vector is extended by that
    many statistics of the side (see `encode.side_stats`) before the head compares the two sides."""

    def __init__(self, backbone: nn.Module, head: str, dropout: float, n_side_stats: int = 0):
        super().__init__()
        self.backbone = backbone
        self.head_name, self.dropout, self.n_side_stats = head, dropout, n_side_stats  # to rebuild from a checkpoint
        self.head = HEADS[head](backbone.config.hidden_size + n_side_stats, dropout)

    def encode_pairs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     side_stats: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One backbone pass over the stacked (2B, L) batch -> A and B side vectors, each (B, H + k)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # Pool in fp32: under fp16 autocast the sums over long sequences can overflow.
        pooled = mean_pool(hidden.float(), attention_mask)
        if self.n_side_stats:
            if side_stats is None or side_stats.shape != (pooled.shape[0], self.n_side_stats):
                raise ValueError(f"model expects side_stats of shape ({pooled.shape[0]}, {self.n_side_stats})")
            pooled = torch.cat([pooled, side_stats.to(pooled)], dim=-1)
        return pooled.chunk(2, dim=0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                side_stats: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, 3) for the stacked batch of `collate.collate_pairs`."""
        return self.head(*self.encode_pairs(input_ids, attention_mask, side_stats))
