"""The ensemble's members as a bundle holds them: how each kind of member is written into a bundle, read
back without running code from it, and asked for (n, 3) probabilities of clean rows (arena_pref.data).

MEMBER_KINDS maps a member name to its kind. A new member (say an `llm` one) gets bundle support by
adding a kind here: `export(params, sources, folds, staging)` -> its bundle.json entry, and
`load(root, entry, options)` -> a `MemberPredictor`. Every predictor averages its fold models exactly
as its pipeline stage does, so the bundle's numbers are the pipeline's numbers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .bundle import BundleError
from .folds import fold_dir
from .sklearn_files import fold_model_path, load_state


@dataclass(frozen=True)
class ScoreOptions:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str | None = None  # None: the train.precision the bundle was trained with
    batch_size: int | None = None  # None: the predict.batch_size the bundle was trained with


class MemberPredictor(Protocol):
    # Other members whose probabilities of the same rows this one reads (a siamese member with the
    # teacher prior reads gbdt's and tfidf's); empty for most.
    inputs: tuple[str, ...]

    def predict(self, rows: pd.DataFrame, show_progress: bool,
                given: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """(n, 3) probabilities (A wins, B wins, tie) of clean rows, in their order. `given`: probabilities of
        the same rows by members named in `inputs`, already computed; the predictor computes any missing."""


# ---------------------------------------------------------------------------- scikit-learn members

def _gbdt_rows(model, rows: pd.DataFrame) -> np.ndarray:
    from .features import pair_features
    from .gbdt import predict_gbdt
    # The gbdt stage predicts the hand_features stage's table: pair_features of the same clean rows.
    return predict_gbdt(model, pair_features(rows))


def _tfidf_rows(model, rows: pd.DataFrame) -> np.ndarray:
    from .tfidf import predict_tfidf
    return predict_tfidf(model, rows)


def _from_state(member: str) -> Callable[[dict], Any]:
    from . import gbdt, tfidf
    return {"gbdt": gbdt.model_from_state, "tfidf": tfidf.model_from_state}[member]


# How each cross-fitted scikit-learn member predicts clean rows.
SKLEARN_PREDICT: dict[str, Callable[[Any, pd.DataFrame], np.ndarray]] = {"gbdt": _gbdt_rows, "tfidf": _tfidf_rows}


class SklearnPredictor:
    inputs: tuple[str, ...] = ()  # reads no other member's probabilities

    def __init__(self, member: str, models: list):
        self.predict_rows, self.models = SKLEARN_PREDICT[member], models

    def predict(self, rows: pd.DataFrame, show_progress: bool = False,
                given: dict[str, np.ndarray] | None = None) -> np.ndarray:
        # Mean over the fold models, in fold order, as crossfit.cross_fit averages its test predictions.
        return np.mean([self.predict_rows(model, rows) for model in self.models], axis=0)


def export_sklearn(member: str, fitted_dir: Path, folds: list[int], staging: Path) -> dict:
    """Copy the stage's fold model files into the bundle after checking that each reads back."""
    for fold in folds:
        source = fold_model_path(fitted_dir, fold)
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no fitted {member} model for fold {fold}; run `dvc repro {member}`")
        _from_state(member)(load_state(source))
        target = fold_model_path(staging / member, fold)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return {"kind": "sklearn", "folds": list(folds)}


def load_sklearn(member: str, root: Path, entry: dict, options: ScoreOptions) -> SklearnPredictor:
    from_state = _from_state(member)
    return SklearnPredictor(member, [from_state(load_state(fold_model_path(root / member, f))) for f in entry["folds"]])


# ---------------------------------------------------------------------------------- siamese member

SIAMESE_BACKBONE_DIR = "backbone"


TEACHER_MEMBERS = ("gbdt", "tfidf")  # in soft_targets.teacher_mean's order


class SiamesePredictor:
    """The fold models of the siamese member, with the tokenizer and text settings featurize used, and
    for a model with the teacher prior (model.teacher_prior) the bundle's gbdt and tfidf predictors,
    whose mean its inputs carry, as the predict stage's do."""

    def __init__(self, tokenizer, models: list, entry: dict, device, precision, batch_size: int,
                 teacher_members: list[SklearnPredictor]):
        self.tokenizer, self.models, self.entry = tokenizer, models, entry
        self.device, self.precision, self.batch_size = device, precision, batch_size
        self.teacher_members = teacher_members
        self.inputs = TEACHER_MEMBERS if teacher_members else ()

    def pairs(self, rows: pd.DataFrame, given: dict[str, np.ndarray] | None = None):
        """The model's inputs for clean rows: encode_rows with the featurize stage's text settings, plus the
        teacher's entries for a model with the teacher prior (a collate.PairColumns), from the teacher
        members' probabilities in `given`, or computed here."""
        from .collate import PairColumns
        from .encode import encode_rows
        from .soft_targets import teacher_mean
        from .teacher_prior import with_teacher_stats
        text = self.entry["text"]
        encoded = encode_rows(rows, self.tokenizer, text["max_tokens_per_side"], text["prompt_share"],
                              text["head_share"])
        if self.teacher_members:
            given = given or {}
            teacher = [given[name] if name in given else member.predict(rows)
                       for name, member in zip(TEACHER_MEMBERS, self.teacher_members)]
            encoded = with_teacher_stats(encoded, teacher_mean(*teacher))
        return PairColumns(encoded)

    def predict(self, rows: pd.DataFrame, show_progress: bool = False,
                given: dict[str, np.ndarray] | None = None) -> np.ndarray:
        from .infer import predict_pairs
        pairs = self.pairs(rows, given)
        fold_probs = []
        for fold, model in zip(self.entry["folds"], self.models):
            predictions = predict_pairs(model, pairs, self.batch_size, self.device, self.precision,
                                        self.entry["pad_token_id"], desc=f"siamese fold {fold}",
                                        show_progress=show_progress)
            fold_probs.append(predictions.tta if self.entry["tta"] else predictions.forward)
        return np.mean(fold_probs, axis=0)  # as the predict stage averages its fold models


def export_siamese(params, models_dir: Path, folds: list[int], pad_token_id: int, staging: Path) -> dict:
    """Each fold's best checkpoint as safetensors, the backbone's config and the tokenizer featurize used."""
    from safetensors.torch import save_model

    from .backbone import load_tokenizer
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .model import spec_of
    from .files import write_json

    tokenizer = load_tokenizer(params.model.backbone, params.model.revision)
    if tokenizer.pad_token_id != pad_token_id:
        raise ValueError(f"the tokenizer of {params.model.backbone!r} pads with {tokenizer.pad_token_id}, the "
                         f"featurized data with {pad_token_id}: rerun `dvc repro featurize`")
    tokenizer.save_pretrained(staging / SIAMESE_BACKBONE_DIR)
    heads = set()
    for fold in folds:
        checkpoint = load_checkpoint(f"{fold_dir(str(models_dir), fold)}/best.pt")
        heads.add(tuple(spec_of(checkpoint).items()))
        (staging / "siamese").mkdir(parents=True, exist_ok=True)
        save_model(model_from_checkpoint(checkpoint), str(staging / "siamese" / f"fold_{fold}.safetensors"))
        write_json(checkpoint["backbone_config"], staging / SIAMESE_BACKBONE_DIR / "config.json")
    if len(heads) != 1:
        raise ValueError(f"the fold checkpoints under {models_dir} were built with different heads: {sorted(heads)}")
    entry = {"kind": "siamese", "folds": list(folds), "teacher_prior": params.model.teacher_prior}
    return entry | dict(heads.pop()) | {
            "pad_token_id": int(pad_token_id), "tta": params.predict.tta, "batch_size": params.predict.batch_size,
            "precision": params.train.precision,
            "text": {"max_tokens_per_side": params.featurize.max_tokens_per_side,
                     "prompt_share": params.featurize.prompt_share, "head_share": params.featurize.head_share}}


def load_siamese(root: Path, entry: dict, options: ScoreOptions) -> SiamesePredictor:
    from safetensors import SafetensorError
    from safetensors.torch import load_model
    from transformers import AutoTokenizer

    from .backbone import backbone_from_config
    from .bundle import DESCRIPTION, read_json_file
    from .model import SiamesePreferenceModel, spec_of
    from .precision import resolve_device, resolve_precision

    backbone_dir = root / SIAMESE_BACKBONE_DIR
    try:
        # local_files_only: never the hub; no trust_remote_code: a tokenizer asking for code is refused.
        tokenizer = AutoTokenizer.from_pretrained(backbone_dir, local_files_only=True)
    except (OSError, ValueError) as err:
        raise BundleError(backbone_dir, f"cannot load the tokenizer: {err}") from None
    tokenizer.model_max_length = int(1e12)  # as featurize: whole turns are tokenized, then cut to the budget
    config = read_json_file(backbone_dir / "config.json")
    device = resolve_device(options.device)
    precision = resolve_precision(options.precision or entry["precision"], device)
    models = []
    for fold in entry["folds"]:
        path = root / "siamese" / f"fold_{fold}.safetensors"
        model = SiamesePreferenceModel(backbone_from_config(config), **spec_of(entry))
        try:
            load_model(model, str(path), strict=True)
        except (SafetensorError, RuntimeError, OSError) as err:
            raise BundleError(path, f"weights do not fit the model in bundle.json: {err}") from None
        models.append(model.to(device).eval())
    teacher_members = []
    if entry.get("teacher_prior"):  # bundles written before the teacher prior have no such key
        settings = read_json_file(root / DESCRIPTION)["member_settings"]
        missing = [m for m in TEACHER_MEMBERS if m not in settings]
        if missing:
            raise BundleError(root / DESCRIPTION, f"the siamese member reads the teacher prior, but the bundle has no "
                                                  f"{missing} member")
        teacher_members = [load_sklearn(m, root, settings[m], options) for m in TEACHER_MEMBERS]
    return SiamesePredictor(tokenizer, models, entry, device, precision, options.batch_size or entry["batch_size"],
                            teacher_members)


# ------------------------------------------------------------------------------------------ registry

@dataclass(frozen=True)
class MemberKind:
    load: Callable[[Path, dict, ScoreOptions], MemberPredictor]
    needs_sklearn: bool


MEMBER_KINDS: dict[str, MemberKind] = {
    "siamese": MemberKind(load=load_siamese, needs_sklearn=False),
    "gbdt": MemberKind(load=lambda root, entry, options: load_sklearn("gbdt", root, entry, options), needs_sklearn=True),
    "tfidf": MemberKind(load=lambda root, entry, options: load_sklearn("tfidf", root, entry, options),
                        needs_sklearn=True),
    "llm": MemberKind(load=lambda root, entry, options: _llm_bundle().load_llm(root, entry, options),
                      needs_sklearn=False),
}


def _llm_bundle():
    """arena_pref.llm_bundle, imported when an llm member is packed or loaded (it pulls in peft)."""
    from . import llm_bundle
    return llm_bundle
