"""Transfer learning for transformer adapters through transformers' `Trainer`.

`finetune` puts a new task head on a pre-trained model and trains every weight (feature-based
reuse, `frozen`, needs no Trainer: see `probe`). Trained weights are cached by a key over
everything that shapes them, so a re-run loads instead of training again.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from ..errors import UserError
from .base import option

if TYPE_CHECKING:
    from ..distributed import World

T = TypeVar("T")


@dataclass(frozen=True)
class TrainingOptions:
    """The options every training adapter takes (CLI: --epochs --max-train-examples --learning-rate
    --train-batch-size --cache-dir); None means the adapter's own default."""

    epochs: float | None = option(None, "passes over the train split")
    max_train_examples: int | None = option(None, "train on at most N examples (a seeded sample)")
    learning_rate: float | None = option(None, "optimiser learning rate")
    train_batch_size: int | None = option(None, "training batch size")
    cache_dir: str | None = option(None, "where trained weights are kept (default .cache/benchmark or $BENCH_CACHE)",
                                   shapes=False)


TRAINING_OPTIONS = tuple(f.name for f in fields(TrainingOptions))


@dataclass(frozen=True)
class Budget:
    """What a training run may spend; recorded in the Result's settings."""

    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_examples: int | None = None
    warmup_fraction: float = 0.06
    weight_decay: float = 0.01

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **defaults: Any) -> "Budget":
        base = cls(**defaults)
        chosen = {
            "epochs": options.get("epochs"), "learning_rate": options.get("learning_rate"),
            "batch_size": options.get("train_batch_size"), "max_examples": options.get("max_train_examples"),
        }
        budget = cls(**{**asdict(base), **{k: v for k, v in chosen.items() if v is not None}})
        if budget.epochs <= 0 or budget.learning_rate <= 0:
            raise UserError(f"--epochs {budget.epochs} / --learning-rate {budget.learning_rate}: both must be > 0")
        return budget


def subsample(rows: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """At most `limit` rows, chosen by a seeded shuffle so a smaller budget is not just the file's head."""
    rows = list(rows)
    if limit is None or limit >= len(rows):
        return rows
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [rows[i] for i in sorted(order[:limit])]


# ---------------------------------------------------------------------------------------
# the Trainer run
def train(model: Any, features: list[dict[str, Any]], collator: Any, budget: Budget, *, device: str,
          seed: int, quiet: bool = False) -> float:
    """Fit `model` on `features` with `Trainer`; returns the wall-clock seconds of training."""
    import torch
    from transformers import Trainer, TrainingArguments

    if not features:
        raise UserError("no training examples survived preprocessing; check the train split")
    steps = max(1, int(len(features) / budget.batch_size * budget.epochs + 0.999))
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        args = TrainingArguments(
            output_dir=out, num_train_epochs=budget.epochs, learning_rate=budget.learning_rate,
            per_device_train_batch_size=budget.batch_size, weight_decay=budget.weight_decay,
            warmup_steps=int(budget.warmup_fraction * steps), seed=seed, data_seed=seed,
            save_strategy="no", logging_strategy="no", eval_strategy="no", report_to="none",
            disable_tqdm=quiet, use_cpu=not device.startswith("cuda"),
            bf16=device.startswith("cuda") and torch.cuda.is_bf16_supported(), dataloader_num_workers=0,
            remove_unused_columns=False, optim="adamw_torch",
        )
        trainer = Trainer(model=model, args=args, train_dataset=_ListDataset(features), data_collator=collator)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    model.eval()
    return seconds


class _ListDataset:
    """The minimal map-style dataset `Trainer` needs, without pulling in `datasets`."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


# ---------------------------------------------------------------------------------------
# the trained-weights cache: one path for every adapter that trains
def cache_key(parts: Mapping[str, Any], length: int | None = 20) -> str:
    """The name of a trained-weights cache entry: a hash of everything that shapes the weights."""
    from ..storage import stable_hash

    return stable_hash(dict(parts), length)


def cached_fit(root: Path, key_parts: Mapping[str, Any], train_fn: Callable[[], T], save_fn: Callable[[Path, T], None],
               load_fn: Callable[[Path], T | None], *, world: "World", key_length: int | None = 20,
               suffix: str = "") -> tuple[T, bool]:
    """Train once, then load: (what `train_fn` or `load_fn` returned, whether it came from the cache).

    The entry is `root/<cache_key(key_parts)><suffix>`. `load_fn` returns None for an entry it cannot
    use (an older format, a damaged file), which is then trained again. `save_fn` must write through
    the atomic writers (storage.py) so readers see all or nothing. Under data parallelism every rank
    trains the same weights; rank 0 alone saves and the others wait for it.
    """
    from ..distributed import barrier

    path = root / f"{cache_key(key_parts, key_length)}{suffix}"
    if path.exists():
        loaded = load_fn(path)
        if loaded is not None:
            return loaded, True
    trained = train_fn()
    if world.is_main:
        save_fn(path, trained)
    barrier(world)
    return trained, False


def load_meta(folder: Path) -> dict[str, Any] | None:
    """The metadata of a complete Trainer cache folder, or None (an interrupted save has no marker)."""
    marker = folder / "trained.json"
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def save_folder(folder: Path, model: Any, tokenizer: Any, meta: dict[str, Any]) -> None:
    """`save_pretrained` output plus the trained.json marker, written as one atomic folder."""
    from ..storage import write_folder_atomic

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "trained.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    write_folder_atomic(folder, fill)
