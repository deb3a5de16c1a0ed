"""The Result record: one JSON file per (model, mode, task, split, train size, seed), written atomically.

The schema is versioned (`SCHEMA`); readers refuse files from a newer schema rather than guess.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType as _UnionType
from typing import Any, Iterable, Iterator

from .errors import UserError, require_folder
from .storage import stable_hash, write_atomic  # noqa: F401  (write_atomic: the writer results use)

SCHEMA = 1


@dataclass
class DataInfo:
    source: str            # 'hub' | 'local' | 'sample' | 'predictions'
    location: str          # hub id/config, directory, or 'builtin'
    fingerprint: str       # content hash chained through every transform (see data.py)
    num_examples: int
    subset: str = ""       # '' the whole split; 'first' its first n (--limit); 'random' n drawn at random (--sample)


@dataclass
class Efficiency:
    num_parameters: int | None = None
    trainable_parameters: int | None = None
    latency_ms: dict[str, float] | None = None      # {'p50', 'p95'} at batch size 1
    latency_samples: int | None = None
    throughput_per_s: float | None = None           # examples/s over the full pass
    batch_size: int | None = None                   # the largest batch of the pass
    batch_tokens: int | None = None                 # automatic batching: padded tokens per batch
    batch_cost: int | None = None                   # and what it charged per batch, in padded tokens
    oom_halvings: int | None = None
    prefetch: bool | None = None                    # next batch collated while the device ran this one
    eval_seconds: float | None = None               # full pass, model + collation
    encode_seconds: float | None = None             # tokenisation of the split, reported apart
    train_seconds: float | None = None
    feature_seconds: float | None = None            # training features (frozen: the backbone's one pass)
    pretrain_seconds: float | None = None           # the biLM's pre-training (ELMo), once for the whole run
    training: dict[str, Any] | None = None          # real/padded tokens, tokens/s, share of the training FLOP floor
    peak_memory_mb: float | None = None
    device: str | None = None
    dtype: str | None = None
    backend: str | None = None                      # 'torch' | 'onnxruntime' where the adapter offers a choice
    quantization: str | None = None                 # 'int8' ...: a different model, its own row


@dataclass
class Result:
    task: str
    task_version: int
    suite: str
    kind: str
    split: str
    column: str
    model: str
    adapter: str
    mode: str
    weights: str                       # 'pretrained' | 'trained' | 'random' | 'none' | 'external'
    data: DataInfo
    metrics: dict[str, float] = field(default_factory=dict)      # 0-100
    ci95: dict[str, list[float]] = field(default_factory=dict)   # [lo, hi], 0-100
    efficiency: Efficiency = field(default_factory=Efficiency)
    provenance: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    note: str = ""
    variant: str = ""                  # how this differs from the model's usual run ('onnxruntime int8', '1-shot')
    schema: int = SCHEMA

    @property
    def is_real(self) -> bool:
        """Only real data with meaningful weights may enter a published table."""
        return self.status == "ok" and self.data.source not in ("sample",) and self.weights != "random"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if d.get("schema") != SCHEMA:
            raise ValueError(f"schema {d.get('schema')!r} is not {SCHEMA}")
        d = dict(d)
        d["data"] = DataInfo(**d["data"])
        d["efficiency"] = Efficiency(**d.get("efficiency") or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        result = cls(**d)
        for part, prefix in ((result, ""), (result.data, "data."), (result.efficiency, "efficiency.")):
            _check_types(part, prefix)
        bad = next((k for k, v in result.metrics.items() if isinstance(v, bool) or not isinstance(v, (int, float))), None)
        if bad is not None:
            raise ValueError(f"metrics.{bad} is {result.metrics[bad]!r}, expected a number")
        return result


def _check_types(obj: Any, prefix: str) -> None:
    """Each field of a result's dataclass holds its declared kind of value (str, int, float, bool, dict,
    list, or None where allowed), so a hand-edited file fails here in one line, not in a renderer."""
    import typing

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        allowed: list[type] = []
        for arg in (typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) in (typing.Union, _UnionType)
                    else (hints[f.name],)):
            arg = typing.get_origin(arg) or arg
            allowed += [int, float] if arg is float else [type(None)] if arg is type(None) else [arg]
        if any(a is Any for a in allowed):
            continue
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, tuple(allowed)):
            names = " or ".join("null" if a is type(None) else a.__name__ for a in allowed)
            raise ValueError(f"{prefix}{f.name} is {value!r:.40}, expected {names}")


def train_cap(r: Result) -> int | None:
    """The --max-train-examples a result was trained under (None: the whole train split)."""
    return (r.provenance.get("train_data") or {}).get("max_examples")


def labelled_examples(r: Result) -> int | None:
    """How many labelled train examples a result learned from (None: no train split was used)."""
    train = r.provenance.get("train_data") or {}
    return train.get("used_examples", train.get("num_examples"))


def train_cost_seconds(r: Result) -> float:
    """What learning the task cost: supervised training plus its features (frozen: the backbone's pass)."""
    return float(r.efficiency.train_seconds or 0.0) + float(r.efficiency.feature_seconds or 0.0)


def runtime_label(backend: str | None, quantization: str | None) -> str:
    """'' for the usual runtime; otherwise the backend and quantization that ran ('onnxruntime int8')."""
    parts = [backend if backend not in (None, "torch") else "", quantization or ""]
    return " ".join(p for p in parts if p)


def row_mode(r: Result) -> str:
    """A table row's mode: the adapter mode, plus the runtime where it is not the usual one, so an
    int8 or ONNX Runtime result (or a few-shot prompt) stands beside the usual row of the same model
    instead of replacing it."""
    v = r.variant
    if v and r.mode == "zero-shot" and re.match(r"\d+-shot\b", v):
        return v  # 'zero-shot' meant 'not trained'; beside a K-shot prompt it would read as a contradiction
    return f"{r.mode}, {v}" if v and r.mode else (v or r.mode)


PROMPTED = frozenset({"causal", "text2text"})  # adapters that can answer by prompting alone (qa-modes.md)


def is_prompted(r: Result) -> bool:
    """A generative model run as it is, by its prompt: compared on qa-modes.md, not beside trained
    readers on the pages that compare ways of training (glue-paper.md, transfer.md)."""
    return r.adapter in PROMPTED and r.mode == "zero-shot"


def headline(results: Iterable[Result]) -> list[Result]:
    """Per (model, mode, task, split, evaluation data), the result trained on the most labelled data:
    the tables' row. The smaller runs are learning-curve points, drawn by `curve`, never averaged in.
    Several seeds of that run become one Result, their mean (`combine_seeds`)."""
    groups: dict[tuple[str, str, str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.model, row_mode(r), r.task, r.split, r.data.fingerprint), []).append(r)
    kept = []
    for group in groups.values():
        top = max(_data_rank(r) for r in group)
        kept.append(combine_seeds([r for r in group if _data_rank(r) == top]))
    return kept


@dataclass(frozen=True)
class SeedSummary:
    """What a mean over seeds hides: the seeds, each metric's value per seed and sample standard deviation,
    and the seeds left out because their run differed in more than the seed."""
    seeds: tuple[int, ...]
    values: dict[str, tuple[float, ...]]
    sd: dict[str, float]
    left_out: tuple[int, ...] = ()  # seeds made otherwise than the newest run


def seed_of(r: Result) -> int | None:
    seed = r.provenance.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _recipe(r: Result) -> str:
    """Everything that must be equal for two seeds to be samples of one run, as the resume check sees a run:
    the settings but the seed (and the mode asked for: the row already fixes the mode that ran), the model
    revision, the train data's fingerprint, the task's definition, the adapter's release (records older than
    `adapter_provider` came from the built-in adapters) and the dtype."""
    prov = r.provenance
    settings = {k: v for k, v in (prov.get("settings") or {}).items() if k not in ("seed", "mode")}
    train = (prov.get("train_data") or {}).get("fingerprint")
    return json.dumps([r.adapter, r.variant, r.weights, settings, prov.get("model_revision"), train, r.task_version,
                       prov.get("task_sha256"), prov.get("adapter_provider") or "builtin", r.efficiency.dtype],
                      sort_keys=True, default=str)


def combine_seeds(results: list[Result]) -> Result:
    """One Result for runs of one cell: where two or more ok runs differ only by their seed, the mean of each
    metric over them, its spread in `seed_summary`. The confidence intervals, which bootstrap one run's
    examples, are dropped; efficiency and provenance are those of the lowest seed's run. Runs that differ
    in more than the seed are not averaged: the set made like the newest run is kept (a re-run with new
    settings supersedes the old seeds), the others are named."""
    ok = [r for r in results if r.status == "ok" and seed_of(r) is not None]
    if len(ok) < 2:
        return ok[0] if ok else results[0]
    by_seed: dict[int, Result] = {}
    for r in sorted(ok, key=_created, reverse=True):  # one seed twice (an old file beside a new): the newer
        by_seed.setdefault(seed_of(r), r)  # type: ignore[arg-type]
    sets: dict[str, list[Result]] = {}
    for seed in sorted(by_seed):
        sets.setdefault(_recipe(by_seed[seed]), []).append(by_seed[seed])
    runs = max(sets.values(), key=lambda rs: (max(map(_created, rs)), len(rs), -min(map(seed_of, rs))))  # type: ignore[arg-type]
    left_out = tuple(sorted(seed_of(r) for rs in sets.values() if rs is not runs for r in rs))  # type: ignore[type-var]
    if len(runs) < 2 and not left_out:
        return runs[0]
    base = runs[0]
    metrics = [m for m in base.metrics if all(is_number(r.metrics.get(m)) for r in runs)]
    values = {m: tuple(float(r.metrics[m]) for r in runs) for m in metrics}
    summary = SeedSummary(tuple(seed_of(r) for r in runs), values,  # type: ignore[misc]
                          {m: statistics.stdev(v) for m, v in values.items()} if len(runs) > 1 else {}, left_out)
    provenance = {**base.provenance, "seed_summary": dataclasses.asdict(summary)}  # stays JSON
    if len(runs) < 2:
        return dataclasses.replace(base, provenance=provenance)
    return dataclasses.replace(base, metrics={m: statistics.fmean(v) for m, v in values.items()}, ci95={},
                               provenance=provenance)


def _created(r: Result) -> str:
    created = r.provenance.get("created")
    return created if isinstance(created, str) else ""


def seed_summary(r: Result) -> SeedSummary | None:
    """The seeds a headline Result stands for, or None for one run."""
    d = r.provenance.get("seed_summary")
    if not isinstance(d, dict):
        return None
    return SeedSummary(tuple(d["seeds"]), {m: tuple(v) for m, v in d["values"].items()}, dict(d["sd"]),
                       tuple(d["left_out"]))


def is_number(value: Any) -> bool:
    """A finite int or float, and not a bool: what a metric, latency or throughput must be to be shown."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cell_rank(r: Result) -> tuple[int, bool, str, int]:
    """Which of several results for one table cell (other eval data: a --limit or --sample run beside the
    whole split) the tables keep: the most examples, then an ok one; the rest breaks ties the same way everywhere."""
    return (r.data.num_examples, r.status == "ok", r.data.fingerprint, r.task_version)


def one_per_cell(results: Iterable[Result]) -> list[Result]:
    """`headline`, then one result per (model, mode, task, split): the one `cell_rank` puts first."""
    kept: dict[tuple[str, str, str, str], Result] = {}
    for r in headline(results):
        key = (r.model, row_mode(r), r.task, r.split)
        if key not in kept or cell_rank(r) > cell_rank(kept[key]):
            kept[key] = r
    return list(kept.values())


def _data_rank(r: Result) -> tuple[int, int]:
    return (labelled_examples(r) or 0, train_cap(r) is None)


def subset_words(info: DataInfo, *, short: bool = False) -> str | None:
    """Which part of its split a result was scored on, in the one wording every table uses: 'the first
    1,000 examples' / '1,000 examples drawn at random' (short: 'the first 1,000' / '1,000 at random');
    None for the whole split."""
    n = f"{info.num_examples:,}"
    if info.subset == "first":
        return f"the first {n}" + ("" if short else " examples")
    if info.subset == "random":
        return f"{n} at random" if short else f"{n} examples drawn at random"
    return None


def describe_data(info: DataInfo) -> str:
    """'the SAMPLE suite (200 examples)' or 'real data (local ../shared/data, 872 examples)'."""
    count = subset_words(info) or f"{info.num_examples:,} examples"
    if info.source == "sample":
        return f"the SAMPLE suite ({count})"
    return f"real data ({info.source} {info.location}, {count})"


def holds_more(old: DataInfo, new: DataInfo) -> bool:
    """Whether a result on `old` is worth more than one on `new`: real data over the sample suite, then
    more examples of the split (a whole split over a --limit or --sample run)."""
    return (old.source != "sample", old.num_examples) > (new.source != "sample", new.num_examples)


def replacement_refusal(old: Result, data: DataInfo, adapter: str, seed: int | None = None) -> str | None:
    """Why a new result (made by `adapter` on `data`) must not silently take the place of `old`, or None.

    The resume rule redoes a result whose data or settings changed, in the same file. That must not turn
    an offline fallback to the sample suite, a --limit smoke test or a `bench score` of the same name
    into the loss of a result that took hours: those need --force."""
    if old.status != "ok":
        return None  # an 'unsupported' marker holds no measurement
    if old.adapter != adapter:
        return f"holds a result of adapter {old.adapter!r}, and this one is made by {adapter!r}"
    if holds_more(old.data, data):
        return f"holds a result on {describe_data(old.data)}, and this one is on {describe_data(data)}"
    made_with = old.provenance.get("seed")
    if seed is not None and made_with is not None and made_with != seed:  # seeds are samples to keep, not redo
        return f"holds the result of seed {made_with}, and this one is seed {seed}"
    return None


# ---------------------------------------------------------------------------------------
# paths: a model name or path must never make a result escape the results directory
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def model_slug(model: str) -> str:
    """A safe folder name for a model: hub ids keep their shape, local paths get a hash suffix."""
    text = model.strip()
    is_path = text.startswith(("/", ".", "~")) or os.sep in text and os.path.exists(text)
    base = Path(text).name if is_path else text.replace("/", "--")
    slug = _UNSAFE.sub("_", base).strip("._-")[:80] or "model"
    if is_path or slug != base:
        slug += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return slug


def result_path(results_dir: Path, model: str, task: str, split: str, single_split: bool,
                mode: str | None = None, train_cap: int | None = None, variant: str = "",
                random_weights: bool = False, seed: int = 0) -> Path:
    """results/<model>[.<mode>][.<variant>][.random-weights]/<task>[-<split>][-n<cap>][-s<seed>].json: an explicit
    --mode gets its own folder, so the frozen, fine-tuned and from-scratch runs of one model sit side by
    side instead of replacing each other, as does a non-default runtime (`variant`, e.g. 'onnxruntime
    int8') and an architecture-only run (`--weights random`) beside the pretrained one; a run capped by
    --max-train-examples (a learning-curve point) sits beside the full-data run, and so does another seed
    than 0 beside seed 0 (the tables show their mean)."""
    name = (task if single_split else f"{task}-{split}") + (f"-n{train_cap}" if train_cap else "") + \
        (f"-s{seed}" if seed else "")
    folder = model_slug(model) + (f".{_UNSAFE.sub('_', mode)}" if mode and mode != "auto" else "") + \
        (f".{_UNSAFE.sub('-', variant)}" if variant else "") + (".random-weights" if random_weights else "")
    path = (results_dir / folder / f"{_UNSAFE.sub('_', name)}.json").resolve()
    if results_dir.resolve() not in path.parents:
        raise UserError(f"result path {path} escapes the results directory {results_dir}")
    return path


# ---------------------------------------------------------------------------------------
# I/O
STALE_TEMP_SECONDS = 3600  # a live writer's temporary file lives for milliseconds


def sweep_stale_temps(results_dir: Path, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete the temporary files of writers killed mid-write (SIGKILL skips their cleanup); the count."""
    import time

    removed, now = 0, time.time()
    for tmp in results_dir.glob("*/.*.json.*.tmp") if results_dir.is_dir() else ():
        try:
            if now - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another run swept it first
    return removed


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the block, so concurrent leaderboard renders
    serialise their read-all-results-then-write step and a slow reader never overwrites a newer table."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def save(result: Result, path: Path) -> None:
    write_atomic(path, json.dumps(result.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def load(path: Path) -> Result:
    try:
        return Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: not a valid result file ({exc}); delete it, or redo it with 'bench run ... --force'")


def load_existing(path: Path) -> Result | None:
    """The result at `path`, or None where no run has written one yet."""
    return load(path) if path.exists() else None


def iter_results(results_dir: Path) -> Iterator[Result]:
    """Every result under the directory, in a stable order; a corrupt file is an error, never skipped."""
    if not results_dir.exists():
        return
    require_folder(results_dir, "--results-dir", "pass the folder your runs wrote to")
    for path in sorted(results_dir.glob("*/*.json")):
        yield load(path)


def settings_key(settings: dict[str, Any]) -> str:
    """A stable hash of the settings that change a result's numbers (mode, limit, seed, weights...)."""
    return stable_hash(settings, 16)
