"""Hand-made features of a pair of answers, for the gradient-boosted-tree model (arena_pref.gbdt).

Every feature of a row is computed from that row's own text only: nothing is fitted (no vocabulary,
no scaler), so features may be computed for all rows at once without leaking validation rows.

Columns of `pair_features`, all float64:
    a_<key>, b_<key>   `side_features` of side A / side B, for every key in SIDE_KEYS;
    diff_<key>         a_<key> - b_<key>, for every key in SIDE_KEYS;
    ratio_<key>        log1p(a_<key>) - log1p(b_<key>), for the non-negative keys in RATIO_KEYS;
    pair_<name>        features that do not change when A and B are exchanged (PAIR_KEYS).

Exchanging A and B maps a_* <-> b_*, negates diff_* and ratio_*, and keeps pair_*:
`swap_feature_frame` does exactly that, and equals `pair_features` of the swapped rows.

Text of a side: the answer turns joined by a blank line (text.join_turns); the prompt is all prompt
turns joined the same way. Markdown structure (headers, lists, bold, inline code, tables, links) and
sentences are counted outside fenced code blocks, so a `# comment` in a code block is not a header. A
sentence ends at . ! or ? before a space, or at a line break (list items and headers are sentences too).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .text import join_turns

TOKENS_PER_WORD = 1.3  # rough sub-word tokens per word for `tokens` (English BPE averages 1.3-1.4)

# Keys of `side_features`, in column order.
SIDE_KEYS = (
    "chars", "words", "tokens", "lines", "paragraphs", "last_turn_chars",
    "headers", "list_items", "bold", "code_blocks", "inline_code", "table_rows", "links",
    "sentences", "mean_sentence_words", "mean_word_chars", "unique_word_ratio",
    "digits", "questions", "exclamations", "non_ascii_share",
    "refusal_phrases", "refuses", "prompt_jaccard", "answered_turns", "empty",
)
# Non-negative keys whose log ratio is a column (counts and means; not flags or shares in [0, 1]).
RATIO_KEYS = (
    "chars", "words", "tokens", "lines", "paragraphs", "last_turn_chars",
    "headers", "list_items", "bold", "code_blocks", "inline_code", "table_rows", "links",
    "sentences", "mean_sentence_words", "mean_word_chars", "digits", "questions", "exclamations",
    "refusal_phrases",
)
# Keys whose |log ratio| is a symmetric pair column (how different the two lengths are: tie signal).
ABS_RATIO_KEYS = ("chars", "words", "lines", "list_items")
PAIR_KEYS = (
    "identical", "both_empty", "both_refuse", "any_empty", "ab_jaccard",
    *(f"abs_ratio_{key}" for key in ABS_RATIO_KEYS),
    "prompt_chars", "prompt_words", "turns",
)

_WORD = re.compile(r"\w+")
_FENCE_LINE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)
_FENCED_BLOCK = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(^[ \t]*\1[^\n]*$|\Z)", re.MULTILINE | re.DOTALL)
_HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$", re.MULTILINE)
# Bounded link text and target: a long line of "[" must not make the search quadratic.
_LINK = re.compile(r"\[[^\]\n]{1,500}\]\([^)\s]{1,2000}\)|https?://\S+")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")
# Refusals, apologies and AI disclaimers; matched on lower-cased text with curly apostrophes made
# straight. Each occurrence counts once.
REFUSAL_PATTERNS = (
    r"\bi'?m sorry\b", r"\bi am sorry\b", r"\bi apologi[sz]e\b", r"\bmy apologies\b",
    r"\bi (?:cannot|can ?not|can't|won't|will not)\b", r"\bi(?:'m| am) (?:unable|not able)\b",
    r"\bi(?:'m| am) not (?:allowed|permitted|comfortable)\b",
    r"\bas an ai\b", r"\bas a(?:n ai)? language model\b", r"\bi(?:'m| am) (?:just )?an ai\b",
    r"\bi (?:do not|don't) have (?:personal|the ability|access|real-time|feelings|opinions)\b",
    r"\b(?:against|violates?) (?:my|the) (?:guidelines|programming|policy|policies|principles)\b",
    r"\b(?:not|isn't|is not) appropriate\b",
)
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS))


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _word_set(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def jaccard(left: set[str], right: set[str]) -> float:
    """|left & right| / |left | right|; 0.0 when both are empty."""
    union = len(left | right)
    return len(left & right) / union if union else 0.0


def count_refusals(text: str) -> int:
    """Occurrences of refusal / apology / AI-disclaimer phrases (REFUSAL_PATTERNS) in `text`."""
    return len(_REFUSAL.findall(text.lower().replace("\u2019", "'")))


def side_features(prompt_turns: list[str], answer_turns: list[str], *,
                  _prompt_words: set[str] | None = None) -> dict[str, float]:
    """Features of one side's answers (keys SIDE_KEYS, values float). `prompt_turns` only feeds
    `prompt_jaccard`; `_prompt_words` lets `pair_features` pass the prompt's word set once."""
    text = join_turns(answer_turns)
    words = _words(text)
    n_words = len(words)
    chars = sum(len(t) for t in answer_turns)
    prose = _FENCED_BLOCK.sub("\n", text)  # markdown structure is counted outside code blocks
    fences = len(_FENCE_LINE.findall(text))
    sentences = sum(1 for s in _SENTENCE_END.split(prose) if _WORD.search(s))  # lines count as sentences
    refusals = count_refusals(text)
    prompt_words = _prompt_words if _prompt_words is not None else _word_set(join_turns(prompt_turns))
    features = {
        "chars": chars,
        "words": n_words,
        "tokens": math.ceil(n_words * TOKENS_PER_WORD),
        "lines": sum(1 for line in text.split("\n") if line.strip()),
        "paragraphs": sum(1 for block in re.split(r"\n[ \t]*\n", text) if block.strip()),
        "last_turn_chars": len(answer_turns[-1]) if answer_turns else 0,
        "headers": len(_HEADER.findall(prose)),
        "list_items": len(_LIST_ITEM.findall(prose)),
        "bold": len(_BOLD.findall(prose)),
        "code_blocks": (fences + 1) // 2,  # an unclosed fence still opens a block
        "inline_code": len(_INLINE_CODE.findall(prose)),
        "table_rows": len(_TABLE_ROW.findall(prose)),
        "links": len(_LINK.findall(prose)),
        "sentences": sentences,
        "mean_sentence_words": len(_words(prose)) / sentences if sentences else 0.0,
        "mean_word_chars": sum(len(w) for w in words) / n_words if n_words else 0.0,
        "unique_word_ratio": len({w.lower() for w in words}) / n_words if n_words else 0.0,
        "digits": sum(c.isdigit() for c in text),
        "questions": text.count("?"),
        "exclamations": text.count("!"),
        "non_ascii_share": sum(not c.isascii() for c in text) / len(text) if text else 0.0,
        "refusal_phrases": refusals,
        "refuses": float(refusals > 0),
        "prompt_jaccard": jaccard(prompt_words, _word_set(text)),
        "answered_turns": sum(1 for t in answer_turns if t.strip()),
        "empty": float(not text.strip()),
    }
    return {key: float(features[key]) for key in SIDE_KEYS}


def feature_columns() -> list[str]:
    """Column names of `pair_features`, in order."""
    return ([f"a_{k}" for k in SIDE_KEYS] + [f"b_{k}" for k in SIDE_KEYS] + [f"diff_{k}" for k in SIDE_KEYS]
            + [f"ratio_{k}" for k in RATIO_KEYS] + [f"pair_{k}" for k in PAIR_KEYS])


def pair_features(rows: pd.DataFrame) -> pd.DataFrame:
    """One row of float features per row of clean `rows` (columns prompt, response_a, response_b as
    sequences of turns: lists, or numpy arrays as read back from parquet), same order, RangeIndex;
    columns `feature_columns()`."""
    a_records, b_records, pair_records = [], [], []
    for prompt, answer_a, answer_b in zip(rows["prompt"], rows["response_a"], rows["response_b"]):
        prompt, answer_a, answer_b = list(prompt), list(answer_a), list(answer_b)
        prompt_text = join_turns(prompt)
        prompt_words = _word_set(prompt_text)
        a = side_features(prompt, answer_a, _prompt_words=prompt_words)
        b = side_features(prompt, answer_b, _prompt_words=prompt_words)
        a_records.append(a)
        b_records.append(b)
        pair_records.append({
            "identical": float(list(answer_a) == list(answer_b)),
            "both_empty": float(a["empty"] and b["empty"]),
            "both_refuse": float(a["refuses"] and b["refuses"]),
            "any_empty": float(a["empty"] or b["empty"]),
            "ab_jaccard": jaccard(_word_set(join_turns(answer_a)), _word_set(join_turns(answer_b))),
            "prompt_chars": float(sum(len(t) for t in prompt)),
            "prompt_words": float(len(_words(prompt_text))),
            "turns": float(len(prompt)),
        })
    n = len(a_records)
    side_a = pd.DataFrame.from_records(a_records, columns=list(SIDE_KEYS), index=range(n)).astype(np.float64)
    side_b = pd.DataFrame.from_records(b_records, columns=list(SIDE_KEYS), index=range(n)).astype(np.float64)
    pair = pd.DataFrame.from_records(pair_records, index=range(n),
                                     columns=["identical", "both_empty", "both_refuse", "any_empty", "ab_jaccard",
                                              "prompt_chars", "prompt_words", "turns"]).astype(np.float64)
    ratio = np.log1p(side_a[list(RATIO_KEYS)]) - np.log1p(side_b[list(RATIO_KEYS)])
    for key in ABS_RATIO_KEYS:
        pair[f"abs_ratio_{key}"] = ratio[key].abs()
    parts = [side_a.add_prefix("a_"), side_b.add_prefix("b_"), (side_a - side_b).add_prefix("diff_"),
             ratio.add_prefix("ratio_"), pair[list(PAIR_KEYS)].add_prefix("pair_")]
    out = pd.concat(parts, axis=1) + 0.0  # + 0.0 turns -0.0 into 0.0
    return out[feature_columns()]


def swap_feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (columns a_*, b_*, diff_*, ratio_*, pair_*) with A and B exchanged: a_<x> <-> b_<x>,
    diff_* and ratio_* negated, pair_* kept. Same columns, order and index; the input is not modified.

    Raises ValueError for a column of another prefix or an a_<x> without its b_<x> (or vice versa),
    since the swap of such a column is unknown.
    """
    columns = list(frame.columns)
    out = frame.copy()
    for column in columns:
        prefix, _, name = column.partition("_")
        if prefix in ("a", "b"):
            twin = ("b_" if prefix == "a" else "a_") + name
            if twin not in frame.columns:
                raise ValueError(f"feature column {column!r} has no twin {twin!r} to swap with")
            out[column] = frame[twin]
        elif prefix in ("diff", "ratio"):
            out[column] = -frame[column] + 0.0  # + 0.0 keeps 0.0 from becoming -0.0
        elif prefix != "pair":
            raise ValueError(f"feature column {column!r}: unknown prefix (expected a_, b_, diff_, ratio_, pair_)")
    return out
