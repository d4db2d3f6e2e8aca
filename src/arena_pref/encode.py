"""Clean rows -> token ids of each side, ready for the collator (the featurize stage's library).

A side is `[CLS] User: p_0 \\nAssistant: a_0 User: p_1 ... [SEP]` cut to `max_tokens_per_side` by
`text.fit_conversation`. Prompt turns are tokenized once and shared by both sides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .side_stats import side_stats
from .swap import swap_pairs
from .text import ASSISTANT_MARKER, USER_MARKER, clip_chars, fit_conversation

# Characters kept per token of budget before tokenizing (see text.clip_chars): English BPE/unigram
# tokens average ~4 characters, so 16 leaves a wide margin.
CHARS_PER_TOKEN_MARGIN = 16
TOKENIZE_CHUNK = 2048


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """Ids to put before and after one sequence: [CLS] ... [SEP] for BERT/DeBERTa, <s> ... </s> for
    RoBERTa-likes (transformers 5 tokenizers no longer expose build_inputs_with_special_tokens)."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([first] if first is not None else []), ([last] if last is not None else [])


def _tokenize(tokenizer, texts: list[str], desc: str) -> list[list[int]]:
    ids: list[list[int]] = []
    for start in tqdm(range(0, len(texts), TOKENIZE_CHUNK), desc=desc, unit="chunk", leave=False):
        chunk = texts[start:start + TOKENIZE_CHUNK]
        ids += tokenizer(chunk, add_special_tokens=False)["input_ids"]
    return ids


def encode_rows(rows: pd.DataFrame, tokenizer, max_tokens_per_side: int, prompt_share: float,
                head_share: float) -> pd.DataFrame:
    """Token ids of both sides of every row.

    Takes clean rows (see `data`) and returns a DataFrame with one row per input row, in order:
    id, fold, label, swapped (False), a_ids, b_ids (lists of int, each at most `max_tokens_per_side`),
    a_stats, b_stats (`side_stats.side_stats` of each side's answers).
    """
    prefix, suffix = special_tokens(tokenizer)
    budget = max_tokens_per_side - len(prefix) - len(suffix)
    if budget < 1:
        raise ValueError(f"max_tokens_per_side={max_tokens_per_side} leaves no room after special tokens")
    max_chars = max_tokens_per_side * CHARS_PER_TOKEN_MARGIN

    def flatten(column: str, marker: str) -> tuple[list[str], list[int]]:
        texts, offsets = [], [0]
        for turns in rows[column]:
            texts += [clip_chars(marker + turn, max_chars, head_share) for turn in turns]
            offsets.append(len(texts))
        return texts, offsets

    tokenized = {}
    for column, marker in (("prompt", USER_MARKER), ("response_a", ASSISTANT_MARKER),
                           ("response_b", ASSISTANT_MARKER)):
        texts, offsets = flatten(column, marker)
        ids = _tokenize(tokenizer, texts, f"tokenize {column}")
        tokenized[column] = [ids[offsets[i]:offsets[i + 1]] for i in range(len(rows))]

    def side(i: int, column: str) -> np.ndarray:
        body = fit_conversation(tokenized["prompt"][i], tokenized[column][i], budget, prompt_share, head_share)
        return np.asarray(prefix + body + suffix, dtype=np.int32)

    return pd.DataFrame({
        "id": rows["id"].to_numpy(),
        "fold": rows["fold"].to_numpy(dtype=np.int64),
        "label": rows["label"].to_numpy(dtype=np.int64),
        "swapped": False,
        "a_ids": [side(i, "response_a") for i in range(len(rows))],
        "b_ids": [side(i, "response_b") for i in range(len(rows))],
        "a_stats": [side_stats(turns) for turns in rows["response_a"]],
        "b_stats": [side_stats(turns) for turns in rows["response_b"]],
    })


def with_swapped_copies(pairs: pd.DataFrame) -> pd.DataFrame:
    """`pairs` followed by a swapped copy of each (swap augmentation), same ids, `swapped=True`."""
    return pd.concat([pairs, swap_pairs(pairs)], ignore_index=True)
