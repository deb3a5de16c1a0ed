"""The BiLSTM family's training helpers: length-bucketed shuffled batches, early stopping that keeps
the best weights, span decoding and answer alignment for extractive QA, and the atomic cache file.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn


def bucket_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort pools of 50 batches by length (little padding), then shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for p in range(0, len(order), pool):
        chunk = sorted(order[p:p + pool], key=lambda i: (lengths[i], i))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def best_span(start: np.ndarray, end: np.ndarray, max_tokens: int) -> tuple[int, int]:
    """argmax of start[i] + end[j] over i <= j < i + max_tokens; ties go to the earliest (i, j)."""
    n = len(start)
    scores = start[:, None] + end[None, :]
    i, j = np.indices((n, n))
    scores = np.where((j >= i) & (j < i + max_tokens), scores, -np.inf)
    flat = int(np.argmax(scores))
    return flat // n, flat % n


def align_answer(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last token overlapping the answer's characters [start, end), or None."""
    overlap = np.flatnonzero((offsets[:, 1] > start) & (offsets[:, 0] < end))
    if overlap.size == 0:
        return None
    return int(overlap[0]), int(overlap[-1])


@dataclass
class EarlyStopping:
    """Keeps the best weights by (held-out metric, then lower held-out loss); stops after `patience` misses."""

    patience: int
    best: tuple[float, float] | None = None  # (metric, -loss)
    state: dict[str, torch.Tensor] | None = None
    misses: int = 0

    @property
    def stop(self) -> bool:
        return self.misses >= self.patience

    @property
    def shown(self) -> str:
        return "-" if self.best is None else f"{self.best[0]:.1f}"

    def update(self, result: tuple[float, float], net: nn.Module, counts: bool = True) -> bool:
        """True when `net` is the best so far (its weights are then copied); `counts`: a miss counts."""
        key = (result[0], -result[1])
        if self.best is None or key > self.best:
            self.best, self.misses = key, 0
            self.state = copy.deepcopy(net.state_dict())
            return True
        self.misses += int(counts)
        return False


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through the one atomic writer: a crash never leaves a half file to be loaded."""
    from ..storage import write_atomic

    write_atomic(path, lambda fh: torch.save(obj, fh))
