"""Latency and memory measured the way serving engineers do: warm-up first, device synced around
every clock read, percentiles over a fixed sample rather than a mean over a lucky run."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np


@contextmanager
def stopwatch(sync: Callable[[], None] = lambda: None) -> Iterator[list[float]]:
    """`with stopwatch(sync) as t: ...` then `t[0]` holds the seconds, with queued device work included."""
    out: list[float] = []
    sync()
    start = time.perf_counter()
    try:
        yield out
    finally:
        sync()
        out.append(time.perf_counter() - start)


def latency_ms(call: Callable[[int], object], indices: Sequence[int], *, warmup: int,
               sync: Callable[[], None]) -> dict[str, float] | None:
    """p50/p95 of `call(i)` over `indices` (one example each), after `warmup` untimed calls."""
    if not indices:
        return None
    for i in list(indices)[: max(0, warmup)]:
        call(i)
    sync()
    samples = []
    for i in indices:
        start = time.perf_counter()
        call(i)
        sync()
        samples.append((time.perf_counter() - start) * 1000.0)
    p50, p95 = np.percentile(samples, [50, 95])
    return {"p50": round(float(p50), 4), "p95": round(float(p95), 4)}


def peak_memory_mb(device: str) -> float:
    """Peak device memory on CUDA (since the last reset); the process's peak RSS on the CPU."""
    if device.startswith("cuda"):
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
