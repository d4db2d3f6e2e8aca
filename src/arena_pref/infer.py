"""Batched inference with swap test-time augmentation folded into the same backbone pass.

The swapped pair (B, A) has the same two side embeddings as (A, B), so TTA needs one extra *head*
call, not a second encoder pass: encode the 2B sides once, score compare(a, b) and compare(b, a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .collate import PairColumns, sorted_batches
from .model import SiamesePreferenceModel
from .checkpoint import load_checkpoint, model_from_checkpoint
from .labels import N_CLASSES
from .precision import Precision, autocast, resolve_device, resolve_precision
from .swap import swap_probs


@dataclass
class PairPredictions:
    """Probabilities of shape (n, 3), class order (A wins, B wins, tie), in input order.

    forward: the model read (A, B). swapped_back: the model read (B, A), columns mapped back to the
    original order. Their mean is the TTA prediction.
    """

    forward: np.ndarray
    swapped_back: np.ndarray

    @property
    def tta(self) -> np.ndarray:
        return (self.forward + self.swapped_back) / 2.0


def _softmax64(logits: torch.Tensor) -> np.ndarray:
    """Softmax in float64, so rows sum to 1 to machine precision (a float32 sum can be off by 1e-7)."""
    return torch.softmax(logits.double(), dim=-1).cpu().numpy()


@torch.no_grad()
def predict_pairs(model: SiamesePreferenceModel, pairs: PairColumns, batch_size: int, device: torch.device,
                  precision: Precision, pad_token_id: int, desc: str = "predict",
                  show_progress: bool = True) -> PairPredictions:
    """Predict every pair, longest first so memory peaks on the first batch, results in input order."""
    model.eval()
    forward = np.zeros((len(pairs), N_CLASSES), dtype=np.float64)
    swapped = np.zeros((len(pairs), N_CLASSES), dtype=np.float64)
    for index in tqdm(sorted_batches(pairs.lengths(), batch_size), desc=desc, unit="batch",
                      disable=not show_progress, leave=False):
        batch = {k: v.to(device) for k, v in pairs.batch(index, pad_token_id, precision.pad_to_multiple_of).items()}
        with autocast(precision, device):
            a, b = model.encode_pairs(**batch)
            logits_ab, logits_ba = model.compare(a, b), model.compare(b, a)
        forward[index] = _softmax64(logits_ab)
        swapped[index] = swap_probs(_softmax64(logits_ba))
    return PairPredictions(forward=forward, swapped_back=swapped)


def load_for_inference(checkpoint_path: str, device_name: str, precision_name: str):
    """(model on device, device, precision) for the checkpoint at `checkpoint_path`."""
    device = resolve_device(device_name)
    precision = resolve_precision(precision_name, device)
    model = model_from_checkpoint(load_checkpoint(checkpoint_path)).to(device)
    return model, device, precision
