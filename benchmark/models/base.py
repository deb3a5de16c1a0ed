"""The adapter interface: the only model-specific code the evaluator ever calls.

Same verbs for every model, scikit-learn style: `fit` on a task's train split (a no-op for a
model used as-is) returns self; `encode` turns the whole split into model inputs once (the
tokenisation cost, timed apart); `predict` maps a batch of encoded items to predictions, and
`collate` + `predict_collated` split it in two so the host's part can run ahead of the device. The
evaluator owns batching, ordering, timing and scoring.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec

MODES = ("auto", "zero-shot", "finetune", "frozen")
# Options every training adapter accepts (CLI: --epochs --max-train-examples --learning-rate
# --train-batch-size --cache-dir); None means the adapter's own default.
TRAINING_OPTIONS = ("epochs", "max_train_examples", "learning_rate", "train_batch_size", "cache_dir")


class Adapter(ABC):
    """Predictions: a label index for classification (-1 for an output that maps to no label,
    which counts as wrong), an answer string for QA. They must not depend on batch size or order."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    def __init__(self, model: str, *, device: str = "cpu", seed: int = 0, mode: str = "auto",
                 options: dict[str, Any] | None = None) -> None:
        self.model = model
        self.device = device
        self.seed = seed
        self.mode = mode
        self.options = dict(options or {})
        self.mode_: str | None = None  # resolved by fit()
        self.train_seconds_: float | None = None
        self.pretrain_seconds_: float | None = None  # unsupervised pre-training inside the run (ELMo's biLM)

    # --- capabilities ----------------------------------------------------------------------
    def unsupported_reason(self, task: "TaskSpec") -> str | None:
        """None when the adapter can run the task, else a short reason shown in the Result note."""
        if task.kind not in self.kinds:
            return f"{self.name} does not do {task.kind.replace('_', ' ')} (it does: {', '.join(sorted(self.kinds))})"
        return None

    # --- the verbs -------------------------------------------------------------------------
    needs_corpus: ClassVar[bool] = False

    def pretrain(self, texts: Sequence[str], fingerprint: str) -> None:
        """Unsupervised pre-training on the unlabelled train text of every task in the run, called
        once before the first `fit` when `needs_corpus` is True (ELMo-style language models)."""

    @abstractmethod
    def fit(self, task: "TaskSpec", train: "Split | None") -> "Adapter":
        """Prepare for `task`: train, fine-tune, or nothing (zero-shot). Sets `mode_`."""

    def encode(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[Any]:
        """Turn rows into model inputs once per split. Default: the rows themselves."""
        return list(rows)

    def length(self, item: Any) -> int:
        """Sort key for length-bucketed batches (tokens); 0 when length does not matter."""
        return 0

    @abstractmethod
    def predict(self, task: "TaskSpec", batch: Sequence[Any]) -> list[Any]:
        """One prediction per encoded item, in the same order."""

    def collate(self, task: "TaskSpec", batch: Sequence[Any]) -> Any:
        """The host-side work for one batch (padding, the copy to the device), apart from the forward
        pass, so the evaluator can do it for the next batch while the device runs this one. Thread-
        safe: it may run on a helper thread. Default: the batch unchanged."""
        return batch

    def predict_collated(self, task: "TaskSpec", collated: Any) -> list[Any]:
        """`predict` on what `collate` returned. Default: `predict` itself."""
        return self.predict(task, collated)

    # --- facts for the Result ---------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable) parameters."""
        return 0, 0

    def synchronize(self) -> None:
        """Wait for queued device work, so a clock read after it is honest."""

    def weights(self) -> str:
        """'pretrained' | 'trained' | 'random' | 'none'."""
        return "none"

    def revision(self) -> str | None:
        return None

    def dtype(self) -> str | None:
        return None

    def cache_dir(self) -> Path:
        """Where trained weights are kept so a re-run does not train again (option `cache_dir`)."""
        return Path(self.options.get("cache_dir") or os.environ.get("BENCH_CACHE") or ".cache/benchmark")

    def settings(self) -> dict[str, Any]:
        """Everything that changes the numbers: recorded, and part of the resume key."""
        return {"mode": self.mode, "seed": self.seed, **{k: v for k, v in self.options.items() if k != "cache_dir"}}
