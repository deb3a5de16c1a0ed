"""The GLUE-paper single-task baseline: a BiLSTM with max pooling, trained from scratch.

Wang et al. (2018) report a 2-layer BiLSTM with max pooling per task; single sentences go
through an MLP, pairs are matched as [u; v; |u-v|; u*v] (InferSent style). We have no GloVe
offline, so every token also gets an ELMo-style character CNN vector: a word never seen in
training still has a meaningful input. Extractive QA uses a small DrQA/BiDAF-like span reader
over the same encoder.

Everything is deterministic on the CPU for a given seed: the vocabulary (ties broken by
spelling), the held-out slice and batch order (a seeded `random.Random`), the weights
(`torch.manual_seed`). Padding never changes a result: the backward LSTM reads each sequence
reversed within its own length (so it never starts on padding), pooling and attention are masked,
and the character CNN sees each real token's spelling at a fixed width, so a prediction is the
same at any batch size and in any order.

A trained model is cached under `cache_dir()/<adapter name>/<key>.pt`, keyed by everything that
changes the weights, so a re-run (or a resumed run) loads instead of training again.
"""

from __future__ import annotations

import copy
import math
import random
import re
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, fields, make_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from .base import Adapter, Fitted, option
from .training import TrainingOptions, cached_fit

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec

CACHE_FORMAT = 2  # bump when the saved layout or the model code changes what a key means
PAD, UNK, BOW, EOW = 0, 1, 2, 3  # word ids use PAD/UNK; character ids use all four
WORD_SPECIALS = ("<pad>", "<unk>")
CHAR_SPECIALS = ("<pad>", "<unk>", "<bow>", "<eow>")

# Numbers with separators (1,200 / 3.5), words with inner apostrophes (don't, o'neill),
# clitics as in PTB text (it 's, does n't), then any other single non-space character.
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|\w+(?:['’]\w+)*|['’]\w+|[^\w\s]")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(surface, char_start, char_end) per token; words are lower-cased later, chars keep case."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


# ---------------------------------------------------------------------------------------
# configuration
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


# ---------------------------------------------------------------------------------------
# vocabulary and encoded items
@dataclass
class Seq:
    """One text as ids: words (n,) and fixed-width characters (n, max_word_chars)."""

    words: np.ndarray
    chars: np.ndarray


@dataclass
class Item:
    """One encoded example: one or two Seqs, or a question and a context for QA."""

    seqs: tuple[Seq, ...]
    label: int | None = None
    context: str | None = None
    offsets: np.ndarray | None = None   # (n, 2) character offsets of context tokens
    em: np.ndarray | None = None        # context token also occurs in the question (DrQA feature)
    span: tuple[int, int] | None = None  # training target: first and last answer token

    @property
    def has_target(self) -> bool:
        return self.label is not None or self.span is not None


class Vocab:
    """Lower-cased words and case-sensitive characters, both ordered by (-count, spelling)."""

    def __init__(self, words: Sequence[str], chars: Sequence[str], max_word_chars: int) -> None:
        self.words, self.chars = list(words), list(chars)
        self.max_word_chars = max_word_chars
        self._w = {w: i for i, w in enumerate(self.words)}
        self._c = {c: i for i, c in enumerate(self.chars)}
        self._rows: dict[str, np.ndarray] = {}

    @classmethod
    def build(cls, surfaces: Iterable[str], *, vocab_size: int, min_freq: int, max_chars: int,
              max_word_chars: int, specials: Sequence[str] = WORD_SPECIALS) -> "Vocab":
        """Words (lower-cased) seen at least `min_freq` times and characters, most frequent first."""
        word_counts: Counter[str] = Counter()
        char_counts: Counter[str] = Counter()
        for surface in surfaces:
            word_counts[surface.lower()] += 1
            char_counts.update(surface)
        ranked = sorted(word_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, n in ranked if n >= min_freq and w not in specials][:vocab_size]
        chars = [c for c, _ in sorted(char_counts.items(), key=lambda kv: (-kv[1], kv[0]))][:max_chars]
        return cls(list(specials) + words, list(CHAR_SPECIALS) + chars, max_word_chars)

    def char_row(self, surface: str) -> np.ndarray:
        row = self._rows.get(surface)
        if row is None:
            ids = [BOW] + [self._c.get(ch, UNK) for ch in surface[: self.max_word_chars - 2]] + [EOW]
            row = np.zeros(self.max_word_chars, dtype=np.int16)
            row[: len(ids)] = ids
            if len(self._rows) < 500_000:
                self._rows[surface] = row
        return row

    def seq(self, surfaces: Sequence[str]) -> Seq:
        surfaces = list(surfaces) or [""]  # an empty text still has one (unknown) token
        words = np.fromiter((self._w.get(s.lower(), UNK) for s in surfaces), dtype=np.int32, count=len(surfaces))
        return Seq(words, np.stack([self.char_row(s) for s in surfaces]))

    def state(self) -> dict[str, Any]:
        return {"words": self.words, "chars": self.chars, "max_word_chars": self.max_word_chars}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Vocab":
        return cls(state["words"], state["chars"], int(state["max_word_chars"]))


# ---------------------------------------------------------------------------------------
# network
@dataclass
class SeqBatch:
    """A padded batch. Characters are kept per distinct spelling: the char CNN runs once per spelling."""

    words: torch.Tensor      # (N, T) long
    lengths: torch.Tensor    # (N,) long
    spellings: torch.Tensor  # (U, C) long: the distinct character rows of the batch's real tokens
    inverse: torch.Tensor    # (M,) long: spelling of each real token, in row-major (N, T) order

    @property
    def mask(self) -> torch.Tensor:
        positions = torch.arange(self.words.size(1), device=self.words.device)
        return positions[None, :] < self.lengths.to(self.words.device)[:, None]


def collate(seqs: Sequence[Seq], device: str) -> SeqBatch:
    """Pad to the longest sequence of this batch only (dynamic padding)."""
    lengths = [len(s.words) for s in seqs]
    words = np.zeros((len(seqs), max(lengths)), dtype=np.int64)
    for i, s in enumerate(seqs):
        words[i, : len(s.words)] = s.words
    chars = np.ascontiguousarray(np.concatenate([s.chars for s in seqs]))
    keys = chars.view(np.dtype((np.void, chars.shape[1] * chars.itemsize))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return SeqBatch(torch.from_numpy(words).to(device), torch.tensor(lengths, dtype=torch.long, device=device),
                    torch.from_numpy(chars[first].astype(np.int64)).to(device),
                    torch.from_numpy(inverse.reshape(-1).astype(np.int64)).to(device))


class Highway(nn.Module):
    """y = g*x + (1-g)*relu(Wx): lets character features pass through or be transformed."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(layers))
        for layer in self.layers:
            nn.init.constant_(layer.bias[dim:], 1.0)  # start by carrying the input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h, g = layer(x).chunk(2, dim=-1)
            g = torch.sigmoid(g)
            x = g * x + (1 - g) * torch.relu(h)
        return x


class CharCNN(nn.Module):
    """ELMo's token encoder: char embeddings, convolutions of several widths, max over time, highway."""

    def __init__(self, n_chars: int, char_dim: int, filters: Sequence[tuple[int, int]], highway: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(char_dim, n, w) for w, n in filters)
        self.out_dim = sum(n for _, n in filters)
        self.highway = Highway(self.out_dim, highway)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """(M, C) character ids of M real tokens -> (M, out_dim)."""
        x = self.embed(chars).transpose(1, 2)
        h = torch.cat([torch.relu(conv(x)).amax(dim=-1) for conv in self.convs], dim=-1)
        return self.highway(h)

    def embed_tokens(self, b: SeqBatch) -> torch.Tensor:
        """(N, T, out_dim), zeros at padding; only the distinct spellings of real tokens are convolved."""
        out = torch.zeros(*b.words.shape, self.out_dim, device=b.words.device)
        # embedding() rather than vectors[inverse]: the backward of advanced indexing accumulates in a
        # thread-dependent order on the CPU, so training would not be reproducible with 2+ threads.
        out[b.mask] = nn.functional.embedding(b.inverse, self(b.spellings))
        return out


class TokenEmbedder(nn.Module):
    """[word embedding; char-CNN vector; extra features (ELMo)] with dropout."""

    def __init__(self, n_words: int, n_chars: int, cfg: ModelConfig, extra: nn.Module | None = None) -> None:
        super().__init__()
        self.words = nn.Embedding(n_words, cfg.word_dim, padding_idx=PAD)
        self.chars = CharCNN(n_chars, cfg.char_dim, cfg.char_filters, cfg.highway_layers)
        self.extra = extra
        self.dropout = nn.Dropout(cfg.dropout)
        self.out_dim = cfg.word_dim + self.chars.out_dim + (int(getattr(extra, "out_dim", 0)) if extra else 0)

    def forward(self, b: SeqBatch) -> torch.Tensor:
        parts = [self.words(b.words), self.chars.embed_tokens(b)]
        if self.extra is not None:
            parts.append(self.extra(b))
        return self.dropout(torch.cat(parts, dim=-1))


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays at the end."""
    steps = torch.arange(x.size(1), device=x.device)[None, :]
    n = lengths.to(x.device)[:, None]
    index = torch.where(steps < n, n - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class BiLSTM(nn.Module):
    """A bidirectional LSTM whose backward pass starts at each sequence's own end, not at its padding.

    Each direction runs on the padded batch (oneDNN's fast whole-sequence kernel; packed sequences
    are ~2x slower on the CPU), the backward one on sequences reversed within their lengths. With
    padding only at the end, no real position ever sees a pad, so results do not depend on padding.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        dims = [in_dim] + [2 * hidden] * (layers - 1)
        self.fwd = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.bwd = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for i, (fwd, bwd) in enumerate(zip(self.fwd, self.bwd)):
            if i:
                x = self.dropout(x)
            back = reverse_padded(bwd(reverse_padded(x, lengths))[0], lengths)
            x = torch.cat([fwd(x)[0], back], dim=-1)
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths.to(x.device)[:, None]
        return x * mask.unsqueeze(-1)


class SentenceEncoder(nn.Module):
    """Token embedder + 2-layer BiLSTM, shared by both sides of a pair and by question and context."""

    def __init__(self, embedder: TokenEmbedder, cfg: ModelConfig) -> None:
        super().__init__()
        self.embedder = embedder
        self.lstm = BiLSTM(embedder.out_dim, cfg.hidden, cfg.layers, cfg.dropout)
        self.out_dim = self.lstm.out_dim

    def forward(self, b: SeqBatch) -> torch.Tensor:
        return self.lstm(self.embedder(b), b.lengths)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


def _mlp(in_dim: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, out))


class Classifier(nn.Module):
    """Max-pooled sentence vector u -> MLP; for pairs, [u; v; |u-v|; u*v] -> MLP."""

    def __init__(self, encoder: SentenceEncoder, n_inputs: int, n_labels: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder, self.n_inputs = encoder, n_inputs
        d = encoder.out_dim * (4 if n_inputs == 2 else 1)
        self.mlp = _mlp(d, cfg.mlp_hidden, n_labels, cfg.dropout)

    def forward(self, b: SeqBatch) -> torch.Tensor:
        """`b` stacks the first inputs of the batch, then the second inputs (one encoder call)."""
        pooled = masked_max(self.encoder(b), b.mask)
        if self.n_inputs == 1:
            return self.mlp(pooled)
        u, v = pooled.chunk(2, dim=0)
        return self.mlp(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))


class SpanReader(nn.Module):
    """Question-aware context states (aligned attention, question vector, exact-match flag) -> start/end."""

    def __init__(self, encoder: SentenceEncoder, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder = encoder
        d = encoder.out_dim
        self.model1 = BiLSTM(4 * d + 1, cfg.hidden, 1, 0.0)
        self.model2 = BiLSTM(2 * cfg.hidden, cfg.hidden, 1, 0.0)
        self.start = nn.Linear(2 * cfg.hidden + d, 1)
        self.end = nn.Linear(2 * cfg.hidden + d, 1)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, q: SeqBatch, c: SeqBatch, em: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        qs, cs = self.encoder(q), self.encoder(c)
        q_mask, c_mask = q.mask, c.mask
        q_vec = masked_max(qs, q_mask)
        scores = (cs @ qs.transpose(1, 2)).masked_fill(~q_mask[:, None, :], float("-inf"))
        aligned = scores.softmax(dim=-1) @ qs
        x = torch.cat([cs, aligned, cs * aligned, cs * q_vec[:, None, :], em.unsqueeze(-1)], dim=-1)
        m1 = self.model1(self.dropout(x), c.lengths)
        m2 = self.model2(self.dropout(m1), c.lengths)
        start = self.start(self.dropout(torch.cat([m1, cs], dim=-1))).squeeze(-1)
        end = self.end(self.dropout(torch.cat([m2, cs], dim=-1))).squeeze(-1)
        return start.masked_fill(~c_mask, float("-inf")), end.masked_fill(~c_mask, float("-inf"))


# ---------------------------------------------------------------------------------------
# batching and decoding
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


# ---------------------------------------------------------------------------------------
# the adapter
class BiLSTMAdapter(Adapter):
    """Single-task BiLSTM trained from scratch on the task's train split (GLUE-paper baseline)."""

    name = "bilstm"
    kinds = frozenset({"classification", "extractive_qa"})
    modes = ("auto",)
    mode_notes = {m: "it trains from scratch" for m in ("zero-shot", "finetune", "frozen")}
    Options = BiLSTMOptions

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.model_cfg = configure(ModelConfig, self.given_options(), {"max_length": "max_tokens"})
        self.train_cfg = configure(TrainConfig, self.given_options())
        check_filter_widths(self.model_cfg.char_filters, self.model_cfg.max_word_chars, "char_filters")
        self.vocab_: Vocab | None = None
        self.net_: nn.Module | None = None
        self.heldout_score_: float | None = None
        self.loaded_from_cache_ = False
        self.train_seconds_: float | None = None
        self.epochs_: float | None = None  # the epoch budget actually used (resolved when `epochs` is unset)
        self.fitted_: Fitted | None = None

    # --- capabilities ----------------------------------------------------------------------
    def unsupported_reason(self, task: "TaskSpec") -> str | None:
        if task.kind == "closed_book_qa":
            return (f"{self.name} cannot answer closed-book questions: it has no generator (it classifies "
                    "texts or picks a span of a given context)")
        reason = super().unsupported_reason(task)
        if reason:
            return reason
        if not task.dataset.train:
            return f"{self.name} trains on the task's train split, and {task.name} declares none"
        if task.kind == "classification" and len(task.inputs) > 2:
            return f"{self.name} reads one text or a pair, and {task.name} has {len(task.inputs)} inputs"
        return None

    # --- fit -------------------------------------------------------------------------------
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        if train is None:
            raise UserError(f"{self.name} needs the train split of {task.name}; use a task with one")
        _, self.loaded_from_cache_ = cached_fit(
            self.cache_dir() / self.name, self._cache_parts(task, train), lambda: self._fit_new(task, train),
            lambda path, _: self._save(path), lambda path: self._load(task, path) or None,
            world=self.world, key_length=None, suffix=".pt")
        self.fitted_ = Fitted(mode=self._resolved_mode(), weights="trained", train_seconds=self.train_seconds_,
                              pretrain_seconds=self._pretrain_seconds(), trainable_parameters=self.parameter_counts()[1],
                              from_cache=self.loaded_from_cache_)
        return self.fitted_

    def _pretrain_seconds(self) -> float | None:
        return None

    def _fit_new(self, task: "TaskSpec", train: "Split") -> bool:
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        train_rows, held_rows = self._split_rows(train.rows)
        self.vocab_ = self._make_vocab(task, train_rows)
        items = [it for it in self._encode_rows(task, train_rows, targets=True) if it.has_target]
        if not items:
            raise UserError(f"{self.name}: no usable train example in {task.name} (answers could not be aligned "
                            "with their contexts); check answers.answer_start")
        held = self._encode_rows(task, held_rows, targets=True)
        self.net_ = self._make_net(task).to(self.device)
        self.heldout_score_ = self._train(task, items, held, held_rows)
        self.train_seconds_ = round(time.perf_counter() - start, 3)
        return True

    def _resolved_mode(self) -> str:
        return "scratch"

    def _split_rows(self, rows: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
        """Seeded shuffle of TRAIN; a held-out slice for early stopping, the rest (capped) to learn from."""
        cfg = self.train_cfg
        order = list(range(len(rows)))
        random.Random(self.seed).shuffle(order)
        if cfg.max_train_examples:
            order = order[: cfg.max_train_examples]
        n_held = min(cfg.heldout_max, int(len(order) * cfg.heldout_fraction))
        n_held = n_held if n_held >= 20 else 0  # too few to judge anything: train the full budget
        return [rows[i] for i in order[n_held:]], [rows[i] for i in order[:n_held]]

    def _make_vocab(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> Vocab:
        surfaces = (tok for row in rows for text in task.texts(row) for tok, _, _ in tokenize(text))
        cfg = self.model_cfg
        return Vocab.build(surfaces, vocab_size=cfg.vocab_size, min_freq=cfg.min_freq, max_chars=cfg.max_chars,
                           max_word_chars=cfg.max_word_chars)

    def _extra_features(self) -> nn.Module | None:
        """Extra per-token input features (the ELMo adapter plugs its biLM in here)."""
        return None

    def _make_net(self, task: "TaskSpec") -> nn.Module:
        vocab, cfg = self.vocab_, self.model_cfg
        embedder = TokenEmbedder(len(vocab.words), len(vocab.chars), cfg, self._extra_features())
        encoder = SentenceEncoder(embedder, cfg)
        if task.kind == "extractive_qa":
            return SpanReader(encoder, cfg)
        return Classifier(encoder, len(task.inputs), len(task.labels), cfg)

    # --- encode ----------------------------------------------------------------------------
    def encode(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[Item]:
        if self.vocab_ is None:
            raise RuntimeError(f"{self.name}: call fit() before encode()")
        return self._encode_rows(task, rows)

    def _encode_rows(self, task: "TaskSpec", rows: Sequence[dict[str, Any]], targets: bool = False) -> list[Item]:
        """One Item per row, in order; with `targets`, the label or answer span too (None if unalignable)."""
        if task.kind == "extractive_qa":
            return [self._encode_qa(task, row, targets) for row in rows]
        out = []
        for row in rows:
            seqs = tuple(self.vocab_.seq([t for t, _, _ in tokenize(text)][: self.model_cfg.max_tokens])
                         for text in task.texts(row))
            out.append(Item(seqs, label=task.label_index(row) if targets else None))
        return out

    def _encode_qa(self, task: "TaskSpec", row: dict[str, Any], targets: bool) -> Item:
        from ..tasks import get_field

        question = " ".join(str(get_field(row, f)) for f in task.inputs if f != "context")
        context = str(row["context"])
        q_tokens = [t for t, _, _ in tokenize(question)][: self.model_cfg.max_tokens]
        c_tokens = tokenize(context)[: self.model_cfg.max_context_tokens] or [("", 0, 0)]
        offsets = np.array([(a, b) for _, a, b in c_tokens], dtype=np.int64)
        q_words = {t.lower() for t in q_tokens}
        em = np.array([t.lower() in q_words for t, _, _ in c_tokens], dtype=np.float32)
        item = Item((self.vocab_.seq(q_tokens), self.vocab_.seq([t for t, _, _ in c_tokens])),
                    context=context, offsets=offsets, em=em)
        if targets:
            item.span = self._answer_span(task, row, context, offsets)
        return item

    def _answer_span(self, task: "TaskSpec", row: dict[str, Any], context: str,
                     offsets: np.ndarray) -> tuple[int, int] | None:
        """Token span of the first answer, from answers.answer_start (or the first match in the context)."""
        answers = task.answer_list(row)
        if not answers:
            return None
        text = answers[0]
        try:
            start = int(task.answer_starts(row)[0])
        except (TypeError, IndexError, ValueError):
            start = -1
        if start < 0 or context[start:start + len(text)] != text:
            start = context.find(text)
        if start < 0 or not text.strip():
            return None
        return align_answer(offsets, start, start + len(text))

    def length(self, item: Item) -> int:
        return sum(len(s.words) for s in item.seqs)

    # --- forward, loss, predict ------------------------------------------------------------
    def _forward(self, task: "TaskSpec", items: Sequence[Item]) -> Any:
        if task.kind == "extractive_qa":
            q = collate([it.seqs[0] for it in items], self.device)
            c = collate([it.seqs[1] for it in items], self.device)
            width = c.words.size(1)
            em = np.zeros((len(items), width), dtype=np.float32)
            for i, it in enumerate(items):
                em[i, : len(it.em)] = it.em
            return self.net_(q, c, torch.from_numpy(em).to(self.device))
        n_inputs = len(items[0].seqs)
        return self.net_(collate([it.seqs[k] for k in range(n_inputs) for it in items], self.device))

    def _loss(self, task: "TaskSpec", out: Any, items: Sequence[Item]) -> torch.Tensor:
        """Mean cross-entropy over the items that have a target (label, or aligned answer span)."""
        keep = [k for k, it in enumerate(items) if it.has_target]
        f = nn.functional
        if task.kind == "extractive_qa":
            rows = torch.tensor(keep, device=self.device)
            starts = torch.tensor([items[k].span[0] for k in keep], device=self.device)
            ends = torch.tensor([items[k].span[1] for k in keep], device=self.device)
            return f.cross_entropy(out[0][rows], starts) + f.cross_entropy(out[1][rows], ends)
        return f.cross_entropy(out, torch.tensor([it.label for it in items], device=self.device))

    def _decode(self, task: "TaskSpec", out: Any, items: Sequence[Item]) -> list[Any]:
        """Label index, or the best span's text: context[char_start:char_end] of its tokens."""
        if task.kind != "extractive_qa":
            return [int(i) for i in out.argmax(dim=-1).tolist()]
        starts, ends = out[0].double().cpu().numpy(), out[1].double().cpu().numpy()
        answers = []
        for k, it in enumerate(items):
            n = len(it.offsets)
            i, j = best_span(starts[k, :n], ends[k, :n], self.model_cfg.max_answer_tokens)
            answers.append(it.context[int(it.offsets[i, 0]):int(it.offsets[j, 1])])
        return answers

    def predict(self, task: "TaskSpec", batch: Sequence[Item]) -> list[Any]:
        if not batch:
            return []
        self.net_.eval()
        with torch.inference_mode():
            return self._decode(task, self._forward(task, batch), batch)

    # --- training loop ---------------------------------------------------------------------
    def _param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.net_.parameters() if p.requires_grad], "lr": lr}]

    def _train(self, task: "TaskSpec", items: list[Item], held: list[Item], held_rows: list[dict]) -> float | None:
        """Adam with clipping; early stopping on the held-out slice; the best weights are kept."""
        from tqdm.auto import tqdm

        cfg = self.train_cfg
        optimizer = torch.optim.Adam(self._param_groups(cfg.learning_rate))
        rng = random.Random(self.seed)
        lengths = [self.length(it) for it in items]
        per_epoch = math.ceil(len(items) / cfg.train_batch_size)
        self.epochs_ = cfg.epochs or min(20.0, max(3.0, cfg.token_budget / max(1, sum(lengths))))
        total = max(1, math.ceil(self.epochs_ * per_epoch))
        every = max(1, math.ceil(per_epoch / cfg.evals_per_epoch))
        stopper, step = EarlyStopping(cfg.patience), 0
        quiet = True if self.quiet else None
        with tqdm(total=total, desc=f"{self.name} {task.name}", unit="batch", disable=quiet, leave=False) as bar:
            while step < total and not stopper.stop:
                for idx in bucket_batches(lengths, cfg.train_batch_size, rng):
                    loss = self._step(task, [items[i] for i in idx], optimizer)
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", heldout=stopper.shown)
                    if held and (step % every == 0 or step == total):
                        counts = step >= cfg.min_epochs * per_epoch  # early plateaus are not misses
                        if not stopper.update(self._heldout(task, held, held_rows), self.net_, counts) and counts:
                            for group in optimizer.param_groups:
                                group["lr"] *= cfg.lr_decay
                    if step >= total or stopper.stop:
                        break
        if stopper.state is not None:
            self.net_.load_state_dict(stopper.state)
        self.net_.eval()
        return None if stopper.best is None else stopper.best[0]

    def _step(self, task: "TaskSpec", batch: list[Item], optimizer: torch.optim.Optimizer) -> float:
        self.net_.train()
        optimizer.zero_grad(set_to_none=True)
        loss = self._loss(task, self._forward(task, batch), batch)
        loss.backward()
        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], self.train_cfg.clip_norm)
        optimizer.step()
        return float(loss.detach())

    def _heldout(self, task: "TaskSpec", held: list[Item], rows: list[dict]) -> tuple[float, float]:
        """(primary metric, mean loss) on the held-out slice of TRAIN (never an evaluation split).

        The loss breaks ties, so a plateau (e.g. still predicting the majority class) is not
        mistaken for the end of learning.
        """
        from ..metrics import score
        from ..tasks import references

        order = sorted(range(len(held)), key=lambda i: (self.length(held[i]), i))
        preds: list[Any] = [None] * len(held)
        total, count = 0.0, 0
        self.net_.eval()
        with torch.inference_mode():
            for p in range(0, len(order), 128):
                idx = order[p:p + 128]
                batch = [held[i] for i in idx]
                out = self._forward(task, batch)
                n = sum(it.has_target for it in batch)
                if n:
                    total, count = total + float(self._loss(task, out, batch)) * n, count + n
                for i, pred in zip(idx, self._decode(task, out, batch)):
                    preds[i] = pred
        metric = task.primary_metric
        value = score(task.kind, [metric], preds, references(task, rows), positive=task.positive_index,
                      normalizer=task.normalizer)[metric]
        return float(value), total / max(count, 1)

    # --- cache -----------------------------------------------------------------------------
    def _cache_parts(self, task: "TaskSpec", train: "Split") -> dict[str, Any]:
        """Everything that shapes the weights; its hash names cache_dir()/<adapter>/<key>.pt."""
        return {"format": CACHE_FORMAT, "adapter": self.name, "task": task.name, "version": task.version,
                "task_sha256": task.sha256, "train": train.info.fingerprint, "settings": self.settings(),
                "seed": self.seed, "model": asdict(self.model_cfg)}

    def _save(self, path: Path) -> None:
        save_atomic({"format": CACHE_FORMAT, "vocab": self.vocab_.state(), "state": self.net_.state_dict(),
                     "train_seconds": float(self.train_seconds_ or 0.0), "heldout_score": self.heldout_score_,
                     "epochs": self.epochs_}, path)

    def _load(self, task: "TaskSpec", path: Path) -> bool:
        """False (and train again) when the file is unreadable or from an incompatible version."""
        try:
            saved = torch.load(path, map_location=self.device, weights_only=True)
            self.vocab_ = Vocab.from_state(saved["vocab"])
            net = self._make_net(task).to(self.device)
            net.load_state_dict(saved["state"])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
            warnings.warn(f"{path}: unusable cached model ({type(exc).__name__}); training again")
            return False
        self.net_ = net.eval()
        self.train_seconds_ = saved["train_seconds"]
        self.heldout_score_ = saved["heldout_score"]
        self.epochs_ = saved.get("epochs")
        self.loaded_from_cache_ = True
        return True

    # --- facts for the Result ----------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        if self.net_ is None:
            return 0, 0
        params = list(self.net_.parameters())
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

    def weights(self) -> str:
        return "trained"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "train": asdict(self.train_cfg), "model": asdict(self.model_cfg)}
