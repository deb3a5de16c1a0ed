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


def split_of(task: Any, rows: Sequence[dict], name: str = "train") -> Any:
    """In-memory rows as a Split, labelled as sample data."""
    from benchmark.data import Split
    from benchmark.results import DataInfo

    return Split(task.name, name, list(rows), DataInfo("sample", "builtin", "test", len(rows)))


def evaluate_rows(adapter: Any, task: Any, rows: Sequence[dict], **config: Any) -> list:
    """The evaluator's own pass (`predict_split`) over in-memory rows, with RunConfig overrides."""
    from benchmark.evaluator import RunConfig, predict_split

    cfg = RunConfig(model="test", quiet=True, log=lambda m: None, latency_samples=0, **config)
    return predict_split(adapter, task, split_of(task, rows, "validation"), cfg)[0]


def ready(adapter: Any, task: Any, train: Any = None) -> Any:
    """`adapter.fit(task, train)`, then the adapter itself (fit returns its Fitted record)."""
    adapter.fit(task, train)
    return adapter
