"""The BiLSTM family's text side: a regex tokenizer with character offsets, the word and character
vocabularies, and the encoded items the networks read.

Deterministic by construction: vocabularies break frequency ties by spelling, so two runs on the
same text give the same ids. numpy only; no torch.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

PAD, UNK, BOW, EOW = 0, 1, 2, 3  # word ids use PAD/UNK; character ids use all four
WORD_SPECIALS = ("<pad>", "<unk>")
CHAR_SPECIALS = ("<pad>", "<unk>", "<bow>", "<eow>")

# Numbers with separators (1,200 / 3.5), words with inner apostrophes (don't, o'neill),
# clitics as in PTB text (it 's, does n't), then any other single non-space character.
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|\w+(?:['’]\w+)*|['’]\w+|[^\w\s]")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(surface, char_start, char_end) per token; words are lower-cased later, chars keep case."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]



@dataclass
class Seq:
    """One text as ids: words (n,) and fixed-width characters (n, max_word_chars)."""

    words: np.ndarray
    chars: np.ndarray


@dataclass
class Item:
    """One encoded example: one or two Seqs, or a question and a context for QA."""

    seqs: tuple[Seq, ...]
    label: int | None = None
    context: str | None = None
    offsets: np.ndarray | None = None   # (n, 2) character offsets of context tokens
    em: np.ndarray | None = None        # context token also occurs in the question (DrQA feature)
    span: tuple[int, int] | None = None  # training target: first and last answer token

    @property
    def has_target(self) -> bool:
        return self.label is not None or self.span is not None


class Vocab:
    """Lower-cased words and case-sensitive characters, both ordered by (-count, spelling)."""

    def __init__(self, words: Sequence[str], chars: Sequence[str], max_word_chars: int) -> None:
        self.words, self.chars = list(words), list(chars)
        self.max_word_chars = max_word_chars
        self._w = {w: i for i, w in enumerate(self.words)}
        self._c = {c: i for i, c in enumerate(self.chars)}
        self._rows: dict[str, np.ndarray] = {}

    @classmethod
    def build(cls, surfaces: Iterable[str], *, vocab_size: int, min_freq: int, max_chars: int,
              max_word_chars: int, specials: Sequence[str] = WORD_SPECIALS) -> "Vocab":
        """Words (lower-cased) seen at least `min_freq` times and characters, most frequent first."""
        word_counts: Counter[str] = Counter()
        char_counts: Counter[str] = Counter()
        for surface in surfaces:
            word_counts[surface.lower()] += 1
            char_counts.update(surface)
        ranked = sorted(word_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, n in ranked if n >= min_freq and w not in specials][:vocab_size]
        chars = [c for c, _ in sorted(char_counts.items(), key=lambda kv: (-kv[1], kv[0]))][:max_chars]
        return cls(list(specials) + words, list(CHAR_SPECIALS) + chars, max_word_chars)

    def char_row(self, surface: str) -> np.ndarray:
        row = self._rows.get(surface)
        if row is None:
            ids = [BOW] + [self._c.get(ch, UNK) for ch in surface[: self.max_word_chars - 2]] + [EOW]
            row = np.zeros(self.max_word_chars, dtype=np.int16)
            row[: len(ids)] = ids
            if len(self._rows) < 500_000:
                self._rows[surface] = row
        return row

    def seq(self, surfaces: Sequence[str]) -> Seq:
        surfaces = list(surfaces) or [""]  # an empty text still has one (unknown) token
        words = np.fromiter((self._w.get(s.lower(), UNK) for s in surfaces), dtype=np.int32, count=len(surfaces))
        return Seq(words, np.stack([self.char_row(s) for s in surfaces]))

    def state(self) -> dict[str, Any]:
        return {"words": self.words, "chars": self.chars, "max_word_chars": self.max_word_chars}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Vocab":
        return cls(state["words"], state["chars"], int(state["max_word_chars"]))
