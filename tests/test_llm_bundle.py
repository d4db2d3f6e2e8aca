"""The llm member in a bundle: fold adapters packed by export_llm and loaded back by the scorer's
member registry give the probabilities the llm stage's own code computes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from arena_pref.folds import fold_dir
from arena_pref.llm_bundle import export_llm
from arena_pref.llm_model import (build_llm_classifier, load_llm_tokenizer, predict_judged, save_adapters,
                                  trainable_state)
from arena_pref.llm_text import encode_judge_rows
from arena_pref.llm_train import BEST, judge_layout
from arena_pref.members import MEMBER_KINDS, ScoreOptions
from arena_pref.params import parse_params
from arena_pref.precision import resolve_precision

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def test_bundle_round_trip_matches_the_stage_predictions(tiny_qwen2_dir, tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["llm"].update({"enabled": True, "backbone": str(tiny_qwen2_dir), "max_tokens": 200, "lora_r": 4,
                       "precision": "fp32", "device": "cpu", "predict_batch_size": 2})
    params = parse_params(raw)
    precision = resolve_precision("fp32", CPU)
    models = tmp_path / "models/llm"
    fold_models = {}
    for fold in (0, 1):  # two folds with different adapters, as the stage would leave them
        model = build_llm_classifier(params.llm, params.base.seed, CPU, precision)
        generator = torch.Generator().manual_seed(fold)
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
        save_adapters({"model": trainable_state(model), "step": 1}, Path(fold_dir(str(models), fold)) / BEST)
        fold_models[fold] = model
    staging = tmp_path / "bundle"
    entry = export_llm(params, models, [0, 1], staging)
    assert entry["kind"] == "llm" and entry["folds"] == [0, 1] and entry["llm"]["backbone"] == str(tiny_qwen2_dir)

    rows = pd.DataFrame({"id": ["a", "b", "c"], "prompt": [["Explain recursion."], ["Hi", "And then?"], ["x"]],
                         "response_a": [["A function that calls itself."], ["Hello", "More"], [""]],
                         "response_b": [["I'm sorry"], ["Hey", ""], ["y " * 80]], "fold": -1, "label": -1})
    predictor = MEMBER_KINDS["llm"].load(staging, entry, ScoreOptions(device="cpu", precision="fp32"))
    got = predictor.predict(rows)

    tokenizer = load_llm_tokenizer(str(tiny_qwen2_dir), "main")
    table = encode_judge_rows(rows, tokenizer, judge_layout(params.llm))
    expected = np.mean([predict_judged(fold_models[f], table, 2, CPU, precision, tokenizer.pad_token_id, tta=True,
                                       show_progress=False).tta for f in (0, 1)], axis=0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(expected, predict_judged(fold_models[0], table, 2, CPU, precision, tokenizer.pad_token_id,
                                                    tta=True, show_progress=False).tta)  # both folds count
    assert dataclasses.asdict(params.llm) == entry["llm"]
