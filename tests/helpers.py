"""Helpers shared by the adapter tests (pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any, Sequence


def predict_in_batches(adapter: Any, task: Any, items: Sequence[Any], batch_size: int,
                       order: Sequence[int] | None = None) -> list:
    """Drive `predict` like the evaluator: batches taken in `order`, predictions put back in item order."""
    order = list(range(len(items))) if order is None else list(order)
    out: list = [None] * len(items)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for i, p in zip(idx, adapter.predict(task, [items[i] for i in idx])):
            out[i] = p
    return out
