"""The adapter contract: the only model-specific code the evaluator ever calls.

An adapter class declares what it can do (scikit-learn style, one small uniform interface):
task `kinds`, `modes`, and an `Options` dataclass of the options it takes, each with a type, a
default and one line of help. The base validates mode and options once, at construction, with
one policy: anything the adapter does not declare is a one-line error naming the adapters that
do take it. `settings()` (and so the resume key) holds exactly the options that shape numbers.

The verbs: `fit` on a task's train split (train, fine-tune, or nothing) returns a frozen
`Fitted` record of what happened; `encode` turns the whole split into model inputs once (the
tokenisation cost, timed apart); `predict` maps a batch of encoded items to predictions, and
`collate` + `predict_collated` split it in two so the host's part can run ahead of the device.
The evaluator owns batching, ordering, timing and scoring, and reads only `Fitted` and the
methods declared here.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from ..distributed import SINGLE, World
from ..errors import UserError, choices_hint

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec

MODES = ("auto", "zero-shot", "finetune", "frozen")


def option(default: Any = None, help: str = "", *, shapes: bool = True) -> Any:
    """One declared option: `help` is shown by `bench models NAME`; `shapes=False` keeps an option that
    cannot change a number (where files go) out of `settings()` and so out of the resume key."""
    return dataclasses.field(default=default, metadata={"help": help, "shapes": shapes})


@dataclass(frozen=True)
class NoOptions:
    """An adapter that takes no options."""


@dataclass(frozen=True)
class Fitted:
    """What `fit` did, for the Result: the evaluator reads this record, never the adapter's own state."""

    mode: str                               # resolved: 'zero-shot' | 'finetune' | 'frozen' | 'scratch'
    weights: str                            # 'pretrained' | 'trained' | 'random' | 'none'
    revision: str | None = None             # which exact checkpoint ran (hub commit or content hash)
    train_seconds: float | None = None      # supervised training (from the cache: the original run's)
    feature_seconds: float | None = None    # building training features (tokenising the train split)
    pretrain_seconds: float | None = None   # unsupervised pre-training inside the run (ELMo's biLM)
    training: Mapping[str, Any] | None = None  # tokens, padding, tokens/s, FLOP-floor share (TrainStats.record)
    trainable_parameters: int | None = None
    from_cache: bool = False                # trained weights loaded instead of trained
    labelled_examples: int | None = None    # labelled train examples used, where not the (capped) train split:
                                            # 0 for a checkpoint run as it is, K for a K-shot prompt

    def problem(self) -> str | None:
        """What makes this record unfit for a Result (a mode or weights outside the vocabulary, a count
        that is no number), or None: an adapter's slip must not become a table row."""
        if self.mode not in FITTED_MODES:
            return f"mode={self.mode!r}, expected one of {', '.join(FITTED_MODES)}"
        if self.weights not in FITTED_WEIGHTS:
            return f"weights={self.weights!r}, expected one of {', '.join(FITTED_WEIGHTS)}"
        for name in ("train_seconds", "feature_seconds", "pretrain_seconds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                return f"{name}={value!r}, expected seconds (a number >= 0) or None"
        for name in ("trainable_parameters", "labelled_examples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return f"{name}={value!r}, expected a whole number >= 0 or None"
        return None


FITTED_MODES = ("zero-shot", "finetune", "frozen", "scratch")
FITTED_WEIGHTS = ("pretrained", "trained", "random", "none")


class Adapter(ABC):
    """Predictions: a label index for classification (-1 for an output that maps to no label,
    which counts as wrong), an answer string for QA. They must not depend on batch size or order."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    modes: ClassVar[tuple[str, ...]] = ("auto",)
    mode_notes: ClassVar[Mapping[str, str]] = {}  # why a mode is missing, for the error message
    Options: ClassVar[type] = NoOptions
    needs_corpus: ClassVar[bool] = False

    def __init__(self, model: str, *, device: str = "cpu", seed: int = 0, mode: str = "auto",
                 options: Mapping[str, Any] | None = None, quiet: bool = False, world: World = SINGLE,
                 online: bool | None = None) -> None:
        self.model = model
        self.device = device
        self.seed = seed
        self.quiet = quiet  # no progress bars, in training as in evaluation
        self.world = world  # the run's processes: rank 0 alone saves trained weights
        self.online = online  # whether the hub may be asked, decided once per run (None: probe when needed)
        self.mode = self._checked_mode(mode)
        self.options = self._checked_options(options)

    # --- validation: once, at construction ---------------------------------------------------
    @classmethod
    def option_fields(cls) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls.Options)

    def _checked_mode(self, mode: str) -> str:
        if mode in self.modes:
            return mode
        if mode not in MODES:
            raise UserError(f"unknown mode '{mode}'; {choices_hint(mode, MODES)}")
        why = f": {self.mode_notes[mode]}" if mode in self.mode_notes else ""
        raise UserError(f"adapter {self.name} does not take --mode {mode}{why} (its modes: {', '.join(self.modes)}); "
                        f"{_takers('mode', mode)}")

    def _checked_options(self, options: Mapping[str, Any] | Any | None) -> Any:
        if isinstance(options, self.Options):
            return options
        given = {k: v for k, v in dict(options or {}).items() if v is not None}
        names = {f.name for f in self.option_fields()}
        for key in sorted(given):
            if key not in names:
                close = difflib.get_close_matches(key, sorted(names), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise UserError(f"adapter {self.name} does not take option '{key}'{hint}; {_takers('option', key)}; "
                                f"see 'bench models {self.name}'")
        types = checkable_types(self.Options)
        for key, value in given.items():
            if key in types and not fits(value, types[key]):
                raise UserError(f"adapter {self.name}: option {key}={value!r} is {type(value).__name__}, expected "
                                f"{type_names(types[key])}; see 'bench models {self.name}'")
        return self.Options(**given)

    def given_options(self) -> dict[str, Any]:
        """The options set away from their declared defaults, as given."""
        return {f.name: getattr(self.options, f.name) for f in self.option_fields()
                if getattr(self.options, f.name) != f.default}

    # --- capabilities ----------------------------------------------------------------------
    def unsupported_reason(self, task: "TaskSpec") -> str | None:
        """None when the adapter can run the task, else a short reason shown in the Result note."""
        if task.kind not in self.kinds:
            return f"{self.name} does not do {task.kind.replace('_', ' ')} (it does: {', '.join(sorted(self.kinds))})"
        if self.needs_train_split() and not task.dataset.train:
            how = "" if self.mode == "auto" else f" --mode {self.mode}"
            return f"{self.name}{how} needs the task's train split, and {task.name} declares none"
        return None

    def needs_train_split(self) -> bool:
        """Whether `fit` needs the task's train split (to learn from, or to draw examples from): a task
        without one is then marked unsupported, as a task of a foreign kind is, instead of stopping a
        whole suite's run."""
        return False

    # --- the verbs -------------------------------------------------------------------------
    def pretrain(self, texts: Sequence[str], fingerprint: str) -> None:
        """Unsupervised pre-training on the unlabelled train text of every task in the run, called
        once before the first `fit` when `needs_corpus` is True (ELMo-style language models)."""

    @abstractmethod
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        """Prepare for `task`: train, fine-tune, or nothing (zero-shot); say what happened."""

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
        """Before `fit` (a task it cannot run): 'pretrained' | 'trained' | 'random' | 'none'."""
        return "none"

    def revision(self) -> str | None:
        """Before `fit`: which exact model would run, when that is known without loading it."""
        return None

    def dtype(self) -> str | None:
        return None

    def runtime(self) -> tuple[str | None, str | None]:
        """(backend, quantization) of what runs, for the Result: a backend other than the adapter's
        usual one, or any quantization, is a different deployment and gets its own result row."""
        return None, None

    def variant(self) -> str:
        """How this run differs from the model's usual one, known before `fit`: it names the result's
        folder and its own table row. Default: the non-usual runtime ('onnxruntime int8') or ''."""
        from ..results import runtime_label

        return runtime_label(*self.runtime())

    def cache_dir(self) -> Path:
        """Where trained weights are kept so a re-run does not train again (option `cache_dir`)."""
        chosen = getattr(self.options, "cache_dir", None)
        return Path(chosen or os.environ.get("BENCH_CACHE") or ".cache/benchmark")

    @classmethod
    def shaping_options(cls) -> frozenset[str]:
        """The declared options that can change a number (all but those declared `shapes=False`)."""
        return frozenset(f.name for f in cls.option_fields() if f.metadata.get("shapes", True))

    def settings(self) -> dict[str, Any]:
        """Everything that changes the numbers: recorded, and part of the resume key."""
        shaping = self.shaping_options()
        return {"mode": self.mode, "seed": self.seed,
                **{k: v for k, v in self.given_options().items() if k in shaping}}


def checkable_types(options_class: type) -> dict[str, tuple[type, ...]]:
    """The options whose declared type a value can be checked against (int, float, str or bool, optionally
    `| None`), with those types; other hints (a tuple of pairs, a mapping) are left to the adapter, and
    annotations that cannot be resolved (a plugin's name its module does not import) check nothing."""
    import types
    import typing

    try:
        hints = typing.get_type_hints(options_class)
    except Exception:
        return {}
    out: dict[str, tuple[type, ...]] = {}
    for name, hint in hints.items():
        parts = [a for a in typing.get_args(hint) if a is not type(None)] \
            if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
        if parts and all(a in (int, float, str, bool) for a in parts):
            out[name] = tuple(parts)
    return out


def fits(value: Any, wanted: tuple[type, ...]) -> bool:
    """isinstance, except that a bool is no number and an int is a float (3 for 3.0)."""
    if isinstance(value, bool):
        return bool in wanted
    return any(isinstance(value, t) for t in wanted if t is not bool) or (isinstance(value, int) and float in wanted)


def type_names(wanted: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in wanted)


def _takers(kind: str, value: str) -> str:
    """'adapters that take it: a, b' over every registered adapter (their classes load only here)."""
    from .registry import adapters

    found = []
    for entry in adapters().values():
        try:
            cls = entry.load()
        except Exception:  # a broken plugin must not hide the user's real mistake
            continue
        names = cls.modes if kind == "mode" else {f.name for f in cls.option_fields()}
        if value in names:
            found.append(entry.name)
    return f"adapters that take it: {', '.join(found)}" if found else "no adapter takes it"
