"""Extractive-QA answer decoding over overlapping windows: pure numpy, no torch.

A context longer than the model's input is cut into windows that overlap by `doc_stride`
tokens; the model scores every token of every window as an answer start and an answer end.
The answer is the best (start, end) pair found in any single window:

* score = start_logit + end_logit, end >= start, at most `max_answer_length` tokens;
* both ends must be context tokens (question, special and padding tokens carry no offset),
  so a span can never touch the question however large its logits;
* only the `n_best` highest start and end logits of a window are paired (speed);
* ties go to the earliest window, then the earliest start, then the earliest end, so the
  answer never depends on anything but the logits.

Offsets are *character* offsets into the original context (what fast tokenizers return),
so the answer is `context[char_start:char_end]`, exact even for multi-byte characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

# One window's offset mapping: per token (char_start, char_end) in the context, or None for a
# token that is not context; an (n_tokens, 2) integer array with -1 rows for those works too.
Offsets = Any


@dataclass(frozen=True)
class Span:
    """The chosen answer and where it came from."""

    text: str
    score: float
    char_start: int
    char_end: int
    window: int
    start: int  # token index of the first answer token in its window
    end: int    # token index of the last answer token (inclusive)


def context_offsets(offsets: Offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(char_starts, char_ends, is_context) per token; None or negative offsets mark non-context."""
    if isinstance(offsets, np.ndarray):
        arr = offsets.astype(np.int64, copy=False).reshape(-1, 2)
        valid = (arr[:, 0] >= 0) & (arr[:, 1] >= 0)
        return arr[:, 0], arr[:, 1], valid
    n = len(offsets)
    starts, ends = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    for i, pair in enumerate(offsets):
        if pair is not None and pair[0] is not None and pair[0] >= 0:
            starts[i], ends[i], valid[i] = pair[0], pair[1], True
    return starts, ends, valid


def top_k(logits: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """Token indices of the k highest valid logits, in token order (ties keep the earlier token)."""
    idx = np.flatnonzero(valid)
    if idx.size > k:
        keep = np.argsort(-logits[idx], kind="stable")[:k]
        idx = np.sort(idx[keep])
    return idx


def best_in_window(start_logits: Any, end_logits: Any, offsets: Offsets, *, max_answer_length: int = 30,
                   n_best: int = 20) -> tuple[float, int, int] | None:
    """(score, start, end) of one window's best valid span, or None when it has none."""
    start = _as_logits(start_logits)
    end = _as_logits(end_logits)
    char_starts, char_ends, valid = context_offsets(offsets)
    if not (start.shape == end.shape == valid.shape):
        raise ValueError(f"a window has {start.size} start logits, {end.size} end logits and "
                         f"{valid.size} offsets; they must be equal")
    s_idx, e_idx = top_k(start, valid, n_best), top_k(end, valid, n_best)
    if s_idx.size == 0 or e_idx.size == 0:
        return None
    length = e_idx[None, :] - s_idx[:, None] + 1
    allowed = (length >= 1) & (length <= max_answer_length) & (char_ends[e_idx][None, :] > char_starts[s_idx][:, None])
    rows, cols = np.nonzero(allowed)  # row-major: start ascending, then end ascending
    if rows.size == 0:
        return None
    scores = start[s_idx[rows]] + end[e_idx[cols]]
    pick = int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))  # first maximum: earliest start, then end
    return float(scores[pick]), int(s_idx[rows[pick]]), int(e_idx[cols[pick]])


def best_span(start_logits: Sequence[Any], end_logits: Sequence[Any], offsets: Sequence[Offsets], context: str, *,
              max_answer_length: int = 30, n_best: int = 20) -> Span | None:
    """The best span over all windows of one example, or None when no window has a valid span."""
    if not (len(start_logits) == len(end_logits) == len(offsets)):
        raise ValueError(f"got {len(start_logits)} start, {len(end_logits)} end and {len(offsets)} offset windows")
    if max_answer_length < 1 or n_best < 1:
        raise ValueError(f"max_answer_length ({max_answer_length}) and n_best ({n_best}) must be positive")
    best: Span | None = None
    for w, (s, e, offs) in enumerate(zip(start_logits, end_logits, offsets)):
        found = best_in_window(s, e, offs, max_answer_length=max_answer_length, n_best=n_best)
        if found is None or (best is not None and not found[0] > best.score):
            continue  # strictly better only: ties keep the earlier window
        score, i, j = found
        char_starts, char_ends, _ = context_offsets(offs)
        a, b = int(char_starts[i]), int(char_ends[j])
        best = Span(context[a:b], score, a, b, w, i, j)
    return best


def best_answer(start_logits: Sequence[Any], end_logits: Sequence[Any], offsets: Sequence[Offsets], context: str, *,
                max_answer_length: int = 30, n_best: int = 20) -> tuple[str, float]:
    """(answer text, score); ('', -inf) when no window holds a valid span."""
    span = best_span(start_logits, end_logits, offsets, context, max_answer_length=max_answer_length, n_best=n_best)
    return ("", float("-inf")) if span is None else (span.text, span.score)


def _as_logits(values: Any) -> np.ndarray:
    """float64, so a score is the same sum whichever precision the model ran in."""
    return np.asarray(values, dtype=np.float64).reshape(-1)
