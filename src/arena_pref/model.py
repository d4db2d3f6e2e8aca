"""Siamese preference model: one shared encoder reads both sides, a head compares them.

forward(input_ids, attention_mask) takes the stacked batch from `collate_pairs` (2B rows: A sides then
B sides) and returns logits of shape (B, 3) in class order (A wins, B wins, tie).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .labels import N_CLASSES

# The stats prior's fit: an L2 weight that only keeps the optimum finite on separable folds, and
# enough L-BFGS iterations to converge on a dozen parameters.
PRIOR_L2 = 1.0e-4
PRIOR_MAX_ITER = 200
SPEC_KEYS = ("head", "dropout", "n_side_stats", "stats_prior", "pooling")
# Spec keys added after checkpoints and bundles were first written: their value for files that lack them.
SPEC_DEFAULTS = {"pooling": "mean"}


def spec_of(stored: dict) -> dict:
    """The model's constructor arguments (SPEC_KEYS) stored in a checkpoint or a bundle entry
    (`SiamesePreferenceModel.spec`)."""
    return {key: stored[key] if key in stored else SPEC_DEFAULTS[key] for key in SPEC_KEYS}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of token vectors over the mask: (N, L, H), (N, L) -> (N, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class MeanPool(nn.Module):
    """The average of the side's token vectors (how sentence-transformers encoders such as MiniLM were trained)."""

    def __init__(self, hidden_size: int):
        super().__init__()

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return mean_pool(hidden, attention_mask)


class FirstTokenPool(nn.Module):
    """The vector of the first token ([CLS]; sides are padded on the right, so it is always real)."""

    def __init__(self, hidden_size: int):
        super().__init__()

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return hidden[:, 0]


class AttentionPool(nn.Module):
    """A weighted average of the token vectors, the weights a softmax over the side's tokens of a learned
    score per token, so the head can look at the tokens that decide. The score starts at zero: before
    training the pool is exactly the mean pool, the encoder's pretrained one."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.score = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(hidden).squeeze(-1).masked_fill(attention_mask == 0, float("-inf"))
        return (scores.softmax(dim=-1).unsqueeze(-1) * hidden).sum(dim=1)


POOLINGS = {"mean": MeanPool, "cls": FirstTokenPool, "attention": AttentionPool}


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
                                 nn.Dropout(dropout), nn.Linear(hidden_size, N_CLASSES))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([a, b, a - b, a * b], dim=-1))


HEADS = {"symmetric": SymmetricHead, "concat": ConcatHead}


class StatsPrior(nn.Module):
    """A multinomial logistic regression on the two sides' statistics, in a form for which swapping A and
    B swaps the two win logits and keeps the tie logit: with d = a - b and s = a + b, the A logit is
    w.[d, |d|, s], the B logit w.[-d, |d|, s], the tie logit t.[|d|, s] + c.

    On 1.4k arena rows this regression on two length statistics alone scores a log loss of 1.044 in
    5-fold CV, where the fine-tuned network that reads the same statistics next to 384 pooled features
    scored 1.080: with a few hundred optimizer steps at a fine-tuning learning rate the network never
    learns the strongest signal of the task. So the prior is fitted first, by L-BFGS on the training
    fold (`fit`), then frozen, and the network learns what the text adds to it.
    """

    def __init__(self, n_stats: int):
        super().__init__()
        self.win = nn.Linear(3 * n_stats, 1, bias=False)
        self.tie = nn.Linear(2 * n_stats, 1)
        for parameter in self.parameters():
            nn.init.zeros_(parameter)
            parameter.requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d, s = a - b, a + b
        return torch.cat([self.win(torch.cat([d, d.abs(), s], dim=-1)), self.win(torch.cat([-d, d.abs(), s], dim=-1)),
                          self.tie(torch.cat([d.abs(), s], dim=-1))], dim=-1)

    def fit(self, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> None:
        """Maximum likelihood with a small L2 penalty (full-batch L-BFGS; the problem is convex)."""
        parameters = list(self.parameters())
        for parameter in parameters:
            parameter.requires_grad_(True)
        optimizer = torch.optim.LBFGS(parameters, max_iter=PRIOR_MAX_ITER, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(self(a, b), labels) + PRIOR_L2 * sum(p.square().sum() for p in parameters)
            loss.backward()
            return loss

        with torch.autocast(a.device.type, enabled=False):
            optimizer.step(closure)
        for parameter in parameters:
            parameter.requires_grad_(False)


class SiamesePreferenceModel(nn.Module):
    """Shared backbone + head. With `n_side_stats` > 0 each side's pooled vector is extended by that
    many statistics of the side (see `side_stats.side_stats`) before the head compares the two sides. With
    `stats_prior` the logits are the head's plus those of a `StatsPrior` on the same statistics, and the
    head's output layers start at zero, so an untrained model is exactly the prior."""

    def __init__(self, backbone: nn.Module, head: str, dropout: float, n_side_stats: int = 0,
                 stats_prior: bool = False, pooling: str = "mean", dropout_samples: int = 1):
        super().__init__()
        if stats_prior and not n_side_stats:
            raise ValueError("a stats prior needs side statistics (n_side_stats > 0)")
        self.backbone = backbone
        # to rebuild from a checkpoint
        self.head_name, self.dropout, self.n_side_stats, self.pooling = head, dropout, n_side_stats, pooling
        # Training only (multi-sample dropout): not in the spec, since a model in eval mode computes the
        # same function whatever its value.
        self.dropout_samples = dropout_samples
        self.head = HEADS[head](backbone.config.hidden_size + n_side_stats, dropout)
        self.prior = StatsPrior(n_side_stats) if stats_prior else None
        if stats_prior:
            for layer in self.head.modules():
                if isinstance(layer, nn.Linear) and layer.out_features <= N_CLASSES:  # the output layers
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)
        # After the head, so that the head's initial weights do not depend on the pooling.
        self.pool = POOLINGS[pooling](backbone.config.hidden_size)

    def spec(self) -> dict:
        """The constructor's arguments besides the backbone (SPEC_KEYS): what a checkpoint or bundle needs
        to rebuild it."""
        return dict(zip(SPEC_KEYS, (self.head_name, self.dropout, self.n_side_stats, self.prior is not None,
                                    self.pooling)))

    def encode_pairs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     side_stats: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One backbone pass over the stacked (2B, L) batch -> A and B side vectors, each (B, H + k)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # Pool in fp32: under fp16 autocast the sums over long sequences can overflow.
        pooled = self.pool(hidden.float(), attention_mask)
        if self.n_side_stats:
            pooled = torch.cat([pooled, self._checked_stats(side_stats, pooled.shape[0]).to(pooled)], dim=-1)
        return pooled.chunk(2, dim=0)

    def _checked_stats(self, side_stats: torch.Tensor | None, rows: int) -> torch.Tensor:
        if side_stats is None or side_stats.shape != (rows, self.n_side_stats):
            raise ValueError(f"model expects side_stats of shape ({rows}, {self.n_side_stats})")
        return side_stats

    def compare(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits (B, 3) of "a vs b" from two sides' vectors of `encode_pairs`; compare(b, a) scores the
        swapped pair without another backbone pass (TTA).

        In training with `dropout_samples` k > 1 the head's logits are the mean over k passes, each with its
        own dropout masks (multi-sample dropout): the head sees k noisy views of each pair for one backbone
        pass. In eval mode dropout is off and one pass gives the same logits."""
        passes = self.dropout_samples if self.training else 1
        logits = torch.stack([self.head(a, b) for _ in range(passes)]).mean(dim=0)
        if self.prior is None:
            return logits
        # The side statistics are the last n_side_stats entries of each side's vector.
        return logits + self.prior(a[:, -self.n_side_stats:], b[:, -self.n_side_stats:])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                side_stats: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, 3) for the stacked batch of `collate.collate_pairs`."""
        return self.compare(*self.encode_pairs(input_ids, attention_mask, side_stats))

    def fit_prior(self, a_stats: torch.Tensor, b_stats: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit the stats prior on training pairs' side statistics (B, k) each and labels (B,)."""
        self.prior.fit(self._checked_stats(a_stats, len(labels)).float(), b_stats.float(), labels)
