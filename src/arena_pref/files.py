"""Small helpers shared by the stage scripts: their command line and logging, JSON and Parquet files."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import pandas as pd


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"), format="%(asctime)s %(name)s: %(message)s")


def stage_arguments(doc: str, *options: str, helps: dict[str, str] | None = None) -> argparse.Namespace:
    """A stage script's start: its required path options (`--features`, ...; their paths come from
    dvc.yaml, their settings from params.yaml), parsed, with `--help` showing the script's docstring
    `doc` and `helps[option]`; then logging is set up."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option in options:
        parser.add_argument(option, required=True, help=(helps or {}).get(option))
    args = parser.parse_args()
    setup_logging()
    return args


def write_json(obj: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


FEATURES_META = "meta.json"  # the featurize stage's facts about its token ids, beside its tables


def read_features_meta(features_dir: str | Path) -> dict:
    """The featurize stage's meta.json in `features_dir`: pad_token_id, backbone, max_tokens_per_side, ..."""
    return read_json(Path(features_dir) / FEATURES_META)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
