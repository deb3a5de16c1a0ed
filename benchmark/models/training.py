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
    length_grouping: bool = True   # batches of similar length, in random order: padding ~1.05x, not ~3x

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
@dataclass(frozen=True)
class TrainStats:
    """What a training run processed and how close it came to the FLOP floor (for the Result)."""

    seconds: float
    examples: int              # examples seen, every epoch counted
    real_tokens: int           # input tokens before padding, every epoch counted
    padded_tokens: int         # input positions the model computed on
    flops: float | None        # 6 x non-embedding parameters x real tokens (None: encoder-decoder)
    matrix_tflops: float       # the dense matrix rate measured right after training
    budget: Budget             # the recipe as resolved (adapter defaults filled in)
    dropout_masks: str = "torch"  # whose generator drew the dropout masks (fast_dropout.GENERATOR on CPU)

    @property
    def tokens_per_s(self) -> float:
        return self.real_tokens / max(self.seconds, 1e-12)

    @property
    def floor_fraction(self) -> float | None:
        from ..flops import floor_fraction

        return None if self.flops is None else floor_fraction(self.flops, self.seconds, self.matrix_tflops)

    def record(self) -> dict[str, Any]:
        """The Result's `efficiency.training` block."""
        return {"examples": self.examples, "real_tokens": self.real_tokens, "padded_tokens": self.padded_tokens,
                "padding": round(self.padded_tokens / max(self.real_tokens, 1), 4),
                "tokens_per_s": round(self.tokens_per_s, 2), "flops": self.flops,
                "matrix_gflops": round(self.matrix_tflops * 1000, 2),
                "floor_fraction": None if self.floor_fraction is None else round(self.floor_fraction, 4),
                "length_grouping": self.budget.length_grouping, "epochs": self.budget.epochs,
                "learning_rate": self.budget.learning_rate, "batch_size": self.budget.batch_size,
                "warmup_fraction": self.budget.warmup_fraction, "weight_decay": self.budget.weight_decay,
                "dropout_masks": self.dropout_masks}


class LengthBuckets:
    """Training order in batches of similar length, the batches in random order.

    Each epoch shuffles the examples, sorts every run of `mega` batches' worth by length, cuts them
    into batches and shuffles the full batches (a short last batch stays last, so the DataLoader's
    batches are these). Trainer's own length-grouped sampler keeps at least four sorted megabatches
    and walks each from longest to shortest, which left 2,000 SST-2 sentences padded 1.18x."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega: int = 50) -> None:
        self.lengths, self.batch_size, self.seed, self.mega = list(lengths), batch_size, seed, mega
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        rng = random.Random(f"buckets:{self.seed}:{self.epoch}")
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        size, span = self.batch_size, self.batch_size * self.mega
        batches: list[list[int]] = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start:start + span], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
        full = [b for b in batches if len(b) == size]
        rng.shuffle(full)
        return iter([i for b in full + [b for b in batches if len(b) < size] for i in b])


class _CountingCollator:
    """Wraps a collator to count the real and padded tokens of every batch the Trainer draws."""

    def __init__(self, collate: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.collate = collate
        self.examples = self.real = self.padded = 0

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collate(features)
        self.examples += len(features)
        self.real += sum(len(f["input_ids"]) for f in features)
        self.padded += int(batch["input_ids"].numel())
        return batch


def train(model: Any, features: list[dict[str, Any]], collator: Any, budget: Budget, *, device: str,
          seed: int, quiet: bool = False, fast_dropout: bool = True) -> TrainStats:
    """Fit `model` on `features` with `Trainer`, in length-grouped batches unless the budget says not.

    On the CPU the dropout masks come from `fast_dropout` (torch's own when `fast_dropout` is False),
    with attention in its eager form where the model drops attention probabilities."""
    import torch
    from transformers import Trainer, TrainingArguments

    from ..flops import TRAIN_FLOPS_PER_PARAM, matrix_rate, non_embedding_parameters
    from . import fast_dropout as fast_dropout_masks
    from . import hf

    if not features:
        raise UserError("no training examples survived preprocessing; check the train split")
    steps = max(1, int(len(features) / budget.batch_size * budget.epochs + 0.999))
    counting = _CountingCollator(collator)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        args = TrainingArguments(
            output_dir=out, num_train_epochs=budget.epochs, learning_rate=budget.learning_rate,
            per_device_train_batch_size=budget.batch_size, weight_decay=budget.weight_decay,
            warmup_steps=int(budget.warmup_fraction * steps), seed=seed, data_seed=seed,
            save_strategy="no", logging_strategy="no", eval_strategy="no", report_to="none",
            disable_tqdm=quiet, use_cpu=not device.startswith("cuda"),
            bf16=device.startswith("cuda") and torch.cuda.is_bf16_supported(), dataloader_num_workers=0,
            # the fused kernel: on the CPU the per-tensor AdamW step took a third of each MiniLM step
            remove_unused_columns=False, optim="adamw_torch_fused",
        )
        buckets = LengthBuckets([len(f["input_ids"]) for f in features], budget.batch_size, seed) \
            if budget.length_grouping else None

        masks = fast_dropout_masks.cpu_dropout(seed) if fast_dropout and not device.startswith("cuda") else None

        class _Trainer(Trainer):
            def _get_train_sampler(self, train_dataset: Any = None) -> Any:
                return buckets if buckets is not None else super()._get_train_sampler(train_dataset)

            def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
                if masks is None:
                    return super().compute_loss(*args, **kwargs)
                with masks:  # the forward only: backward and the optimiser run without the mode's hook
                    return super().compute_loss(*args, **kwargs)

        trainer = _Trainer(model=model, args=args, train_dataset=_ListDataset(features), data_collator=counting)
        with hf.eager_attention(model, when=masks is not None and hf.attention_dropout(model) > 0):
            start = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - start
    model.eval()
    # a short rate sample, a tenth of the training time at most: tiny runs stay tiny
    rate = matrix_rate("cuda" if device.startswith("cuda") else "cpu", seconds=min(3.0, 0.1 * seconds))
    # 6N per input token holds for an encoder; an encoder-decoder's cost also scales with its targets
    encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
    flops = None if encoder_decoder else float(TRAIN_FLOPS_PER_PARAM * non_embedding_parameters(model) * counting.real)
    return TrainStats(seconds=seconds, examples=counting.examples, real_tokens=counting.real,
                      padded_tokens=counting.padded, flops=flops, matrix_tflops=rate.sustained_tflops, budget=budget,
                      dropout_masks=fast_dropout_masks.GENERATOR if masks is not None else "torch")


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
        try:
            save_fn(path, trained)
        except OSError as exc:  # the run goes on with what it trained; only the re-run's shortcut is lost
            import sys

            print(f"warning: cannot cache the trained weights in {path} ({exc.strerror or exc}); this run goes on, "
                  "a re-run will train again (check --cache-dir or $BENCH_CACHE)", file=sys.stderr)
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
