"""Property tests (hypothesis): turn parsing, truncation, swapping and the submission order.

Each property is the invariant a docstring promises, checked on generated inputs; the exact examples
live in test_data.py, test_text.py, test_swap.py and test_submission.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from arena_pref.data import RepairCounts, parse_turns
from arena_pref.labels import LABEL_COLUMNS, TIE
from arena_pref.submission import build_submission
from arena_pref.swap import swap_label, swap_pairs, swap_probs
from arena_pref.text import allocate_latest_first, fit_conversation, head_tail, split_budget

# database=None: no .hypothesis folder left in the repository; deadline=None: the CPU is shared.
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


# Text with lone surrogates and NULs much more often than st.text() alone would give them.
SURROGATE = st.characters(categories=["Cs"])
TEXT = st.text(st.one_of(st.characters(), SURROGATE, st.just("\x00")), max_size=12)
TURNS = st.lists(st.one_of(st.none(), TEXT), min_size=1, max_size=6)
PLAIN = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")  # needs no repair


# ------------------------------------------------------------------------------------------ parse_turns

@PROPERTY
@given(turns=TURNS, ensure_ascii=st.booleans())
def test_parse_turns_round_trip(turns, ensure_ascii):
    counts = RepairCounts()
    out = parse_turns(json.dumps(turns, ensure_ascii=ensure_ascii), counts)  # never raises on a list of str/None
    assert len(out) == len(turns)
    assert counts.null_turns == sum(t is None for t in turns)
    assert counts.nul_bytes == sum(t is not None and "\x00" in t for t in turns)
    assert counts.lone_surrogates <= sum(t is not None and _has_surrogate(t) for t in turns)
    for turn, got in zip(turns, out):
        got.encode("utf-8")  # every output is valid UTF-8 text
        assert "\x00" not in got
        if turn is None:
            assert got == ""
        elif not _has_surrogate(turn):
            assert got == turn.replace("\x00", "")  # only NULs are removed


@PROPERTY
@given(turns=st.lists(st.text(PLAIN, max_size=12), min_size=1, max_size=6))
def test_parse_turns_clean_text_unchanged_and_uncounted(turns):
    counts = RepairCounts()
    assert parse_turns(json.dumps(turns), counts) == turns
    assert counts == RepairCounts()


@PROPERTY
@given(prefix=st.text(PLAIN, max_size=5), code=st.integers(0xD800, 0xDFFF), suffix=st.text(PLAIN, max_size=5))
def test_parse_turns_lone_surrogate_escape_always_repaired(prefix, code, suffix):
    # The escape as Kaggle's file holds it, "\udXXX" in JSON text; a following "\udc00".."\udfff" escape
    # could pair with it, so the suffix is plain text (PLAIN holds no surrogates).
    cell = "[" + json.dumps(prefix)[:-1] + f"\\u{code:04x}" + json.dumps(suffix)[1:] + "]"
    counts = RepairCounts()
    out = parse_turns(cell, counts)
    assert out == [prefix + "\ufffd" + suffix]
    assert counts.lone_surrogates == 1


# -------------------------------------------------------------------------------------------------- text

SHARE = st.integers(0, 100).map(lambda k: k / 100)


@PROPERTY
@given(n=st.integers(0, 60), keep=st.integers(-3, 70), head_share=SHARE)
def test_head_tail_keeps_a_prefix_and_a_suffix(n, keep, head_share):
    ids = list(range(100, 100 + n))  # distinct ids: where the head ends is unambiguous
    out = head_tail(ids, keep, head_share)
    assert len(out) == max(0, min(keep, n))
    if keep >= n:
        assert out == ids
        return
    head = 0
    while head < len(out) and out[head] == ids[head]:
        head += 1
    tail = len(out) - head
    assert out[head:] == ids[n - tail:]  # the rest is a suffix of ids
    if keep > 0:
        # ceil(keep * head_share) tokens from the start (exact for shares of whole percents)
        assert head == -(-keep * round(head_share * 100) // 100)


@PROPERTY
@given(lengths=st.lists(st.integers(0, 30), max_size=8), budget=st.integers(0, 150))
def test_allocate_latest_first(lengths, budget):
    kept = allocate_latest_first(lengths, budget)
    assert len(kept) == len(lengths)
    assert sum(kept) == min(budget, sum(lengths))
    assert all(0 <= k <= n for k, n in zip(kept, lengths))
    for later in range(len(lengths)):
        if kept[later] < lengths[later]:  # a cut turn: nothing earlier gets a token
            assert all(k == 0 for k in kept[:later])


@PROPERTY
@given(prompt=st.integers(0, 500), answers=st.integers(0, 500), budget=st.integers(0, 600), share=SHARE)
def test_split_budget_rules(prompt, answers, budget, share):
    got_prompt, got_answers = split_budget(prompt, answers, budget, share)
    cap = budget * round(share * 100) // 100  # floor(budget * share), exact
    assert 0 <= got_prompt <= prompt and 0 <= got_answers <= answers
    assert got_prompt + got_answers == min(prompt + answers, budget)  # within budget, nothing wasted
    assert got_prompt >= min(prompt, cap)  # each side always gets its own share ...
    assert got_answers >= min(answers, budget - cap)
    if got_answers < answers:  # ... and the prompt exceeds its cap only with tokens the answers leave
        assert got_prompt == min(prompt, cap)


TURN_LENGTHS = st.lists(st.tuples(st.integers(0, 25), st.integers(0, 25)), min_size=1, max_size=5)


@PROPERTY
@given(lengths=TURN_LENGTHS, budget=st.integers(0, 120), prompt_share=SHARE, head_share=SHARE)
def test_fit_conversation(lengths, budget, prompt_share, head_share):
    # Distinct ids: prompt turn i is 10_000 * (2i + 1) + k, answer turn i is 10_000 * (2i + 2) + k.
    prompt_turns = [[10_000 * (2 * i + 1) + k for k in range(p)] for i, (p, _) in enumerate(lengths)]
    answer_turns = [[10_000 * (2 * i + 2) + k for k in range(a)] for i, (_, a) in enumerate(lengths)]
    out = fit_conversation(prompt_turns, answer_turns, budget, prompt_share, head_share)

    total = sum(p + a for p, a in lengths)
    assert len(out) == min(total, budget)
    interleaved = [t for p, a in zip(prompt_turns, answer_turns) for t in p + a]
    assert out == sorted(out) == [t for t in interleaved if t in set(out)]  # a subsequence, in order
    kept_prompt = sum((t // 10_000) % 2 == 1 for t in out)
    expected = split_budget(sum(p for p, _ in lengths), sum(a for _, a in lengths), budget, prompt_share)
    assert (kept_prompt, len(out) - kept_prompt) == expected
    for turns in (prompt_turns, answer_turns):  # per role, latest turns first
        kept = [sum(t in set(out) for t in turn) for turn in turns]
        assert kept == allocate_latest_first([len(t) for t in turns], sum(kept))
        for turn, k in zip(turns, kept):
            assert [t for t in out if t in set(turn)] == head_tail(turn, k, head_share)


# -------------------------------------------------------------------------------------------------- swap

@PROPERTY
@given(label=st.sampled_from([-1, 0, 1, 2]))
def test_swap_label_involution(label):
    assert swap_label(swap_label(label)) == label
    assert (swap_label(label) == label) == (label in (-1, TIE))  # only a tie (or unknown) stays put


@PROPERTY
@given(probs=hnp.arrays(np.float64, st.tuples(st.integers(0, 12), st.just(3)),
                        elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_swap_probs_involution_and_tie_column(probs):
    swapped = swap_probs(probs)
    np.testing.assert_array_equal(swap_probs(swapped), probs)
    np.testing.assert_array_equal(swapped[:, 2], probs[:, 2])  # a tie stays a tie
    np.testing.assert_array_equal(swapped[:, [0, 1]], probs[:, [1, 0]])


@st.composite
def featurized_pairs(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 8))
    ids = st.lists(st.integers(0, 500), max_size=6)
    stats = st.lists(st.floats(0, 2, width=32), min_size=2, max_size=2).map(lambda v: np.asarray(v, np.float32))
    return pd.DataFrame({
        "id": [str(i) for i in range(n)],
        "fold": draw(st.lists(st.integers(-1, 4), min_size=n, max_size=n)),
        "label": draw(st.lists(st.sampled_from([-1, 0, 1, 2]), min_size=n, max_size=n)),
        "swapped": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "a_ids": draw(st.lists(ids, min_size=n, max_size=n)),
        "b_ids": draw(st.lists(ids, min_size=n, max_size=n)),
        "a_stats": draw(st.lists(stats, min_size=n, max_size=n)),
        "b_stats": draw(st.lists(stats, min_size=n, max_size=n)),
    })


@settings(PROPERTY, max_examples=100)  # building DataFrames is the slow part
@given(pairs=featurized_pairs())
def test_swap_pairs_involution(pairs):
    original = pairs.copy(deep=True)
    once = swap_pairs(pairs)
    pd.testing.assert_frame_equal(swap_pairs(once), original)
    pd.testing.assert_frame_equal(pairs, original)  # the input is not modified
    assert once["a_ids"].tolist() == original["b_ids"].tolist()
    assert once["b_ids"].tolist() == original["a_ids"].tolist()
    assert (once["swapped"] == ~original["swapped"]).all()
    ties = original["label"] == TIE
    assert (once.loc[ties, "label"] == TIE).all()
    assert once[["id", "fold"]].equals(original[["id", "fold"]])


# -------------------------------------------------------------------------------------------- submission

@st.composite
def predictions(draw):
    n = draw(st.integers(1, 20))
    expected = draw(st.lists(st.integers(0, 10**6).map(str), min_size=n, max_size=n, unique=True))
    order = draw(st.permutations(range(n)))
    weights = draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(0.01, 100)))
    probs = weights / weights.sum(axis=1, keepdims=True)
    return expected, [expected[i] for i in order], probs


@PROPERTY
@given(case=predictions(), numeric_expected=st.booleans())
def test_build_submission_reorders_to_the_test_file(case, numeric_expected):
    expected, ids, probs = case
    out = build_submission(ids, probs, [int(i) for i in expected] if numeric_expected else expected)
    assert out["id"].tolist() == expected
    row_of = {row_id: i for i, row_id in enumerate(ids)}
    np.testing.assert_array_equal(out[list(LABEL_COLUMNS)].to_numpy(), probs[[row_of[i] for i in expected]])
    assert math.isclose(float(out[list(LABEL_COLUMNS)].to_numpy().sum()), len(expected), rel_tol=1e-9)
