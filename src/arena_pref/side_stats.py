"""Side statistics: how long one model's answers are, the numbers the siamese model reads next to each
side's pooled text when params.yaml's model.side_stats is true. The featurize stage computes them
(encode.encode_rows); the model makes room for len(SIDE_STATS) of them."""

from __future__ import annotations

import numpy as np

SIDE_STATS = ("log_chars", "log_lines")  # names of the entries of `side_stats`, in order


def side_stats(answer_turns: list[str]) -> np.ndarray:
    """Length of one model's answers, which truncation and mean pooling hide from the encoder, yet is
    the strongest single signal of a human vote: log1p of characters and of lines over all turns,
    divided by 10 so they sit on the scale of pooled hidden features. Shape (len(SIDE_STATS),)."""
    chars = sum(len(turn) for turn in answer_turns)
    lines = sum(turn.count("\n") + 1 for turn in answer_turns if turn)
    return np.log1p(np.asarray([chars, lines], dtype=np.float32)) / 10.0
