"""Typed, validated view of params.yaml: the only home of tunable values.

Every stage calls `load_params()` and reads the section it needs. Unknown or missing keys are errors,
so a typo in `dvc exp run -S train.lr=...` fails loudly instead of being ignored.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError


class ParamsError(InputError):
    """params.yaml is missing a key, has an unknown key, or holds a value out of range."""


@dataclass(frozen=True)
class BaseParams:
    seed: int


@dataclass(frozen=True)
class DataParams:
    train_csv: str  # local path or http(s) URL of a Kaggle-schema train.csv
    train_sha256: str  # expected SHA-256 of train_csv's bytes (64 hex digits), "" = no check
    test_csv: str  # local path or http(s) URL of a Kaggle-schema test.csv
    extra_train_csvs: list[str]  # more labelled Kaggle-schema CSVs, added to the training folds only


@dataclass(frozen=True)
class PrepareParams:
    n_folds: int
    seed: int


@dataclass(frozen=True)
class FeaturizeParams:
    max_tokens_per_side: int
    prompt_share: float
    head_share: float
    swap_train: bool


@dataclass(frozen=True)
class ModelParams:
    backbone: str  # Hugging Face hub id or local directory
    revision: str
    head: str  # "symmetric" or "concat"
    pooling: str  # how a side's token vectors become one vector: mean, cls or attention (model.POOLINGS)
    dropout: float
    dropout_samples: int  # head passes per training step, each with its own dropout masks, logits averaged; 1 = off
    attention_dropout: float  # dropout on the backbone's attention probabilities
    side_stats: bool  # append each side's answer length statistics to its pooled vector
    stats_prior: bool  # add a logistic regression on those statistics, fitted on the training fold (model.StatsPrior)
    teacher_prior: bool  # the statistics also carry the teacher's out-of-fold log-probabilities (arena_pref.teacher_prior)


@dataclass(frozen=True)
class TrainParams:
    fold: int  # validation fold, or -1 for every fold (k-fold cross-validation)
    epochs: int
    batch_size: int
    grad_accum_steps: int
    lr: float
    head_lr: float
    layer_lr_decay: float  # backbone lr multiplier per layer below the top one (loop.build_optimizer); 1 = off
    ema_decay: float  # validate and keep an exponential moving average of the weights (loop.weight_average); 0 = off
    freeze_layers: int  # the backbone's lowest layers kept at their pretrained weights (loop.freeze_bottom_layers); 0 = off
    soft_target_weight: float  # share of the fast members' nested out-of-fold probabilities in the targets (arena_pref.teacher); 0 = off
    weight_decay: float
    warmup_ratio: float
    max_grad_norm: float
    precision: str
    eval_every_steps: int
    device: str
    resume: bool  # continue from models/last.pt after a kill, when it belongs to the same run
    nproc_per_node: int  # processes torchrun starts for the train stage (one per GPU)


@dataclass(frozen=True)
class GbdtParams:
    """The feature model's HistGradientBoostingClassifier (arena_pref.gbdt). The values in params.yaml
    were chosen by 5-fold CV on 1.4k labelled rows (about 1.1k training rows per fold, 2.2k with the
    swapped copies): 4-leaf trees, a low learning rate, and about 200 rounds, where the validation log
    loss is flat (175-250) before it starts to rise."""

    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int  # counts the swapped copies too: 50 is about 25 original pairs
    l2_regularization: float


@dataclass(frozen=True)
class TfidfParams:
    """The text model (arena_pref.tfidf); params.yaml's values were chosen by 5-fold CV on the 1.4k rows
    of data/sample (docs/results.md)."""

    analyzer: str
    ngram_min: int
    ngram_max: int
    min_df: int
    max_features: int
    C: float  # inverse L2 strength of the logistic regression


@dataclass(frozen=True)
class EnsembleParams:
    temperature: bool  # rescale the blended log-probabilities by a fitted temperature


@dataclass(frozen=True)
class BiasParams:
    length_ratio_edges: list[float]  # upper edges of the report's length-ratio bins (> 1, increasing)
    tie_calibration_bins: int
    blend_ratio_edges: list[float]  # upper edges of the length-conditioned blend's bins (> 1, increasing)


@dataclass(frozen=True)
class LlmParams:
    """The decoder-LLM cross-encoder member (src/train_llm.py, docs/llm.md)."""

    enabled: bool  # false: the llm stage writes empty outputs in a second and the ensemble leaves it out
    backbone: str  # Hugging Face hub id, local directory, or a .gguf file (loaded dequantized)
    revision: str
    max_tokens: int  # whole sequence: template, then prompt and both answers of every kept round
    prompt_share: float  # of each round's budget at most this much for the prompt; A and B split the rest
    truncation: str  # "middle" (keep head_share from the start and the rest from the end) or "left" (keep the end)
    head_share: float
    min_round_tokens: int  # an earlier round is kept only when at least this many tokens are left for it
    swap_train: bool  # train on each pair and its A/B-swapped copy
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    lora_target_modules: list[str]
    quantization: str  # "none", "4bit" or "8bit" (CUDA + the optional bitsandbytes package)
    base_dtype: str  # dtype of the frozen base weights: fp32, bf16 or fp16 (adapters and head stay fp32)
    gradient_checkpointing: bool
    epochs: int
    batch_size: int
    grad_accum_steps: int
    lr: float  # LoRA adapters
    head_lr: float  # the 3-way head
    weight_decay: float
    warmup_ratio: float
    max_grad_norm: float
    precision: str
    eval_every_steps: int
    device: str
    resume: bool
    nproc_per_node: int
    tta: bool  # average each prediction with that of the swapped pair
    predict_batch_size: int


@dataclass(frozen=True)
class EvaluateParams:
    tta: bool
    batch_size: int
    calibration_bins: int


@dataclass(frozen=True)
class PredictParams:
    tta: bool
    batch_size: int


@dataclass(frozen=True)
class Params:
    base: BaseParams
    data: DataParams
    prepare: PrepareParams
    featurize: FeaturizeParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    predict: PredictParams
    gbdt: GbdtParams
    tfidf: TfidfParams
    ensemble: EnsembleParams
    llm: LlmParams
    bias: BiasParams


PRECISIONS = ("auto", "fp16", "bf16", "fp32")
HEADS = ("symmetric", "concat")  # model.HEADS
POOLINGS = ("mean", "cls", "attention")  # model.POOLINGS
DEVICES = ("auto", "cpu", "cuda")
TFIDF_ANALYZERS = ("char_wb", "char", "word")
LLM_TRUNCATIONS = ("middle", "left")
LLM_QUANTIZATIONS = ("none", "4bit", "8bit")
LLM_BASE_DTYPES = ("fp32", "bf16", "fp16")


def _build_section(cls: type, name: str, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: section '{name}' must be a mapping, got {type(raw).__name__}")
    fields = typing.get_type_hints(cls)
    missing = sorted(set(fields) - set(raw))
    unknown = sorted(set(raw) - set(fields))
    if missing:
        raise ParamsError(f"params.yaml: section '{name}' is missing {', '.join(missing)}")
    if unknown:
        raise ParamsError(f"params.yaml: section '{name}' has unknown key(s) {', '.join(unknown)}")
    values = {}
    for key, field_type in fields.items():
        values[key] = _coerce(f"{name}.{key}", field_type, raw[key])
    return cls(**values)


# String params where "" means "not set".
MAY_BE_EMPTY = {"data.train_sha256"}


def _coerce(key: str, field_type: type, value: Any) -> Any:
    if typing.get_origin(field_type) is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ParamsError(f"params.yaml: {key} must be a list, got {value!r}")
        (item_type,) = typing.get_args(field_type)
        return [_coerce(f"{key}[{i}]", item_type, item) for i, item in enumerate(value)]
    if field_type is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: {key} must be true or false, got {value!r}")
        return value
    if field_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params.yaml: {key} must be an integer, got {value!r}")
        return value
    if field_type is float:
        # PyYAML reads `2e-5` (no dot) as a string, and `dvc exp run -S train.lr=1.0e-5` writes exactly
        # that form (`1e-05`) into params.yaml; accept numeric strings rather than reject DVC's own output.
        try:
            number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            raise ParamsError(f"params.yaml: {key} must be a finite number, got {value!r}")
        return number
    if field_type is str:
        if not isinstance(value, str) or (not value and key not in MAY_BE_EMPTY):
            raise ParamsError(f"params.yaml: {key} must be a non-empty string, got {value!r}")
        return value
    raise AssertionError(f"unhandled param type {field_type} for {key}")


def _ratio_edges_ok(edges: list[float]) -> bool:
    """Bin edges of a length ratio (>= 1 by construction): each > 1, strictly increasing; [] is one bin."""
    return all(e > 1.0 for e in edges) and all(lo < hi for lo, hi in zip(edges, edges[1:]))


def _llm_checks(m: LlmParams) -> list[tuple[bool, str]]:
    return [
        (m.max_tokens >= 32, "llm.max_tokens must be >= 32"),
        (0.0 <= m.prompt_share <= 1.0 and 0.0 <= m.head_share <= 1.0, "llm.prompt_share and llm.head_share must be in [0, 1]"),
        (m.truncation in LLM_TRUNCATIONS, f"llm.truncation must be one of {LLM_TRUNCATIONS}"),
        (m.min_round_tokens >= 0, "llm.min_round_tokens must be >= 0"),
        (m.lora_r >= 1 and m.lora_alpha > 0, "llm.lora_r must be >= 1 and llm.lora_alpha > 0"),
        (0.0 <= m.lora_dropout < 1.0, "llm.lora_dropout must be in [0, 1)"),
        (len(m.lora_target_modules) >= 1, "llm.lora_target_modules must name at least one module"),
        (m.quantization in LLM_QUANTIZATIONS, f"llm.quantization must be one of {LLM_QUANTIZATIONS}"),
        (m.base_dtype in LLM_BASE_DTYPES, f"llm.base_dtype must be one of {LLM_BASE_DTYPES}"),
        (m.epochs >= 1 and m.batch_size >= 1 and m.grad_accum_steps >= 1 and m.predict_batch_size >= 1,
         "llm.epochs, llm.batch_size, llm.grad_accum_steps and llm.predict_batch_size must be >= 1"),
        (m.lr > 0 and m.head_lr > 0 and m.weight_decay >= 0 and m.max_grad_norm > 0,
         "llm.lr, llm.head_lr and llm.max_grad_norm must be > 0, llm.weight_decay >= 0"),
        (0.0 <= m.warmup_ratio < 1.0, "llm.warmup_ratio must be in [0, 1)"),
        (m.precision in PRECISIONS, f"llm.precision must be one of {PRECISIONS}"),
        (m.device in DEVICES, f"llm.device must be one of {DEVICES}"),
        (m.eval_every_steps >= 0 and m.nproc_per_node >= 1,
         "llm.eval_every_steps must be >= 0 and llm.nproc_per_node >= 1"),
    ]


def _check_ranges(p: Params) -> None:
    checks = [
        (re.fullmatch(r"([0-9a-fA-F]{64})?", p.data.train_sha256) is not None,
         "data.train_sha256 must be empty or 64 hexadecimal digits (the output of `sha256sum FILE`)"),
        (p.prepare.n_folds >= 2, "prepare.n_folds must be >= 2"),
        (p.featurize.max_tokens_per_side >= 8, "featurize.max_tokens_per_side must be >= 8"),
        (0.0 <= p.featurize.prompt_share <= 1.0, "featurize.prompt_share must be in [0, 1]"),
        (0.0 <= p.featurize.head_share <= 1.0, "featurize.head_share must be in [0, 1]"),
        (p.model.head in HEADS, f"model.head must be one of {HEADS}"),
        (p.model.pooling in POOLINGS, f"model.pooling must be one of {POOLINGS}"),
        (0.0 <= p.model.dropout < 1.0, "model.dropout must be in [0, 1)"),
        (p.model.dropout_samples >= 1, "model.dropout_samples must be >= 1"),
        (0.0 <= p.model.attention_dropout < 1.0, "model.attention_dropout must be in [0, 1)"),
        (p.model.side_stats or not p.model.stats_prior, "model.stats_prior needs model.side_stats: true"),
        (p.model.stats_prior or not p.model.teacher_prior, "model.teacher_prior needs model.stats_prior: true"),
        (not (p.model.teacher_prior and p.data.extra_train_csvs),
         "model.teacher_prior cannot train on data.extra_train_csvs: extra rows have no out-of-fold teacher "
         "probabilities"),
        (-1 <= p.train.fold < p.prepare.n_folds, "train.fold must be -1 (all folds) or in [0, prepare.n_folds)"),
        (p.train.epochs >= 1, "train.epochs must be >= 1"),
        (p.train.batch_size >= 1, "train.batch_size must be >= 1"),
        (p.train.grad_accum_steps >= 1, "train.grad_accum_steps must be >= 1"),
        (p.train.lr > 0 and p.train.head_lr > 0, "train.lr and train.head_lr must be > 0"),
        (0.0 < p.train.layer_lr_decay <= 1.0, "train.layer_lr_decay must be in (0, 1] (1 = the same rate for every layer)"),
        (0.0 <= p.train.ema_decay < 1.0, "train.ema_decay must be in [0, 1) (0 = no weight averaging)"),
        (p.train.freeze_layers >= 0, "train.freeze_layers must be >= 0 (0 = the whole backbone learns)"),
        (0.0 <= p.train.soft_target_weight < 1.0,
         "train.soft_target_weight must be in [0, 1) (0 = the human labels alone)"),
        (p.train.weight_decay >= 0, "train.weight_decay must be >= 0"),
        (0.0 <= p.train.warmup_ratio < 1.0, "train.warmup_ratio must be in [0, 1)"),
        (p.train.max_grad_norm > 0, "train.max_grad_norm must be > 0"),
        (p.train.precision in PRECISIONS, f"train.precision must be one of {PRECISIONS}"),
        (p.train.eval_every_steps >= 0, "train.eval_every_steps must be >= 0 (0 = epoch ends only)"),
        (p.train.device in DEVICES, f"train.device must be one of {DEVICES}"),
        (p.train.nproc_per_node >= 1, "train.nproc_per_node must be >= 1"),
        (p.evaluate.batch_size >= 1 and p.predict.batch_size >= 1, "batch sizes must be >= 1"),
        (p.evaluate.calibration_bins >= 2, "evaluate.calibration_bins must be >= 2"),
        (p.gbdt.learning_rate > 0 and p.gbdt.max_iter >= 1, "gbdt.learning_rate must be > 0, gbdt.max_iter >= 1"),
        (p.gbdt.max_leaf_nodes >= 2 and p.gbdt.min_samples_leaf >= 1,
         "gbdt.max_leaf_nodes must be >= 2, gbdt.min_samples_leaf >= 1"),
        (p.gbdt.l2_regularization >= 0, "gbdt.l2_regularization must be >= 0"),
        (p.tfidf.analyzer in TFIDF_ANALYZERS, f"tfidf.analyzer must be one of {TFIDF_ANALYZERS}"),
        (1 <= p.tfidf.ngram_min <= p.tfidf.ngram_max, "tfidf.ngram_min and tfidf.ngram_max: need 1 <= min <= max"),
        (p.tfidf.min_df >= 1 and p.tfidf.max_features >= 1, "tfidf.min_df and tfidf.max_features must be >= 1"),
        (p.tfidf.C > 0, "tfidf.C must be > 0"),
        *_llm_checks(p.llm),
        (_ratio_edges_ok(p.bias.length_ratio_edges), "bias.length_ratio_edges must be increasing, each > 1"),
        (_ratio_edges_ok(p.bias.blend_ratio_edges), "bias.blend_ratio_edges must be increasing, each > 1"),
        (p.bias.tie_calibration_bins >= 2, "bias.tie_calibration_bins must be >= 2"),
    ]
    for ok, message in checks:
        if not ok:
            raise ParamsError(f"params.yaml: {message}")


def parse_params(raw: dict) -> Params:
    """Build and validate `Params` from the parsed YAML mapping."""
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml must be a mapping of sections")
    section_types = typing.get_type_hints(Params)
    unknown = sorted(set(raw) - set(section_types))
    if unknown:
        raise ParamsError(f"params.yaml: unknown section(s) {', '.join(unknown)}")
    built = {}
    for name in section_types:
        if name not in raw:
            raise ParamsError(f"params.yaml: missing section '{name}'")
        built[name] = _build_section(section_types[name], name, raw[name])
    params = Params(**built)
    _check_ranges(params)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (DVC runs stages from the repository root)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run the stages from the repository root (dvc repro does)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw)
