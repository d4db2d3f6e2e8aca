"""Builders shared by several test modules: a tiny random siamese model, random featurized pairs and train
params. (Fixtures that need pytest's machinery live in conftest.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import DebertaV2Config, DebertaV2Model

from arena_pref.model import SiamesePreferenceModel
from arena_pref.params import TrainParams


def tiny_model(head="symmetric", seed=0, n_side_stats=0, stats_prior=False, pooling="mean", dropout=0.0,
               dropout_samples=1):
    torch.manual_seed(seed)
    config = DebertaV2Config(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=64, relative_attention=True,
                             position_buckets=16, pos_att_type=["p2c", "c2p"], position_biased_input=False)
    return SiamesePreferenceModel(DebertaV2Model(config), head, dropout=dropout, n_side_stats=n_side_stats,
                                  stats_prior=stats_prior, pooling=pooling, dropout_samples=dropout_samples).eval()


def params(**overrides) -> TrainParams:
    values = dict(fold=0, epochs=1, batch_size=2, grad_accum_steps=2, lr=1.0e-3, head_lr=1.0e-2, layer_lr_decay=1.0,
                  ema_decay=0.0, freeze_layers=0, soft_target_weight=0.0,
                  weight_decay=0.01, warmup_ratio=0.0, max_grad_norm=1.0, precision="fp32",
                  eval_every_steps=0, device="cpu", resume=False, nproc_per_node=1)
    return TrainParams(**(values | overrides))


def pairs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [str(i) for i in range(n)],
        "label": rng.integers(0, 3, n),
        "a_ids": [rng.integers(1, 50, rng.integers(3, 9)) for _ in range(n)],
        "b_ids": [rng.integers(1, 50, rng.integers(3, 9)) for _ in range(n)],
        "a_stats": list(rng.random((n, 2), dtype=np.float32)),
        "b_stats": list(rng.random((n, 2), dtype=np.float32)),
    })
