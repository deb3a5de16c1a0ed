"""Span decoding over overlapping windows, on hand-made logits (no model, no torch)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from benchmark.models.qa_spans import best_answer, best_in_window, best_span, context_offsets, top_k

LOW = -10.0


def words(context: str) -> list[tuple[int, int]]:
    """Character offsets of the whitespace-separated words: one token per word."""
    return [m.span() for m in re.finditer(r"\S+", context)]


def windows(context: str, question_tokens: int, size: int, stride: int):
    """[CLS] q.. [SEP] ctx.. [SEP] windows like a fast tokenizer's, overlapping by `stride` tokens.

    Returns per window (offsets with None off-context, index of the first context token,
    the context-token range it covers)."""
    spans = words(context)
    room = size - question_tokens - 3
    out, lo = [], 0
    while True:
        hi = min(lo + room, len(spans))
        offsets = [None] * (question_tokens + 2) + spans[lo:hi] + [None]
        out.append((offsets, question_tokens + 2, (lo, hi)))
        if hi == len(spans):
            return out
        lo = hi - stride


def logits_for(win, answer: tuple[int, int] | None, value: float = 8.0):
    """Flat low logits, with high start/end on the context tokens of `answer` (word indices)."""
    offsets, first, (lo, hi) = win
    start, end = np.full(len(offsets), LOW), np.full(len(offsets), LOW)
    if answer is not None:
        a, b = answer
        if lo <= a < hi:
            start[first + a - lo] = value
        if lo <= b < hi:
            end[first + b - lo] = value
    return start, end


def decode(wins, starts, ends, context, **kw):
    return best_span(starts, ends, [w[0] for w in wins], context, **kw)


CONTEXT = " ".join(f"w{i:02d}" for i in range(40))


def test_answer_across_a_window_boundary_comes_from_the_window_that_holds_it_whole():
    wins = windows(CONTEXT, question_tokens=3, size=20, stride=6)
    assert len(wins) >= 3
    _, hi0 = wins[0][2]
    lo1, hi1 = wins[1][2]
    a, b = hi0 - 2, hi0 + 1            # starts inside window 0's tail (the overlap), ends after it
    assert lo1 <= a and b < hi1        # ... so only window 1 holds the whole span
    starts, ends = zip(*(logits_for(w, (a, b)) for w in wins))
    span = decode(wins, starts, ends, CONTEXT)
    assert span.window == 1
    assert span.text == " ".join(f"w{i:02d}" for i in range(a, b + 1))
    assert span.score == pytest.approx(16.0)


def test_long_context_over_more_than_three_windows():
    context = " ".join(f"t{i:03d}" for i in range(120))
    wins = windows(context, question_tokens=4, size=24, stride=5)
    assert len(wins) > 3
    a, b = 101, 103
    starts, ends = zip(*(logits_for(w, (a, b)) for w in wins))
    span = decode(wins, starts, ends, context)
    assert span.text == "t101 t102 t103"
    assert context[span.char_start:span.char_end] == span.text
    assert wins[span.window][2][0] <= a and b < wins[span.window][2][1]


@pytest.mark.parametrize("answer, expected", [((0, 1), "w00 w01"), ((38, 39), "w38 w39"), ((0, 0), "w00"),
                                              ((39, 39), "w39")])
def test_answers_at_the_very_start_and_end_of_the_context(answer, expected):
    wins = windows(CONTEXT, question_tokens=2, size=16, stride=4)
    starts, ends = zip(*(logits_for(w, answer) for w in wins))
    assert decode(wins, starts, ends, CONTEXT).text == expected


def test_unicode_context_uses_character_offsets():
    context = "Zoë Łukasz — café über naïve 東京"
    wins = windows(context, question_tokens=2, size=10, stride=2)
    spans = words(context)
    for a, b, expected in ((0, 1, "Zoë Łukasz"), (2, 3, "— café"), (5, 6, "naïve 東京"), (1, 1, "Łukasz")):
        starts, ends = zip(*(logits_for(w, (a, b)) for w in wins))
        span = decode(wins, starts, ends, context)
        assert span.text == expected
        assert (span.char_start, span.char_end) == (spans[a][0], spans[b][1])
    assert len(context.encode()) > len(context)  # multi-byte: byte offsets would be wrong


def test_question_and_special_tokens_are_never_chosen_even_with_huge_logits():
    wins = windows(CONTEXT, question_tokens=3, size=20, stride=6)
    starts, ends = [], []
    for w in wins:
        s, e = logits_for(w, (5, 6), value=1.0)
        offsets, first, _ = w
        s[:first], e[:first] = 1e6, 1e6            # [CLS] and the question
        s[-1], e[-1] = 1e6, 1e6                    # the final [SEP]
        starts.append(s)
        ends.append(e)
    assert decode(wins, starts, ends, CONTEXT).text == "w05 w06"


def test_padding_tokens_are_not_context():
    offsets = [None, (0, 1), None, (0, 3), (4, 7), None, None, None]  # 3 padding tokens at the end
    start = np.array([0, 0, 0, 1, 0, 0, 50, 50.0])
    end = np.array([0, 0, 0, 0, 1, 50, 50, 50.0])
    assert best_answer([start], [end], [offsets], "abc def") == ("abc def", 2.0)


def test_max_answer_length_is_respected():
    wins = windows(CONTEXT, question_tokens=2, size=60, stride=4)
    assert len(wins) == 1
    s, e = logits_for(wins[0], (3, 12))       # the favourite spans 10 tokens
    first = wins[0][1]
    s[first + 10] = 5.0                       # a weaker start 3 tokens before the favourite end
    assert decode(wins, [s], [e], CONTEXT, max_answer_length=10).text == " ".join(f"w{i:02d}" for i in range(3, 13))
    span = decode(wins, [s], [e], CONTEXT, max_answer_length=9)
    assert span.text == "w10 w11 w12"
    assert span.end - span.start + 1 <= 9


def test_end_before_start_is_never_chosen():
    offsets = [None, (0, 1), (2, 3), (4, 5), None]
    start = np.array([0, 0, 0, 9, 0.0])   # best start is the last context token
    end = np.array([0, 9, 0, 0, 0.0])     # best end is the first
    span = best_span([start], [end], [offsets], "a b c")
    assert span.start <= span.end
    assert span.score == pytest.approx(9.0)


def test_ties_go_to_the_earliest_window_then_the_earliest_start():
    context = "a b c d"
    offsets = [[None, (0, 1), (2, 3), (4, 5), (6, 7), None]] * 2
    flat = np.zeros(6)
    span = best_span([flat, flat], [flat, flat], offsets, context)
    assert (span.window, span.start, span.end, span.text) == (0, 1, 1, "a")
    later = np.array([0, 0, 1, 0, 0, 0.0])
    span = best_span([flat, later], [flat, later], offsets, context)
    assert (span.window, span.text) == (1, "b")


def test_no_valid_span_gives_an_empty_answer():
    offsets = [None, None, None]
    assert best_answer([np.ones(3)], [np.ones(3)], [offsets], "whatever") == ("", float("-inf"))
    assert best_span([], [], [], "") is None


def test_top_k_limits_candidates_and_keeps_token_order():
    logits = np.array([5, 1, 9, 9, 3, 7.0])
    valid = np.array([True, True, True, False, True, True])
    assert top_k(logits, valid, 2).tolist() == [2, 5]
    assert top_k(logits, valid, 10).tolist() == [0, 1, 2, 4, 5]


def test_offsets_as_an_array_with_minus_one_off_context():
    arr = np.array([[-1, -1], [0, 3], [4, 7], [-1, -1]])
    starts, ends, valid = context_offsets(arr)
    assert valid.tolist() == [False, True, True, False]
    assert best_in_window(np.array([0, 2, 1, 99.0]), np.array([0, 1, 2, 99.0]), arr) == (4.0, 1, 2)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError):
        best_span([np.zeros(3)], [np.zeros(4)], [[None] * 3], "x")
    with pytest.raises(ValueError):
        best_span([np.zeros(3)], [np.zeros(3)], [[None] * 3, [None] * 3], "x")
