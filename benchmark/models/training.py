"""Transfer learning for transformer adapters through transformers' `Trainer`.

Two ways to reuse a pre-trained model on a task: `finetune` (a new task head, every weight
trains) and `frozen` (the backbone is frozen and only the head trains: feature-based reuse).
Trained weights are cached by a key over everything that shapes them, so a re-run loads
instead of training again.
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
    from ..tasks import TaskSpec

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


def freeze_backbone(model: Any) -> None:
    """Feature-based reuse: the pre-trained body stops learning; the task head still does."""
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if backbone is None or backbone is model:
        raise UserError(f"--mode frozen: cannot tell the backbone from the head of {type(model).__name__}")
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)


# ---------------------------------------------------------------------------------------
# features
def classification_features(tokenizer: Any, task: "TaskSpec", rows: Sequence[Mapping[str, Any]],
                            max_length: int) -> list[dict[str, Any]]:
    columns = list(zip(*(task.texts(r) for r in rows)))
    enc = tokenizer(*columns, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{**{k: enc[k][i] for k in keys}, "labels": task.label_index(r)} for i, r in enumerate(rows)]


def qa_features(tokenizer: Any, task: "TaskSpec", rows: Sequence[Mapping[str, Any]], max_length: int,
                doc_stride: int) -> list[dict[str, Any]]:
    """SQuAD-style windows; a window that does not hold the (first) answer points at token 0."""
    questions = [task.texts(r)[0] for r in rows]
    contexts = [r["context"] for r in rows]
    enc = tokenizer(questions, contexts, truncation="only_second", max_length=max_length, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    features = []
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        row = rows[sample]
        answers = task.answer_list(row)
        starts = task.answer_starts(row) or []
        start_pos = end_pos = 0
        if answers and starts:
            char_start, char_end = starts[0], starts[0] + len(answers[0])
            seq = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            tokens = [t for t, s in enumerate(seq) if s == 1]
            if tokens and offsets[tokens[0]][0] <= char_start and offsets[tokens[-1]][1] >= char_end:
                start_pos = next(t for t in tokens if offsets[t][1] > char_start)
                end_pos = next(t for t in reversed(tokens) if offsets[t][0] < char_end)
        features.append({**{k: enc[k][i] for k in keys}, "start_positions": start_pos, "end_positions": end_pos})
    return features


def seq2seq_features(tokenizer: Any, task: "TaskSpec", rows: Sequence[Mapping[str, Any]],
                     max_length: int) -> list[dict[str, Any]]:
    """Text-to-text targets: the label name for classification, the first answer for QA."""
    inputs = [task.render(r) for r in rows]
    if task.kind == "classification":
        targets = [task.labels[task.label_index(r)] for r in rows]
    else:
        targets = [task.answer_list(r)[0] for r in rows]
    enc = tokenizer(inputs, truncation=True, max_length=max_length)
    labels = tokenizer(text_target=targets, truncation=True, max_length=max(task.max_new_tokens, 2) * 4)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "labels": labels["input_ids"][i]} for i in range(len(rows))]


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
