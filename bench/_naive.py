"""The naive baseline: the original-notebook recipe, written out on purpose (do not use in the pipeline).

  * every side padded to the maximum length (512), whatever its real length;
  * two backbone calls per batch (A sides, then B sides), then the head on the two pooled vectors;
  * fixed batches in input order, fp32, no length sorting;
  * test-time augmentation as a second full pass with A and B exchanged.

It uses the *weights* (backbone and head) of a SiamesePreferenceModel, so both recipes compute the
same function; only padding, batching and the number of passes differ (throughput.py checks the
logits). When the model appends side statistics to the pooled vectors (model.side_stats), so does this.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from arena_pref.labels import N_CLASSES


def pad_to_max(sides: Sequence[Sequence[int]], max_length: int, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of shape (n, max_length): every side padded to the same fixed length."""
    input_ids = torch.full((len(sides), max_length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sides), max_length), dtype=torch.long)
    for row, ids in enumerate(sides):
        ids = list(ids)[:max_length]
        input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, :len(ids)] = 1
    return input_ids, attention_mask


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).float()
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def embed(model, sides: Sequence[Sequence[int]], stats: np.ndarray | None, max_length: int,
          pad_token_id: int) -> torch.Tensor:
    """One backbone call over one side of the batch, padded to max_length, mean-pooled: (n, H [+ k])."""
    input_ids, attention_mask = pad_to_max(sides, max_length, pad_token_id)
    hidden = model.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    pooled = masked_mean(hidden, attention_mask)
    if getattr(model, "n_side_stats", 0):
        pooled = torch.cat([pooled, torch.as_tensor(stats, dtype=torch.float32)], dim=-1)
    return pooled


def naive_logits(model, a_sides, b_sides, a_stats, b_stats, max_length: int, pad_token_id: int) -> torch.Tensor:
    """Separate backbone passes for A and for B, then the same head: logits (n, 3)."""
    a = embed(model, a_sides, a_stats, max_length, pad_token_id)
    b = embed(model, b_sides, b_stats, max_length, pad_token_id)
    return model.compare(a, b)


def fixed_batches(n: int, batch_size: int) -> list[np.ndarray]:
    """Batches of row indices in input order."""
    return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def naive_train_step(model, optimizer, a_sides, b_sides, a_stats, b_stats, labels: torch.Tensor, max_length: int,
                     pad_token_id: int, max_grad_norm: float) -> float:
    """Forward (two backbone passes), backward, clip, AdamW step; returns the loss."""
    logits = naive_logits(model, a_sides, b_sides, a_stats, b_stats, max_length, pad_token_id)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


@torch.no_grad()
def naive_predict(model, a_ids: Sequence, b_ids: Sequence, a_stats: np.ndarray, b_stats: np.ndarray,
                  batch_size: int, max_length: int, pad_token_id: int) -> np.ndarray:
    """TTA probabilities (n, 3) in input order: pass 1 reads (A, B); pass 2, a second full pass, reads
    (B, A) and its A/B columns are swapped back; the two are averaged."""
    model.eval()
    n = len(a_ids)
    forward = np.zeros((n, N_CLASSES))
    swapped = np.zeros((n, N_CLASSES))
    for index in fixed_batches(n, batch_size):
        a, b = [a_ids[i] for i in index], [b_ids[i] for i in index]
        logits = naive_logits(model, a, b, a_stats[index], b_stats[index], max_length, pad_token_id)
        forward[index] = torch.softmax(logits.double(), -1).numpy()
    for index in fixed_batches(n, batch_size):
        a, b = [a_ids[i] for i in index], [b_ids[i] for i in index]
        logits = naive_logits(model, b, a, b_stats[index], a_stats[index], max_length, pad_token_id)
        swapped[index] = torch.softmax(logits.double(), -1).numpy()[:, [1, 0, 2]]
    return (forward + swapped) / 2.0
