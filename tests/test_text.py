"""Token-budget truncation (arena_pref.text): exact outputs of each pure function, worked by hand."""

from __future__ import annotations

import pytest

from arena_pref.text import allocate_latest_first, clip_chars, fit_conversation, head_tail, split_budget

IDS = [1, 2, 3, 4, 5, 6]


# ----------------------------------------------------------------------------------------- head_tail

@pytest.mark.parametrize("keep, head_share, expected", [
    (4, 0.5, [1, 2, 5, 6]),      # the docstring example
    (3, 0.5, [1, 2, 6]),         # ceil(1.5) = 2 from the head, 1 from the tail
    (5, 0.5, [1, 2, 3, 5, 6]),   # ceil(2.5) = 3 from the head
    (3, 0.0, [4, 5, 6]),         # tail only
    (3, 1.0, [1, 2, 3]),         # head only
    (4, 0.25, [1, 4, 5, 6]),     # ceil(1.0) = 1 from the head
    (1, 0.5, [1]),               # ceil(0.5) = 1: a single kept token comes from the head
    (1, 0.0, [6]),
    (5, 0.9, [1, 2, 3, 4, 5]),   # ceil(4.5) = 5 = keep: no tail at all
])
def test_head_tail_exact(keep, head_share, expected):
    assert head_tail(IDS, keep, head_share) == expected


@pytest.mark.parametrize("keep", [6, 7, 100])
def test_head_tail_keeps_everything_when_it_fits(keep):
    out = head_tail(IDS, keep, 0.5)
    assert out == IDS
    assert out is not IDS  # a copy: callers concatenate onto it


@pytest.mark.parametrize("keep", [0, -1, -10])
def test_head_tail_nothing_kept(keep):
    assert head_tail(IDS, keep, 0.5) == []


def test_head_tail_accepts_tuples_and_returns_a_list():
    assert head_tail((1, 2, 3, 4, 5), 2, 0.5) == [1, 5]


def test_head_tail_exact_products_are_not_rounded_up():
    # 25 * 0.28 is 7.000000000000001 in floating point; the head must still be ceil(7) = 7 tokens.
    assert head_tail(list(range(40)), 25, 0.28) == list(range(7)) + list(range(22, 40))
    # 100 * 0.07 is 7.000000000000001 too.
    out = head_tail(list(range(200)), 100, 0.07)
    assert out[:8] == [0, 1, 2, 3, 4, 5, 6, 107]
    assert len(out) == 100


def test_head_tail_empty_input():
    assert head_tail([], 5, 0.5) == []


# ----------------------------------------------------------------------------- allocate_latest_first

@pytest.mark.parametrize("lengths, budget, expected", [
    ([5, 3, 4], 6, [0, 2, 4]),   # the docstring example
    ([5, 3, 4], 4, [0, 0, 4]),   # the last turn alone uses the budget
    ([5, 3, 4], 3, [0, 0, 3]),   # the last turn is cut, earlier turns get nothing
    ([5, 3, 4], 7, [0, 3, 4]),
    ([5, 3, 4], 8, [1, 3, 4]),
    ([5, 3, 4], 12, [5, 3, 4]),  # exactly enough
    ([5, 3, 4], 50, [5, 3, 4]),  # more than enough: nothing exceeds its length
    ([5, 3, 4], 0, [0, 0, 0]),
    ([3, 0, 2], 4, [2, 0, 2]),   # an empty turn in the middle takes nothing
    ([], 10, []),
])
def test_allocate_latest_first_exact(lengths, budget, expected):
    assert allocate_latest_first(lengths, budget) == expected


# -------------------------------------------------------------------------------------- split_budget

@pytest.mark.parametrize("prompt_tokens, answer_tokens, budget, share, expected", [
    (100, 100, 40, 0.25, (10, 30)),  # both long: the prompt gets exactly its share
    (100, 5, 40, 0.25, (35, 5)),     # short answers: their unused share flows to the prompt
    (4, 100, 40, 0.25, (4, 36)),     # short prompt: its unused share flows to the answers
    (10, 20, 40, 0.25, (10, 20)),    # everything fits
    (100, 100, 10, 0.25, (2, 8)),    # the prompt cap is floor(2.5) = 2
    (100, 100, 40, 0.0, (0, 40)),    # prompt_share 0: answers take the whole budget ...
    (100, 10, 40, 0.0, (30, 10)),    # ... but what they leave still goes to the prompt
    (100, 100, 40, 1.0, (40, 0)),    # prompt_share 1: the prompt takes the whole budget ...
    (10, 100, 40, 1.0, (10, 30)),    # ... but what it leaves still goes to the answers
    (0, 0, 40, 0.25, (0, 0)),
    (100, 100, 0, 0.25, (0, 0)),
])
def test_split_budget_exact(prompt_tokens, answer_tokens, budget, share, expected):
    assert split_budget(prompt_tokens, answer_tokens, budget, share) == expected


def test_split_budget_exact_products_are_not_rounded_down():
    # 100 * 0.29 is 28.999999999999996 in floating point; the prompt cap must be floor(29) = 29.
    assert split_budget(1000, 1000, 100, 0.29) == (29, 71)


@pytest.mark.parametrize("prompt_tokens", [0, 3, 10, 50, 500])
@pytest.mark.parametrize("answer_tokens", [0, 3, 10, 50, 500])
@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_split_budget_never_exceeds_budget_nor_wastes_it(prompt_tokens, answer_tokens, share):
    budget = 40
    prompt, answers = split_budget(prompt_tokens, answer_tokens, budget, share)
    assert 0 <= prompt <= prompt_tokens and 0 <= answers <= answer_tokens
    assert prompt + answers == min(budget, prompt_tokens + answer_tokens)


# ---------------------------------------------------------------------------------- fit_conversation

def test_fit_conversation_single_turn_cut_in_the_middle():
    prompt = [list(range(1, 11))]          # 10 tokens
    answer = [list(range(101, 121))]       # 20 tokens
    # budget 12, share 0.25: prompt cap 3, answers min(20, 9) = 9, prompt min(10, 3) = 3.
    # prompt keep 3 -> head 2 + tail 1; answer keep 9 -> head ceil(4.5) = 5 + tail 4.
    assert fit_conversation(prompt, answer, 12, 0.25, 0.5) == [
        1, 2, 10, 101, 102, 103, 104, 105, 117, 118, 119, 120]


def test_fit_conversation_keeps_everything_that_fits_interleaved():
    prompt = [[1, 2], [3, 4]]
    answer = [[11, 12, 13], [21, 22, 23]]
    assert fit_conversation(prompt, answer, 100, 0.25, 0.5) == [1, 2, 11, 12, 13, 3, 4, 21, 22, 23]


def test_fit_conversation_multi_turn_keeps_only_the_latest_turns():
    prompt = [[1, 2, 3], [4, 5]]
    answer = [[11, 12, 13, 14], [15, 16, 17]]
    # budget 5, share 0.4: prompt cap 2, answers min(7, 3) = 3, prompt 2.
    # prompt keep [0, 2], answer keep [0, 3]: turn 0 vanishes entirely.
    assert fit_conversation(prompt, answer, 5, 0.4, 0.5) == [4, 5, 15, 16, 17]


def test_fit_conversation_three_turns_answers_reach_further_back_than_prompts():
    prompt = [[1, 2], [3, 4], [5, 6]]
    answer = [[11, 12, 13], [21, 22, 23], [31, 32, 33]]
    # budget 8, share 0.25: prompt cap 2, answers min(9, 6) = 6, prompt 2.
    # prompt keep [0, 0, 2], answer keep [0, 3, 3].
    assert fit_conversation(prompt, answer, 8, 0.25, 0.5) == [21, 22, 23, 5, 6, 31, 32, 33]


def test_fit_conversation_earlier_turn_cut_head_and_tail():
    prompt = [[1], [2]]
    answer = [[10, 11, 12, 13, 14, 15], [20, 21]]
    # budget 8, share 0.25: prompt cap 2 (both prompt turns fit), answers 6.
    # answer keep [4, 2]: turn 0 keeps head 2 + tail 2.
    assert fit_conversation(prompt, answer, 8, 0.25, 0.5) == [1, 10, 11, 14, 15, 2, 20, 21]


def test_fit_conversation_prompt_share_zero_answers_first_rest_to_prompt():
    # Short answer: it takes 2, the prompt gets the remaining 2 of the budget.
    assert fit_conversation([[1, 2, 3]], [[11, 12]], 4, 0.0, 0.5) == [1, 3, 11, 12]
    # Long answer: it takes the whole budget, the prompt vanishes.
    assert fit_conversation([[1, 2, 3]], [list(range(11, 21))], 4, 0.0, 0.5) == [11, 12, 19, 20]


def test_fit_conversation_prompt_share_one_prompt_first_rest_to_answers():
    # Long prompt: it takes the whole budget, the answer vanishes.
    assert fit_conversation([list(range(1, 11))], [[11, 12]], 4, 1.0, 0.5) == [1, 2, 9, 10]
    # Short prompt: it takes 1, the answer gets 3 (head ceil(1.5) = 2, tail 1).
    assert fit_conversation([[1]], [list(range(11, 21))], 4, 1.0, 0.5) == [1, 11, 12, 20]


def test_fit_conversation_unused_answer_budget_flows_to_earlier_prompt_turns():
    prompt = [[1, 2, 3, 4], [5, 6, 7, 8]]
    answer = [[11], [21]]
    # budget 8, share 0.25: answers need 2, so the prompt gets 6 instead of its cap 2.
    # prompt keep [2, 4]: turn 0 keeps head 1 + tail 1.
    assert fit_conversation(prompt, answer, 8, 0.25, 0.5) == [1, 4, 11, 5, 6, 7, 8, 21]


def test_fit_conversation_head_share_applies_to_each_cut():
    prompt = [list(range(1, 11))]
    answer = [list(range(101, 111))]
    # budget 8, share 0.5: 4 + 4; head_share 0 keeps tails, 1 keeps heads.
    assert fit_conversation(prompt, answer, 8, 0.5, 0.0) == [7, 8, 9, 10, 107, 108, 109, 110]
    assert fit_conversation(prompt, answer, 8, 0.5, 1.0) == [1, 2, 3, 4, 101, 102, 103, 104]


def test_fit_conversation_empty_turns_vanish():
    # A null turn parsed to "" tokenizes to nothing; it must not break the interleaving.
    assert fit_conversation([[1, 2], []], [[11], [21, 22]], 100, 0.25, 0.5) == [1, 2, 11, 21, 22]


def test_fit_conversation_zero_budget():
    assert fit_conversation([[1, 2]], [[3, 4]], 0, 0.25, 0.5) == []


def test_fit_conversation_uneven_turn_lists_rejected():
    with pytest.raises(ValueError, match="2 prompt turns but 1 answer turns"):
        fit_conversation([[1], [2]], [[3]], 10, 0.25, 0.5)


@pytest.mark.parametrize("budget", [1, 5, 9, 17, 40])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_fit_conversation_length_is_min_of_budget_and_total(budget, share):
    prompt = [[1] * 7, [2] * 3, [3] * 5]
    answer = [[4] * 2, [5] * 9, [6] * 4]
    out = fit_conversation(prompt, answer, budget, share, 0.5)
    assert len(out) == min(budget, 30)


# ---------------------------------------------------------------------------------------- clip_chars

@pytest.mark.parametrize("text, max_chars, head_share, expected", [
    ("abcdefghij", 4, 0.5, "abij"),
    ("abcdefghij", 5, 0.5, "abcij"),   # ceil(2.5) = 3 from the head
    ("abcdefghij", 3, 0.0, "hij"),
    ("abcdefghij", 3, 1.0, "abc"),
    ("abcdefghij", 10, 0.5, "abcdefghij"),  # exactly at the limit: untouched
    ("abc", 10, 0.5, "abc"),
    ("", 5, 0.5, ""),
    ("abcdefghij", 0, 0.5, ""),
])
def test_clip_chars_exact(text, max_chars, head_share, expected):
    assert clip_chars(text, max_chars, head_share) == expected


def test_clip_chars_exact_products_are_not_rounded_up():
    text = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"  # 40 characters
    # 25 * 0.28 is 7.000000000000001 in floating point; the head is still 7 characters, the tail 18.
    assert clip_chars(text, 25, 0.28) == "abcdefg" + "wxyz0123456789ABCD"
