"""Conversations as text: one side's turns as one text (`join_turns`), and token-budget truncation
(pure functions on token-id lists).

A side of a pair is the conversation seen by one model: prompt turn 1, that model's answer 1, prompt
turn 2, answer 2, ... Long sides are cut to a token budget that
  * gives the prompt at most `prompt_share` of the budget (unused share flows to the answers and back),
  * spends each share on the latest turns first (the last exchange decides most votes),
  * cuts a long turn in its middle, keeping `head_share` of the kept tokens from its start and the
    rest from its end (answers open with the gist and close with the conclusion).
"""

from __future__ import annotations

import math

USER_MARKER = "User: "
ASSISTANT_MARKER = "\nAssistant: "
# Shares multiply counts in floating point (25 * 0.28 == 7.000000000000001); rounding the product to
# this many decimals before ceil/floor keeps an exact product from gaining or losing a token.
_SHARE_DECIMALS = 9


def join_turns(turns) -> str:
    """The turns of one side (a sequence of strings) as one text, a blank line between turns: how the
    hand features, the tfidf member and the bias report read a side.

    >>> join_turns(["Hi.", "Bye."])
    'Hi.\\n\\nBye.'
    """
    return "\n\n".join(turns)


def head_tail(ids: list[int], keep: int, head_share: float) -> list[int]:
    """Keep `keep` tokens of `ids`: the first ceil(keep * head_share) and the rest from the end.

    >>> head_tail([1, 2, 3, 4, 5, 6], 4, 0.5)
    [1, 2, 5, 6]
    """
    if keep >= len(ids):
        return list(ids)
    if keep <= 0:
        return []
    head = min(keep, math.ceil(round(keep * head_share, _SHARE_DECIMALS)))
    tail = keep - head
    return list(ids[:head]) + (list(ids[len(ids) - tail:]) if tail else [])


def allocate_latest_first(lengths: list[int], budget: int) -> list[int]:
    """How many tokens each turn keeps when `budget` is spent from the last turn backwards.

    >>> allocate_latest_first([5, 3, 4], 6)
    [0, 2, 4]
    """
    kept = [0] * len(lengths)
    remaining = budget
    for i in range(len(lengths) - 1, -1, -1):
        kept[i] = min(lengths[i], remaining)
        remaining -= kept[i]
    return kept


def split_budget(prompt_tokens: int, answer_tokens: int, budget: int, prompt_share: float) -> tuple[int, int]:
    """Split `budget` between prompt and answers: the prompt gets at most floor(budget * prompt_share)
    unless the answers leave part of their share unused, and vice versa.

    >>> split_budget(100, 100, 40, 0.25)
    (10, 30)
    >>> split_budget(100, 5, 40, 0.25)
    (35, 5)
    """
    prompt_cap = math.floor(round(budget * prompt_share, _SHARE_DECIMALS))
    answers = min(answer_tokens, budget - min(prompt_tokens, prompt_cap))
    prompt = min(prompt_tokens, budget - answers)
    return prompt, answers


def fit_conversation(prompt_turns: list[list[int]], answer_turns: list[list[int]], budget: int,
                     prompt_share: float, head_share: float) -> list[int]:
    """Interleave prompt and answer turns into at most `budget` token ids (see module docstring).

    `prompt_turns[i]` and `answer_turns[i]` are the token ids of turn i; both lists have equal length.
    Returns p_0 a_0 p_1 a_1 ... with each part cut by `head_tail`; fully cut parts vanish.
    """
    if len(prompt_turns) != len(answer_turns):
        raise ValueError(f"{len(prompt_turns)} prompt turns but {len(answer_turns)} answer turns")
    prompt_lengths = [len(t) for t in prompt_turns]
    answer_lengths = [len(t) for t in answer_turns]
    prompt_budget, answer_budget = split_budget(sum(prompt_lengths), sum(answer_lengths), budget, prompt_share)
    prompt_keep = allocate_latest_first(prompt_lengths, prompt_budget)
    answer_keep = allocate_latest_first(answer_lengths, answer_budget)
    ids: list[int] = []
    for prompt, p_keep, answer, a_keep in zip(prompt_turns, prompt_keep, answer_turns, answer_keep):
        ids += head_tail(prompt, p_keep, head_share)
        ids += head_tail(answer, a_keep, head_share)
    return ids


def clip_chars(text: str, max_chars: int, head_share: float) -> str:
    """Cut `text` to `max_chars` characters keeping its head and tail, before tokenizing.

    Tokenizing a 1 MB answer only to throw most tokens away is slow; callers pick `max_chars` well above
    what the token budget can hold, so the token-level cut still decides what is kept.
    """
    if len(text) <= max_chars:
        return text
    head = math.ceil(round(max_chars * head_share, _SHARE_DECIMALS))
    return text[:head] + text[len(text) - (max_chars - head):]
