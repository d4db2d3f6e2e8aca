"""Clean rows -> one judge-style token sequence per pair, for the decoder-LLM member.

A sequence is
    [special prefix] HEADER  (PROMPT p_0 ANSWER_A a_0 ANSWER_B b_0) (PROMPT p_1 ...) ...  FOOTER
with every round of the conversation in order. The token budget (`max_tokens` minus the template) is
spent from the latest round backwards (the last exchange decides most votes; keeping the latest turns
was reported to help): each round gets what is left, split by `text.split_budget` between its prompt
(at most `prompt_share`, unused share flows on) and its two answers, which split theirs evenly; a long
turn is cut by `text.head_tail` (in the middle, or on the left: only its end kept). The latest round is
always kept; an earlier one only when at least `min_round_tokens` are left for it.

Every row is encoded twice: (A, B) as given, and (B, A) for swap augmentation and swap TTA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .encode import CHARS_PER_TOKEN_MARGIN, _tokenize
from .text import clip_chars, head_tail, split_budget

HEADER = ("Below is a conversation between a user and two AI assistants, A and B, round by round. "
          "Judge which assistant the user preferred, or whether it was a tie.\n")
PROMPT_MARKER = "\n### User:\n"
A_MARKER = "\n### Assistant A:\n"
B_MARKER = "\n### Assistant B:\n"
FOOTER = "\n### Verdict (A, B or tie):"


@dataclass(frozen=True)
class JudgeLayout:
    """Token budget settings of the judge sequence (the llm.* params of the same names)."""

    max_tokens: int
    prompt_share: float
    head_share: float  # of a cut turn's kept tokens, from its start; 0.0 keeps only its end ("left")
    min_round_tokens: int


@dataclass(frozen=True)
class Template:
    """The template's pieces as token ids of one tokenizer."""

    prefix: list[int]  # what the tokenizer adds before a text (<bos> for Llama, nothing for Qwen2)
    header: list[int]
    prompt: list[int]
    answer_a: list[int]
    answer_b: list[int]
    footer: list[int]

    @classmethod
    def of(cls, tokenizer) -> "Template":
        def ids(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        return cls(prefix=list(tokenizer("", add_special_tokens=True)["input_ids"]), header=ids(HEADER),
                   prompt=ids(PROMPT_MARKER), answer_a=ids(A_MARKER), answer_b=ids(B_MARKER), footer=ids(FOOTER))

    @property
    def fixed_length(self) -> int:
        return len(self.prefix) + len(self.header) + len(self.footer)

    @property
    def round_overhead(self) -> int:
        return len(self.prompt) + len(self.answer_a) + len(self.answer_b)


def fit_rounds(prompts: list[list[int]], answers_a: list[list[int]], answers_b: list[list[int]], budget: int,
               layout: JudgeLayout, round_overhead: int) -> list[tuple[list[int], list[int], list[int]]]:
    """The kept (prompt, A, B) token ids of each kept round, in conversation order (see module docstring).

    `budget` counts the turns' tokens and `round_overhead` marker tokens per kept round.
    """
    if not len(prompts) == len(answers_a) == len(answers_b):
        raise ValueError(f"rounds differ: {len(prompts)} prompt, {len(answers_a)} A and {len(answers_b)} B turns")
    kept = []
    remaining = budget
    for i in range(len(prompts) - 1, -1, -1):
        room = remaining - round_overhead
        if room < 0 or (kept and room < layout.min_round_tokens):
            break
        p, a, b = prompts[i], answers_a[i], answers_b[i]
        p_keep, answers = split_budget(len(p), len(a) + len(b), room, layout.prompt_share)
        a_keep, b_keep = split_budget(len(a), len(b), answers, 0.5)
        kept.append((head_tail(p, p_keep, layout.head_share), head_tail(a, a_keep, layout.head_share),
                     head_tail(b, b_keep, layout.head_share)))
        remaining = room - p_keep - a_keep - b_keep
    return kept[::-1]


def judge_sequence(template: Template, prompts: list[list[int]], answers_a: list[list[int]],
                   answers_b: list[list[int]], layout: JudgeLayout) -> list[int]:
    """Token ids of one pair's judge sequence, at most `layout.max_tokens` long."""
    budget = layout.max_tokens - template.fixed_length
    if budget < template.round_overhead:
        raise ValueError(f"llm.max_tokens={layout.max_tokens} leaves no room for a round: the template alone takes "
                         f"{template.fixed_length + template.round_overhead} tokens")
    ids = template.prefix + template.header
    for p, a, b in fit_rounds(prompts, answers_a, answers_b, budget, layout, template.round_overhead):
        ids += template.prompt + p + template.answer_a + a + template.answer_b + b
    return ids + template.footer


def encode_judge_rows(rows: pd.DataFrame, tokenizer, layout: JudgeLayout) -> pd.DataFrame:
    """Judge sequences of clean rows (see `data`): a DataFrame with one row per input row, in order:
    id, fold, label, ids (A shown first), swapped_ids (B shown first), as int32 arrays."""
    template = Template.of(tokenizer)
    max_chars = layout.max_tokens * CHARS_PER_TOKEN_MARGIN
    tokenized = {}
    for column in ("prompt", "response_a", "response_b"):
        texts, offsets = [], [0]
        for turns in rows[column]:
            texts += [clip_chars(turn, max_chars, layout.head_share) for turn in turns]
            offsets.append(len(texts))
        ids = _tokenize(tokenizer, texts, f"tokenize {column}")
        tokenized[column] = [ids[offsets[i]:offsets[i + 1]] for i in range(len(rows))]

    def sequence(i: int, first: str, second: str) -> np.ndarray:
        return np.asarray(judge_sequence(template, tokenized["prompt"][i], tokenized[first][i], tokenized[second][i],
                                         layout), dtype=np.int32)

    return pd.DataFrame({
        "id": rows["id"].to_numpy(),
        "fold": rows["fold"].to_numpy(dtype=np.int64),
        "label": rows["label"].to_numpy(dtype=np.int64),
        "ids": [sequence(i, "response_a", "response_b") for i in range(len(rows))],
        "swapped_ids": [sequence(i, "response_b", "response_a") for i in range(len(rows))],
    })
