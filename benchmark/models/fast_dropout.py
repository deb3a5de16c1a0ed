"""Dropout masks for CPU training drawn from numpy's SFC64 bit generator.

torch's CPU dropout draws one Mersenne Twister number per element, in one thread whatever the
thread count: in `make perf`'s MiniLM fine-tune it was a tenth of every step on 2 threads and did
not shrink with a second thread. Two 32-bit lanes of one 64-bit SFC64 draw give two elements, and
the mask, the comparison and the product stay three vectorised passes: 4-5x cheaper per call here.

The mask keeps an element with probability round((1 - p) * 2**32) / 2**32, within 2**-32 of 1 - p,
and scales kept elements by 1 / (1 - p) exactly as torch does. The stream is seeded by the run's
seed, so it is repeatable, but it is not torch's stream: the same seed trains different weights
than `torch.nn.functional.dropout` would.
"""

from __future__ import annotations

from typing import Any

GENERATOR = "numpy SFC64"


def _torch_function_mode() -> type:
    from torch.overrides import TorchFunctionMode

    return TorchFunctionMode


def cpu_dropout(seed: int) -> Any:
    """A context in which `torch.nn.functional.dropout` (and so every `nn.Dropout`) on CPU float
    tensors in training draws its mask from SFC64(seed); other calls pass through untouched."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    class CpuDropout(_torch_function_mode()):
        def __init__(self) -> None:
            super().__init__()
            self.bits = np.random.SFC64(seed)
            self.calls = 0

        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            if func is F.dropout:
                x, p, training, inplace = _dropout_arguments(args, kwargs)
                if training and 0.0 < p < 1.0 and x.device.type == "cpu" and x.is_floating_point():
                    self.calls += 1
                    scaled = self.scaled_mask(tuple(x.shape), p).to(x.dtype)
                    return x.mul_(scaled) if inplace else x * scaled
            return func(*args, **kwargs)

        def scaled_mask(self, shape: tuple[int, ...], p: float) -> Any:
            """1 / (1 - p) where an element is kept, 0 where it is dropped (float32)."""
            n = int(np.prod(shape, dtype=np.int64))
            lanes = self.bits.random_raw((n + 1) // 2).view(np.int32)[:n].reshape(shape)
            # signed lanes: keep when the uniform 32-bit value falls below round((1 - p) * 2**32)
            keep_below = round((1.0 - p) * 2**32) - 2**31
            return torch.from_numpy(lanes).lt(keep_below).mul(1.0 / (1.0 - p))

    return CpuDropout()


def _dropout_arguments(args: tuple, kwargs: dict) -> tuple[Any, float, bool, bool]:
    """`F.dropout(input, p=0.5, training=True, inplace=False)`, however the call spelled them."""
    names = ("input", "p", "training", "inplace")
    given = {**dict(zip(names, args)), **kwargs}
    return given["input"], float(given.get("p", 0.5)), bool(given.get("training", True)), \
        bool(given.get("inplace", False))
