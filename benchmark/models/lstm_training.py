"""The BiLSTM family's training loop: Adam with clipping over length-bucketed shuffled batches, early
stopping on a held-out slice of the train split that keeps the best weights, and learning-rate decay
after a miss; with span decoding and answer alignment for extractive QA, and the atomic cache file.

The loop knows nothing of tasks or items: a model hands it its forward pass, loss and decoding (`Steps`).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .lstm_config import TrainConfig

if TYPE_CHECKING:
    from ..tasks import TaskSpec


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


@dataclass(frozen=True)
class Steps:
    """What the loop needs from a model: a forward pass over a batch of items, the loss on its output
    (items without a target are left out), predictions decoded from it, and an item's length in tokens."""

    forward: Callable[[list[Any]], Any]
    loss: Callable[[Any, list[Any]], torch.Tensor]
    decode: Callable[[Any, list[Any]], list[Any]]
    length: Callable[[Any], int]


def train_loop(net: nn.Module, groups: list[dict[str, Any]], items: list[Any], held: list[Any],
               score: Callable[[list[Any]], float], cfg: TrainConfig, steps: Steps, *, seed: int, desc: str,
               quiet: bool) -> tuple[float | None, float]:
    """Adam with clipping; early stopping on the held-out slice; the best weights are kept.
    Returns (best held-out metric or None without a held-out slice, the epoch budget used)."""
    from tqdm.auto import tqdm

    optimizer = torch.optim.Adam(groups)
    rng = random.Random(seed)
    lengths = [steps.length(it) for it in items]
    per_epoch = math.ceil(len(items) / cfg.train_batch_size)
    epochs = cfg.epochs or min(20.0, max(3.0, cfg.token_budget / max(1, sum(lengths))))
    total = max(1, math.ceil(epochs * per_epoch))
    every = max(1, math.ceil(per_epoch / cfg.evals_per_epoch))
    stopper, step = EarlyStopping(cfg.patience), 0
    with tqdm(total=total, desc=desc, unit="batch", disable=True if quiet else None, leave=False) as bar:
        while step < total and not stopper.stop:
            for idx in bucket_batches(lengths, cfg.train_batch_size, rng):
                loss = _step(net, [items[i] for i in idx], optimizer, steps, cfg.clip_norm)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", heldout=stopper.shown)
                if held and (step % every == 0 or step == total):
                    counts = step >= cfg.min_epochs * per_epoch  # early plateaus are not misses
                    if not stopper.update(heldout(net, held, steps, score), net, counts) and counts:
                        for group in optimizer.param_groups:
                            group["lr"] *= cfg.lr_decay
                if step >= total or stopper.stop:
                    break
    if stopper.state is not None:
        net.load_state_dict(stopper.state)
    net.eval()
    return (None if stopper.best is None else stopper.best[0]), epochs


def _step(net: nn.Module, batch: list[Any], optimizer: torch.optim.Optimizer, steps: Steps, clip_norm: float) -> float:
    net.train()
    optimizer.zero_grad(set_to_none=True)
    loss = steps.loss(steps.forward(batch), batch)
    loss.backward()
    nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip_norm)
    optimizer.step()
    return float(loss.detach())


def heldout(net: nn.Module, held: list[Any], steps: Steps, score: Callable[[list[Any]], float]) -> tuple[float, float]:
    """(primary metric, mean loss) on the held-out slice of TRAIN (never an evaluation split).

    The loss breaks ties, so a plateau (e.g. still predicting the majority class) is not
    mistaken for the end of learning.
    """
    order = sorted(range(len(held)), key=lambda i: (steps.length(held[i]), i))
    preds: list[Any] = [None] * len(held)
    total, count = 0.0, 0
    net.eval()
    with torch.inference_mode():
        for p in range(0, len(order), 128):
            idx = order[p:p + 128]
            batch = [held[i] for i in idx]
            out = steps.forward(batch)
            n = sum(it.has_target for it in batch)
            if n:
                total, count = total + float(steps.loss(out, batch)) * n, count + n
            for i, pred in zip(idx, steps.decode(out, batch)):
                preds[i] = pred
    return float(score(preds)), total / max(count, 1)


def primary_score(task: "TaskSpec", predictions: list[Any], rows: Sequence[dict[str, Any]]) -> float:
    """The task's primary metric of `predictions` against `rows` (the held-out slice's)."""
    from ..metrics import score
    from ..tasks import references

    metric = task.primary_metric
    return score(task.kind, [metric], predictions, references(task, rows), positive=task.positive_index,
                 normalizer=task.normalizer)[metric]
