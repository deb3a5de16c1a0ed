"""The BiLSTM family's configuration: network shape and training schedule as frozen dataclasses,
the adapter's declared Options derived from them, and the coercion of option values (each bad
value a one-line error that says how to fix it). No torch: `bench models` reads it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass, replace
from typing import Any, Sequence

from ..errors import UserError
from .base import option
from .training import TrainingOptions


@dataclass(frozen=True)
class ModelConfig:
    """Network shape. Any field can be set as an adapter option of the same name (tests shrink it)."""

    word_dim: int = 100
    char_dim: int = 16
    char_filters: tuple[tuple[int, int], ...] = ((1, 16), (2, 16), (3, 32), (4, 32), (5, 32))
    highway_layers: int = 1
    max_word_chars: int = 16        # including begin/end-of-word markers
    hidden: int = 128               # per direction
    layers: int = 2
    mlp_hidden: int = 256
    dropout: float = 0.3
    vocab_size: int = 50_000
    min_freq: int = 2               # rarer words share <unk> (and so train it); chars still tell them apart
    max_chars: int = 500            # character vocabulary cap
    max_tokens: int = 128           # per classification input / question (CLI: --max-length)
    max_context_tokens: int = 1000  # QA context cap (SQuAD's longest is ~850 of our tokens)
    max_answer_tokens: int = 20


@dataclass(frozen=True)
class TrainConfig:
    """The training budget; `epochs`, `max_train_examples`, `learning_rate`, `train_batch_size` are CLI options."""

    epochs: float | None = None     # None: enough passes for ~token_budget training tokens, within 3..20
    max_train_examples: int | None = None
    learning_rate: float = 2e-3
    train_batch_size: int = 128     # large batches: the CPU LSTM kernels are far more efficient
    token_budget: int = 2_000_000
    heldout_fraction: float = 0.1   # of the train split, for early stopping
    heldout_max: int = 2000
    evals_per_epoch: int = 1
    patience: int = 2               # evaluations without improvement before stopping...
    min_epochs: float = 1.0         # ...once this many epochs are done (early plateaus are common)
    lr_decay: float = 0.5           # applied to the learning rate after an evaluation that did not improve
    clip_norm: float = 5.0


_FRACTIONS = frozenset({"dropout", "lm_dropout", "heldout_fraction"})  # 0 <= value < 1


def config_options(name: str, *configs: type, base: type = TrainingOptions, **extra: Any) -> type:
    """An adapter's Options: the training options plus every field of its config dataclasses, each
    None by default (the config's own default) and set by name; `extra` adds (type, help) pairs."""
    taken = {f.name for f in fields(base)}
    specs = [(key, kind, option(None, help)) for key, (kind, help) in extra.items()]
    for config in configs:
        for f in fields(config):
            if f.name not in taken:
                specs.append((f.name, f"{f.type} | None", option(None, f"{config.__name__}: default {f.default!r}")))
    return make_dataclass(name, specs, bases=(base,), frozen=True)


BiLSTMOptions = config_options("BiLSTMOptions", ModelConfig, TrainConfig,
                               max_length=("int | None", "input truncation in tokens (= max_tokens, default 128)"))


def check_filter_widths(filters: Sequence[tuple[int, int]], max_word_chars: int, option: str) -> None:
    """A convolution wider than the padded word would see no characters at all."""
    widest = max((w for w, _ in filters), default=0)
    if widest > max_word_chars:
        raise UserError(f"{option}: filter width {widest} exceeds max_word_chars={max_word_chars}; "
                        f"raise max_word_chars or narrow {option}")


def _typed(name: str, value: Any, kind: type, allow_none: bool = False) -> Any:
    """Coerce one option value, refusing non-numbers and out-of-range numbers with a one-line fix."""
    if value is None and allow_none:
        return None
    wanted = "a number in [0, 1)" if name in _FRACTIONS else f"a positive {'whole number' if kind is int else 'number'}"
    expected = f"option {name}={value!r}: expected {wanted}; fix the value"
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise UserError(expected) from None
    bad_int = kind is int and isinstance(value, float) and out != value
    in_range = 0 <= out < 1 if name in _FRACTIONS else out > 0
    if isinstance(value, bool) or bad_int or not in_range:
        raise UserError(expected)
    return out


def _filters(name: str, value: Any) -> tuple[tuple[int, int], ...]:
    """Character CNN filters as [[width, count], ...]."""
    try:
        out = tuple((int(w), int(n)) for w, n in value)
    except (TypeError, ValueError):
        out = ()
    if not out or any(w < 1 or n < 1 for w, n in out):
        raise UserError(f"option {name}={value!r}: expected [[width, count], ...] with positive numbers")
    return out


def configure(cls: type, options: dict[str, Any], aliases: dict[str, str] | None = None) -> Any:
    """A config dataclass with the options that name its fields (or an alias of one) applied."""
    values: dict[str, Any] = {}
    names = {f.name: f for f in fields(cls)}
    for key, value in options.items():
        name = (aliases or {}).get(key, key)
        f = names.get(name)
        if f is None or value is None:
            continue
        if f.type.startswith("tuple"):
            values[name] = _filters(key, value)
        else:
            kind = float if f.type.startswith("float") else int
            values[name] = _typed(key, value, kind, allow_none=f.default is None)
    return replace(cls(), **values)
