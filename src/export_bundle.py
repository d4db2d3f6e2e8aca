"""Stage bundle: the trained run as one self-contained directory that scores new rows anywhere.

    python src/export_bundle.py --models models/siamese --fitted models --features data/token_ids \
        --predictions data/predictions --metrics metrics --out bundle
Packs every member the ensemble stage blended (arena_pref.members): the siamese fold checkpoints as
safetensors with the backbone's config and tokenizer, the gbdt and tfidf fold models as skops files; the
ensemble's blend, and a blend per subset of members fitted on the same out-of-fold rows (for scoring
with fewer members); the text settings, params, package versions and CV figures; a SHA-256 manifest
(arena_pref.bundle). Score with `arena-pref score models/bundle test.csv -o submission.csv` or arena_pref.Scorer.
"""

import itertools
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from arena_pref.bundle import FORMAT_VERSION, package_versions, publish, write_manifest
from arena_pref.ensemble import fit_blend
from arena_pref.errors import run_stage
from arena_pref.files import read_features_meta, read_json, stage_arguments, write_json
from arena_pref.folds import validation_folds
from arena_pref.llm_bundle import export_llm
from arena_pref.members import MEMBER_KINDS, SKLEARN_PREDICT, TEACHER_MEMBERS, export_siamese, export_sklearn
from arena_pref.params import load_params
from arena_pref.predictions import probs_of, read_probs

log = logging.getLogger("bundle")
# The params.yaml sections that made the bundle's models, recorded in bundle.json (the stage's params in dvc.yaml).
PARAM_SECTIONS = ("base", "data", "prepare", "featurize", "model", "train", "evaluate", "predict", "gbdt", "tfidf",
                  "ensemble")


def oof_members(predictions: str, members: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels and each member's out-of-fold probabilities, rows in the first member's id order."""
    frames = {m: read_probs(f"{predictions}/oof_{m}.csv").set_index("id") for m in members}
    reference = frames[members[0]]
    for member, frame in frames.items():
        if set(frame.index) != set(reference.index):
            raise ValueError(f"{predictions}/oof_{member}.csv: other ids than oof_{members[0]}.csv")
    return reference["label"].to_numpy(), [probs_of(frames[m].loc[reference.index]) for m in members]


def subset_blends(params, ensemble_metrics: dict, predictions: str) -> list[dict]:
    """The ensemble stage's blend of all members first, then one blend per smaller subset of members,
    fitted like the ensemble stage's (ensemble.fit_blend on the out-of-fold rows)."""
    weights = ensemble_metrics["blend"]["weights"]
    members = list(weights)
    blends = [{"members": members, "weights": [weights[m] for m in members],
               "temperature": ensemble_metrics["blend"]["temperature"]}]
    labels, oof = oof_members(predictions, members)
    for size in range(len(members) - 1, 0, -1):
        for subset in itertools.combinations(range(len(members)), size):
            blend = fit_blend(labels, [oof[i] for i in subset], params.ensemble.temperature)
            blends.append({"members": [members[i] for i in subset], "weights": list(blend.weights),
                           "temperature": blend.temperature})
    return blends


def main() -> None:
    args = stage_arguments(__doc__, "--models", "--fitted", "--features", "--predictions", "--metrics", "--out",
                           "--models-llm", helps={
        "--models": "the train stage's fold checkpoints",
        "--fitted": "where the gbdt and tfidf stages' fold models are (<member>/fold_K.skops)",
        "--features": "the featurize stage's output (meta.json, train.parquet)",
        "--predictions": "the members' out-of-fold probabilities",
        "--metrics": "the stages' metrics (evaluate, gbdt, tfidf, ensemble)",
        "--models-llm": "the llm stage's fold adapters (with llm.enabled)",
    })
    params = load_params()
    ensemble_metrics = read_json(f"{args.metrics}/ensemble/metrics.json")
    members = list(ensemble_metrics["blend"]["weights"])
    unsupported = [m for m in members if m not in MEMBER_KINDS]
    if unsupported:
        raise SystemExit(f"bundle: the ensemble blends {unsupported}, which arena_pref.members cannot pack yet")
    if "siamese" in members and params.model.teacher_prior and not set(TEACHER_MEMBERS) <= set(members):
        raise SystemExit(f"bundle: the siamese model reads the teacher prior (model.teacher_prior), so the bundle "
                         f"needs the {list(TEACHER_MEMBERS)} members, and the ensemble blends only {members}")
    folds = validation_folds(pd.read_parquet(f"{args.features}/train.parquet", columns=["fold"])["fold"].to_numpy(),
                             params.train.fold)
    out = Path(args.out)
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    settings = {}
    for member in members:
        if member == "siamese":
            pad_token_id = read_features_meta(args.features)["pad_token_id"]
            settings[member] = export_siamese(params, Path(args.models), folds, pad_token_id, staging)
        elif member in SKLEARN_PREDICT:
            settings[member] = export_sklearn(member, Path(args.fitted) / member, folds, staging)
        elif member == "llm":
            settings[member] = export_llm(params, Path(args.models_llm), folds, staging)
    cv = {"ensemble": ensemble_metrics}
    for stage in ("evaluate", "gbdt", "tfidf"):
        path = Path(args.metrics) / stage / "metrics.json"
        if path.is_file():
            cv[stage] = read_json(path)
    with open("params.yaml", encoding="utf-8") as f:
        raw_params = {name: section for name, section in yaml.safe_load(f).items() if name in PARAM_SECTIONS}
    write_json({"format_version": FORMAT_VERSION, "written_with": package_versions(), "members": members,
                "blends": subset_blends(params, ensemble_metrics, args.predictions), "member_settings": settings,
                "params": raw_params, "cv": cv}, staging / "bundle.json")
    manifest = write_manifest(staging)
    publish(staging, out)
    log.info("wrote %s: members %s, folds %s, %d files", out, members, folds, len(manifest["files"]))


if __name__ == "__main__":
    run_stage(main)
