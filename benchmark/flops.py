"""The FLOP floor: how fast a pass could be if every FLOP ran at the machine's dense matrix rate.

A transformer spends ~2 FLOPs per non-embedding parameter per token forward and ~6 forward plus
backward (Kaplan et al. 2020). Dividing by a matrix rate measured on this machine, now, gives the
floor a run is compared against; ratios to it travel between machines, seconds do not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

FORWARD_FLOPS_PER_PARAM = 2
TRAIN_FLOPS_PER_PARAM = 6


def non_embedding_parameters(model: Any) -> int:
    """Parameters outside embedding tables: the ones that cost FLOPs per token."""
    embeddings = {id(p) for m in model.modules() if type(m).__name__ == "Embedding" for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


@dataclass(frozen=True)
class MatrixRate:
    """A dense matrix-multiply rate sampled for `seconds`: the sustained mean and the best chunk."""

    sustained_tflops: float
    burst_tflops: float
    seconds: float


def matrix_rate(device: str = "cpu", seconds: float = 5.0, sync: Callable[[], None] | None = None) -> MatrixRate:
    """fp32 2048² products on the CPU (bf16 8192² on CUDA) back to back for `seconds`.

    On a shared virtual machine the rate swings by a third from one tenth of a second to the next,
    so the sustained mean over a time scale like the pass being judged is the fair floor; the best
    chunk is kept to show what a sub-second probe would have claimed."""
    import torch

    cuda = device.startswith("cuda")
    if sync is None:
        sync = torch.cuda.synchronize if cuda else (lambda: None)
    n, dtype, reps = (8192, torch.bfloat16, 50) if cuda else (2048, torch.float32, 3)
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(reps):  # warm-up
        a @ b
    sync()
    chunks: list[float] = []
    begin = time.perf_counter()
    while not chunks or time.perf_counter() - begin < seconds:
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        chunks.append(time.perf_counter() - start)
    flops = 2 * n**3 * reps
    return MatrixRate(sustained_tflops=flops * len(chunks) / sum(chunks) / 1e12,
                      burst_tflops=flops / min(chunks) / 1e12, seconds=sum(chunks))


def floor_fraction(flops: float, seconds: float, rate_tflops: float) -> float:
    """Share of the FLOP floor a pass reached: floor seconds / measured seconds (1.0 = at the floor)."""
    return flops / (rate_tflops * 1e12) / max(seconds, 1e-12)
