"""The llm member in a bundle (arena_pref.members): each fold's adapters + head (safetensors, as the llm
stage wrote them), the tokenizer, and the settings to rebuild the classifier around them. The base
model's weights are NOT packed (gigabytes for 7-9B models): the bundle records llm.backbone (hub id,
directory or .gguf file) and the scorer loads it from there, so that path must exist where it scores."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .bundle import BundleError
from .folds import fold_dir

LLM_DIR, LLM_TOKENIZER_DIR = "llm", "llm_tokenizer"


class LlmPredictor:
    """The fold adapters of the llm member on one base model; predictions averaged over the folds, as the
    llm stage averages its test predictions."""

    inputs: tuple[str, ...] = ()  # reads no other member's probabilities

    def __init__(self, model, tokenizer, fold_states: list, entry: dict, device, precision, batch_size: int):
        self.model, self.tokenizer, self.fold_states, self.entry = model, tokenizer, fold_states, entry
        self.device, self.precision, self.batch_size = device, precision, batch_size

    def predict(self, rows: pd.DataFrame, show_progress: bool = False,
                given: dict[str, np.ndarray] | None = None) -> np.ndarray:
        from .llm_model import load_trainable_state, predict_judged
        from .llm_text import JudgeLayout, encode_judge_rows
        table = encode_judge_rows(rows.assign(fold=-1, label=-1), self.tokenizer, JudgeLayout(**self.entry["layout"]))
        fold_probs = []
        for state in self.fold_states:
            load_trainable_state(self.model, state)
            predictions = predict_judged(self.model, table, self.batch_size, self.device, self.precision,
                                         self.entry["pad_token_id"], self.entry["tta"], show_progress)
            fold_probs.append(predictions.tta)
        return np.mean(fold_probs, axis=0)


def export_llm(params, models_dir: Path, folds: list[int], staging: Path) -> dict:
    """Copy each fold's best adapters into the bundle (after checking they read back) and the tokenizer."""
    from .llm_model import load_adapters, load_llm_tokenizer
    from .llm_train import BEST, judge_layout

    (staging / LLM_DIR).mkdir(parents=True, exist_ok=True)
    for fold in folds:
        source = Path(fold_dir(str(models_dir), fold)) / BEST
        load_adapters(source)
        shutil.copyfile(source, staging / LLM_DIR / f"fold_{fold}.safetensors")
    tokenizer = load_llm_tokenizer(params.llm.backbone, params.llm.revision)
    tokenizer.save_pretrained(staging / LLM_TOKENIZER_DIR)
    return {"kind": "llm", "folds": list(folds), "llm": dataclasses.asdict(params.llm), "seed": params.base.seed,
            "pad_token_id": int(tokenizer.pad_token_id), "tta": params.llm.tta,
            "batch_size": params.llm.predict_batch_size, "precision": params.llm.precision,
            "layout": dataclasses.asdict(judge_layout(params.llm))}


def load_llm(root: Path, entry: dict, options) -> LlmPredictor:
    """Rebuild the classifier on the recorded base model and read every fold's adapters (no code runs)."""
    from transformers import AutoTokenizer

    from .llm_model import build_llm_classifier, load_adapters
    from .params import LlmParams
    from .precision import resolve_device, resolve_precision

    tokenizer_dir = root / LLM_TOKENIZER_DIR
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    except (OSError, ValueError) as err:
        raise BundleError(tokenizer_dir, f"cannot load the tokenizer: {err}") from None
    tokenizer.model_max_length = int(1e12)  # whole turns are tokenized, then cut to the budget
    settings = LlmParams(**entry["llm"])
    device = resolve_device(options.device)
    precision = resolve_precision(options.precision or entry["precision"], device)
    model = build_llm_classifier(settings, entry["seed"], device, precision).to(device)
    states = [load_adapters(root / LLM_DIR / f"fold_{fold}.safetensors")[0] for fold in entry["folds"]]
    return LlmPredictor(model, tokenizer, states, entry, device, precision, options.batch_size or entry["batch_size"])
