"""Score pairs with a trained bundle (arena_pref.bundle): the Python API behind `arena-pref score`.

    from arena_pref import Scorer
    scorer = Scorer.load("bundle")                      # verifies every file against the manifest
    scorer.predict(frame)                               # id, winner_model_a, winner_model_b, winner_tie
    scorer.compare("Hi?", "Hello!", "Go away.")         # (p_a, p_b, p_tie)
    Scorer.load("bundle", members=["siamese"])          # a subset, blended by its own fitted blend

Rows go through the prepare stage's reader (data.read_rows: the same repairs and errors), then each
member's own pipeline code (members.py), then the ensemble stage's blend (ensemble.apply_blend).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .bundle import BundleError, check_runtime, verify_bundle
from .data import DataError, read_rows
from .ensemble import Blend, apply_blend
from .members import MEMBER_KINDS, ScoreOptions
from .predictions import probs_frame

log = logging.getLogger("scorer")
FRAME_NAME = "<input frame>"  # how errors name a DataFrame given to `Scorer.predict`


def blend_for(description: dict, members: list[str], where: Path) -> Blend:
    """The blend bundle.json holds for exactly this set of members."""
    for blend in description["blends"]:
        if blend["members"] == members:
            return Blend(weights=tuple(blend["weights"]), temperature=blend["temperature"])
    raise BundleError(where, f"no blend fitted for members {members}")


def _as_cell(value):
    """A Kaggle-schema cell: JSON text (or a missing value) stays as it is; a list of turns becomes JSON."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps([None if turn is None else str(turn) for turn in value])
    return value


def rows_of_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Clean rows of a Kaggle-schema frame (cells as JSON text, lists of turns or plain strings), through
    the prepare stage's reader, so the repairs and errors are those of a CSV; errors name the frame."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.csv"
        out = frame.copy()
        for column in ("prompt", "response_a", "response_b"):
            if column in out.columns:
                out[column] = out[column].map(_as_cell)
        out.to_csv(path, index=False)
        try:
            rows, _ = read_rows(path, labelled=False)
        except DataError as err:  # the same error, naming the frame instead of the temporary file
            where = str(DataError(err.file, "", err.row, err.column))
            raise DataError(FRAME_NAME, str(err)[len(where):], err.row, err.column) from None
    return rows


class Scorer:
    """A loaded bundle: `predict` a frame of pairs, `compare` one pair."""

    def __init__(self, root: Path, description: dict, members: list[str], predictors: dict, blend: Blend,
                 show_progress: bool):
        self.root, self.description, self.members = root, description, members
        self.predictors, self.blend, self.show_progress = predictors, blend, show_progress

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", members: Sequence[str] | None = None,
             batch_size: int | None = None, precision: str | None = None, show_progress: bool = False) -> "Scorer":
        """Verify and load the bundle at `path`. `members`: a subset of the bundle's members (default all);
        `batch_size` and `precision` default to the predict.batch_size and train.precision it was trained with."""
        root = Path(path)
        description = verify_bundle(root)
        available = list(description["members"])
        chosen = available if members is None else [m for m in available if m in members]
        unknown = sorted(set(members or []) - set(available))
        if unknown or not chosen:
            raise ValueError(f"members {list(members or [])}: this bundle holds {available}")
        not_supported = [m for m in chosen if m not in MEMBER_KINDS]
        if not_supported:
            raise BundleError(root, f"member(s) {not_supported} need a newer arena-pref (known: {list(MEMBER_KINDS)})")
        # A siamese member with the teacher prior (model.teacher_prior) runs the gbdt and tfidf fold models too.
        check_runtime(root, description, [m for m in chosen if MEMBER_KINDS[m].needs_sklearn
                                          or description["member_settings"][m].get("teacher_prior")])
        blend = blend_for(description, chosen, root / "bundle.json")
        options = ScoreOptions(device=device, precision=precision, batch_size=batch_size)
        predictors = {m: MEMBER_KINDS[m].load(root, description["member_settings"][m], options) for m in chosen}
        return cls(root, description, chosen, predictors, blend, show_progress)

    def predict_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """Blended (n, 3) probabilities of clean rows (data.read_rows), in their order. A member that reads
        other members' probabilities (MemberPredictor.inputs) runs after them and is given theirs, so no
        member scores the rows twice."""
        probs: dict[str, np.ndarray] = {}
        order = sorted(self.members, key=lambda member: bool(self.predictors[member].inputs))
        for member in tqdm(order, desc="members", unit="member", disable=not self.show_progress):
            probs[member] = self.predictors[member].predict(rows, self.show_progress, probs)
        return apply_blend(self.blend, [probs[member] for member in self.members])

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Probabilities of each pair of a Kaggle-schema frame (id, prompt, response_a, response_b):
        a frame id, winner_model_a, winner_model_b, winner_tie in the input's order."""
        rows = rows_of_frame(frame)
        return probs_frame(rows["id"], self.predict_rows(rows))

    def compare(self, prompt: str | Sequence[str], response_a: str | Sequence[str],
                response_b: str | Sequence[str]) -> tuple[float, float, float]:
        """(P(A wins), P(B wins), P(tie)) of one pair; each argument a string or a list of turns."""
        def turns(value) -> list:
            return [value] if isinstance(value, str) else list(value)
        frame = pd.DataFrame({"id": ["0"], "prompt": [json.dumps(turns(prompt))],
                              "response_a": [json.dumps(turns(response_a))],
                              "response_b": [json.dumps(turns(response_b))]})
        probs = self.predict_rows(rows_of_frame(frame))[0]
        return float(probs[0]), float(probs[1]), float(probs[2])
