"""The one evaluation loop: data → adapter → predictions → metrics → Result on disk.

`run` reads top to bottom like a training script; batching, timing and scoring live in the
named helpers below it. Nothing here assumes one process except `write`: sharding adds a
gather before scoring, and only rank 0 writes.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import results as R
from .data import HubAccess, Split, load_split, require_split
from .distributed import SINGLE, World, barrier, broadcast, gather, shard
from .errors import UserError
from .provenance import code_identity, collect as provenance
from .models.base import Adapter, Fitted
from .tasks import TaskSpec, references
from .timing import latency_ms, peak_memory_mb, reset_peak_memory, stopwatch

@dataclass
class RunConfig:
    model: str
    data: str = "sample"
    results_dir: Path = Path("results")
    limit: int | None = None
    sample: int | None = None        # N examples at random instead of the first N (`limit`)
    batch_size: int | None = None    # None: automatic, length-sorted batches under a padded-token budget
    batch_tokens: int | None = None  # that budget (padded tokens per batch); None: the device kind's default
    batch_cost: int | str | None = "auto"  # padded tokens one more batch costs the plan; "auto": the device
                                           # kind's; None: each batch filled in turn (see plan_batches)
    prefetch: bool | None = None     # collate batch i+1 on a helper thread while batch i runs; None: on CUDA
    latency_samples: int = 32        # batch-size-1 timings, on a fixed seeded sample of examples
    latency_warmup: int = 3
    seed: int = 0
    force: bool = False
    quiet: bool = False
    command: str = field(default_factory=lambda: "bench " + shlex.join(sys.argv[1:]))  # re-runnable as is
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    world: World = SINGLE  # under torchrun / accelerate: each rank predicts a shard, rank 0 writes
    hub: HubAccess | None = None     # the run's one decision about the hub; None: data loading probes it
    data_fallback: str | None = None  # why `data` is not the source asked for (recorded in provenance)
    adapter_provider: str = "builtin"  # the package (name==version) whose adapter ran: a plugin's release
    code: tuple[str | None, str] = field(default_factory=code_identity)  # the harness's commit and source hash
                                                                        # as the run started, not as a result lands


@dataclass
class Outcome:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)     # already there with the same key
    unsupported: list[Path] = field(default_factory=list)


@dataclass
class _TaskPlan:
    task: TaskSpec
    paths: dict[str, Path]
    evals: dict[str, Split]
    key: str
    todo: list[str]
    train: Split | None = None  # the train split, when the resume check already read it


def run(adapter: Adapter, tasks: Sequence[TaskSpec], cfg: RunConfig, outcome: Outcome | None = None) -> Outcome:
    """Evaluate every eval split of every task; `outcome` fills as results land (kept on Ctrl-C).

    Every task is planned before any is trained, so a missing split or a refused replacement of the
    third task stops the run before the first has spent an hour training."""
    return run_seeds([(adapter, cfg)], tasks, outcome)


def run_seeds(runs: list[tuple[Adapter, RunConfig]], tasks: Sequence[TaskSpec],
              outcome: Outcome | None = None, labels: Sequence[str] | None = None) -> Outcome:
    """`run` for each (adapter, config) in turn, one per seed (or seed and train size, `labels` saying which),
    with every run's tasks planned before the first trains. Each adapter is dropped from `runs` once its seed is done, so its trained model can be
    freed before the next seed trains its own."""
    outcome = outcome if outcome is not None else Outcome()
    if runs and runs[0][1].world.is_main:
        R.sweep_stale_temps(runs[0][1].results_dir)
    plans = [[_plan(adapter, task, cfg) for task in tasks] for adapter, cfg in runs]
    for i in range(len(runs)):
        (adapter, cfg), runs[i] = runs[i], None  # type: ignore[call-overload]
        if labels and labels[i]:
            cfg.log(labels[i])  # which seed (and train size) this is
        _execute(adapter, cfg, plans[i], tasks, outcome)
        device = adapter.device
        del adapter
        _free_cache(device)
    return outcome


def _execute(adapter: Adapter, cfg: RunConfig, plans: list["_TaskPlan"], tasks: Sequence[TaskSpec],
             outcome: Outcome) -> None:
    if adapter.needs_corpus:
        texts, fingerprint = corpus(tasks, cfg.data, cfg.hub)
        adapter.pretrain(texts, fingerprint)
    main = cfg.world.is_main
    for plan in plans:
        task, paths, evals, key, todo = plan.task, plan.paths, plan.evals, plan.key, plan.todo
        outcome.skipped += [paths[s] for s in paths if s not in todo]
        if not todo:
            cfg.log(f"{task.name}: results are current, skipped (use --force to redo)")
            continue

        reason = adapter.unsupported_reason(task)
        if reason:
            for s in todo:
                cfg.log(f"{task.name}/{s}: skipped: {reason}")
                if main:
                    write(_unsupported(adapter, task, evals[s], reason, cfg, key), paths[s])
                outcome.unsupported.append(paths[s])
            continue

        train = plan.train or (load_split(task, task.dataset.train, cfg.data, hub=cfg.hub)
                               if task.dataset.train else None)
        fitted = fit(adapter, task, train)
        if fitted.training and not fitted.from_cache:
            cfg.log(f"{task.name}: {training_line(fitted.training, fitted.train_seconds)}")
        for s in todo:
            predictions, efficiency = predict_split(adapter, task, evals[s], cfg, fitted)
            if not main:
                continue
            result = build_result(adapter, fitted, task, evals[s], predictions, efficiency, cfg, key, train)
            write(result, paths[s])
            outcome.written.append(paths[s])
            scores = ", ".join(f"{k} {v:.1f}" for k, v in result.metrics.items())
            cfg.log(f"{task.name}/{s}: {scores}  ({efficiency.throughput_per_s:.0f} ex/s) -> {paths[s]}")


def _plan(adapter: Adapter, task: TaskSpec, cfg: RunConfig) -> _TaskPlan:
    """What one task will do: its result paths, eval splits and the splits to (re)do, after checking
    that its train split is there and that no result it would replace holds more than it will."""
    splits = [es.split for es in task.dataset.eval]
    cap = getattr(adapter.options, "max_train_examples", None) if task.dataset.train else None
    def where(split: str, seed: int) -> Path:
        return R.result_path(cfg.results_dir, cfg.model, task.name, split, len(splits) == 1, adapter.mode, cap,
                             adapter.variant(), random_weights=adapter.weights() == "random", seed=seed)

    paths = {s: where(s, cfg.seed) for s in splits}
    evals = {s: load_split(task, s, cfg.data, limit=cfg.limit, sample=cfg.sample, hub=cfg.hub) for s in splits}
    key = _resume_key(adapter, task, cfg)
    todo: list[str] | None = None
    refused: str | None = None
    if cfg.world.is_main:
        existing = {s: R.load_existing(paths[s]) for s in splits}  # read once, for both checks
        current = _Current(adapter, task, cfg, key)
        todo = [s for s in splits if cfg.force or not current(existing[s], evals[s])]
        errors = [] if cfg.force else [replacement_error(paths[s], existing[s], evals[s], adapter.name, cfg.seed,
                                                         lambda seed, s=s: where(s, seed)) for s in todo]
        if cfg.seed:
            errors += [_kept_under_seed_0s_name(where(s, 0), paths[s], cfg.seed) for s in todo if not existing[s]]
        refused = next((e for e in errors if e), None)
    todo, refused = broadcast((todo, refused), cfg.world)  # every rank must take the same branches
    if refused:
        raise UserError(refused)
    train = current.train if cfg.world.is_main and todo else None  # read and validated by the resume check
    if todo and task.dataset.train and train is None and not adapter.unsupported_reason(task):
        require_split(task, task.dataset.train, cfg.data)
    return _TaskPlan(task, paths, evals, key, todo, train)


def fit(adapter: Adapter, task: TaskSpec, train: Split | None) -> Fitted:
    """`adapter.fit`, holding it to the contract: what happened comes back as a `Fitted` record."""
    fitted = adapter.fit(task, train)
    if not isinstance(fitted, Fitted):
        raise UserError(f"adapter {adapter.name}: fit() returned {type(fitted).__name__}, not a Fitted record; "
                        "return Fitted(mode=..., weights=...) (benchmark.models.base)")
    if problem := fitted.problem():
        raise UserError(f"adapter {adapter.name}: fit() returned Fitted({problem}); fix the adapter")
    return fitted


def training_line(block: Mapping[str, Any], seconds: float | None) -> str:
    """How a training run went, in one line: the data it saw, its speed and its share of the FLOP floor."""
    floor = block.get("floor_fraction")
    return (f"trained on {block['examples']:,} examples ({block['real_tokens']:,} real tokens, padding "
            f"{block['padding']:.2f}) in {seconds or 0:.0f} s: {block['tokens_per_s']:,.0f} tokens/s"
            + ("" if floor is None else f", {100 * floor:.0f}% of the FLOP floor at {block['matrix_gflops']:.0f} GFLOP/s"))


def corpus(tasks: Sequence[TaskSpec], data: str, hub: HubAccess | None = None) -> tuple[list[str], str]:
    """The unlabelled text of every train split in the run (inputs only, never labels or eval data)."""
    from .data import chain

    texts: list[str] = []
    fingerprint = "corpus"
    for task in sorted(tasks, key=lambda t: t.name):
        if task.dataset.train:
            split = load_split(task, task.dataset.train, data, hub=hub)
            texts += [text for row in split.rows for text in task.texts(row)]
            fingerprint = chain(fingerprint, "add_train_text", task=task.name, data=split.info.fingerprint)
    return texts, fingerprint


# ---------------------------------------------------------------------------------------
# batching and timing
def predict_split(adapter: Adapter, task: TaskSpec, split: Split, cfg: RunConfig,
                  fitted: Fitted | None = None) -> tuple[list[Any], R.Efficiency]:
    """Encode once, predict in length-sorted batches, restore the original order, then time bs=1."""
    sync = adapter.synchronize
    reset_peak_memory(adapter.device)
    with stopwatch(sync) as enc_t:
        items = adapter.encode(task, split.rows)
    if len(items) != len(split.rows):
        raise UserError(f"adapter {adapter.name}: encode returned {len(items)} items for {len(split.rows)} examples of "
                        f"{task.name}; it must return one per example, in order (fix the adapter)")
    lengths = [adapter.length(item) for item in items]
    order = sorted(range(len(items)), key=lambda i: (lengths[i], i))
    barrier(cfg.world)  # the clock starts when every rank is ready: throughput is the whole job's
    with stopwatch(sync) as eval_t:
        mine, sizing = _predict_batches(adapter, task, items, lengths, shard(order, cfg.world), cfg)
        pairs = gather(mine, cfg.world)
    predictions: list[Any] = [None] * len(items)
    for i, p in pairs or ():
        predictions[i] = p
    if cfg.world.is_main:
        _check_labels(adapter, task, predictions)
    total, trainable = adapter.parameter_counts()
    if fitted is not None and fitted.trainable_parameters is not None:
        trainable = fitted.trainable_parameters  # what fit() said it trained, as the contract has it
    backend, quantization = adapter.runtime()
    rng = random.Random(cfg.seed)
    n_latency = min(cfg.latency_samples, len(items)) if cfg.world.is_main else 0  # one device's latency
    sample = sorted(rng.sample(range(len(items)), n_latency))
    latency = latency_ms(lambda i: _one(adapter, task, items[i]), sample, warmup=cfg.latency_warmup, sync=sync)
    efficiency = R.Efficiency(
        num_parameters=total, trainable_parameters=trainable, latency_ms=latency, latency_samples=len(sample),
        throughput_per_s=round(len(items) / max(eval_t[0], 1e-9), 2), batch_size=sizing.largest,
        batch_tokens=sizing.tokens, batch_cost=sizing.cost, oom_halvings=sizing.halvings, prefetch=sizing.prefetch,
        eval_seconds=round(eval_t[0], 4), encode_seconds=round(enc_t[0], 4),
        train_seconds=fitted.train_seconds if fitted else None,
        feature_seconds=fitted.feature_seconds if fitted else None,
        pretrain_seconds=fitted.pretrain_seconds if fitted else None,
        training=dict(fitted.training) if fitted and fitted.training else None,
        peak_memory_mb=peak_memory_mb(adapter.device), device=adapter.device, dtype=adapter.dtype(),
        backend=backend, quantization=quantization,
    )
    return predictions, efficiency


# Padded tokens per batch when the batch size is automatic: the CPU value is the fastest of the
# budgets measured by `make perf` (leaderboards/perf.md, "Automatic batch budget"); the CUDA value is
# large enough to keep the device busy between launches. At most AUTO_MAX_BATCH examples either way.
AUTO_BATCH_TOKENS = {"cpu": 2048, "cuda": 65536}
AUTO_MAX_BATCH = 1024
# What one more batch costs, in padded tokens, when the length-sorted pass is split under that budget:
# on the CPU a forward call's fixed cost (dispatch, smaller products), the fastest of the values measured
# by `make perf` (leaderboards/perf.md, "Backends", the batch plan table); None (CUDA, not yet measured
# there): each batch filled in turn, the fewest batches the budget allows.
AUTO_BATCH_COST = {"cpu": 16, "cuda": None}


@dataclass
class Sizing:
    """How the pass was batched, for the Result: the largest batch, the token budget and the cost charged
    per batch, OOM halvings, and whether the next batch was collated ahead."""

    largest: int = 0
    tokens: int | None = None
    cost: int | None = None
    halvings: int = 0
    prefetch: bool = False


def _device_kind(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


def auto_batch_tokens(device: str) -> int:
    return AUTO_BATCH_TOKENS[_device_kind(device)]


def auto_batch_cost(device: str, requested: int | str | None = "auto") -> int | None:
    if requested == "auto":
        return AUTO_BATCH_COST[_device_kind(device)]
    return None if requested is None else int(requested)


def plan_batches(lengths: Sequence[int], *, batch_size: int | None = None, tokens: int | None = None,
                 cost: int | None = None) -> list[int]:
    """Ends of the batches over length-sorted items: a fixed count each, or the contiguous split into
    batches of at most `tokens` padded tokens (count x longest; an example over budget runs alone) and
    AUTO_MAX_BATCH examples that minimises the padded tokens plus `cost` per batch.

    Contiguous splits of sorted items hold an optimal one, so a dynamic programme over the ends finds it
    (one numpy minimum per item: 4 ms for SST-2's 872 sentences, under 0.2% of a CPU pass). Filling each
    batch in turn instead pads it to its longest item even where one more batch would cost less than the
    padding it saves; `cost` None keeps that fill, for devices whose whole pass is a few times the plan."""
    import numpy as np

    n = len(lengths)
    if batch_size is not None:
        return list(range(batch_size, n, batch_size)) + [n] if n else []
    assert tokens is not None
    if not n:
        return []
    if cost is None:
        return _fill_batches(lengths, tokens)
    width = np.maximum.accumulate(np.maximum(np.asarray(lengths, dtype=np.int64), 1))  # exact when sorted
    best = np.zeros(n + 1, dtype=np.int64)  # least cost of the first j items
    cut = np.zeros(n + 1, dtype=np.int64)   # where the last batch of that split starts
    starts = np.arange(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        w = int(width[j - 1])
        lo = max(0, j - AUTO_MAX_BATCH, j - max(1, tokens // w))
        total = best[lo:j] + (j - starts[lo:j]) * w
        k = int(np.argmin(total))  # ties: the earliest start, so the larger batch
        best[j], cut[j] = total[k] + cost, lo + k
    ends, j = [], n
    while j:
        ends.append(j)
        j = int(cut[j])
    return ends[::-1]


def _fill_batches(lengths: Sequence[int], tokens: int) -> list[int]:
    """Each batch filled in turn with as many items as fit the budget: the fewest batches."""
    ends, end, n = [], 0, len(lengths)
    while end < n:
        start, longest = end, 0
        while end < n and end - start < AUTO_MAX_BATCH:
            longest = max(longest, lengths[end])
            if end > start and longest * (end - start + 1) > tokens:
                break
            end += 1
        ends.append(end)
    return ends


def _predict_batches(adapter: Adapter, task: TaskSpec, items: list[Any], item_lengths: Sequence[int],
                     order: list[int], cfg: RunConfig) -> tuple[list[tuple[int, Any]], Sizing]:
    """(index, prediction) for each index of `order`, in batches; halves the batch on out-of-memory.

    With prefetch, batch i+1 is collated (padded, copied to the device) on a helper thread while the
    device runs batch i: the main thread waits on the device with the GIL released, so the host's
    per-batch work leaves the critical path. A look-ahead made stale by a halving is dropped."""
    from concurrent.futures import ThreadPoolExecutor, wait
    from contextlib import nullcontext

    from tqdm.auto import tqdm

    predictions: list[tuple[int, Any]] = []
    lengths = [max(1, item_lengths[i]) for i in order]
    batch_size = cfg.batch_size
    automatic = batch_size is None
    sizing = Sizing(tokens=None if not automatic else (cfg.batch_tokens or auto_batch_tokens(adapter.device)),
                    cost=auto_batch_cost(adapter.device, cfg.batch_cost) if automatic else None)
    sizing.prefetch = prefetch = cfg.prefetch if cfg.prefetch is not None else adapter.device.startswith("cuda")
    ahead: tuple[int, int, Any] | None = None  # (start, end, future) of the batch collated in advance
    start = 0
    quiet = cfg.quiet or not cfg.world.is_main

    def plan(first: int) -> list[int]:
        return [first + e for e in plan_batches(lengths[first:], batch_size=batch_size, tokens=sizing.tokens,
                                                cost=sizing.cost)]

    ends = plan(0)

    def collate(lo: int, hi: int) -> Any:
        return adapter.collate(task, [items[i] for i in order[lo:hi]])

    with tqdm(total=len(order), desc=f"{task.name}", unit="ex", disable=quiet, leave=False) as bar, \
            (ThreadPoolExecutor(1, thread_name_prefix="collate") if prefetch else nullcontext()) as pool:
        while start < len(order):
            end = ends[bisect.bisect_right(ends, start)]
            try:
                batch = ahead[2].result() if ahead and ahead[:2] == (start, end) else collate(start, end)
                ahead = None
                if pool is not None and end < len(order):
                    after = ends[bisect.bisect_right(ends, end)]
                    ahead = (end, after, pool.submit(collate, end, after))
                out = adapter.predict_collated(task, batch)
            except Exception as exc:
                if not _is_oom(exc) or end - start == 1:
                    raise
                if ahead is not None:  # it holds device memory, and its bounds are stale after a halving
                    ahead[2].cancel()
                    wait([ahead[2]])
                batch = ahead = None
                sizing.halvings += 1
                if batch_size is not None:
                    batch_size = max(1, (end - start) // 2)
                    cfg.log(f"{task.name}: out of memory, batch size halved to {batch_size}")
                else:
                    sizing.tokens = max(1, sizing.tokens // 2)
                    cfg.log(f"{task.name}: out of memory, batch budget halved to {sizing.tokens} tokens")
                _free_cache(adapter.device)
                ends = plan(start)
                continue
            if len(out) != end - start:
                raise UserError(f"adapter {adapter.name}: predict returned {len(out)} predictions for {end - start} "
                                "inputs; it must return one per input, in order (fix the adapter)")
            predictions += zip(order[start:end], out)
            sizing.largest = max(sizing.largest, end - start)
            start = end
            bar.update(len(out))
    return predictions, sizing


def _one(adapter: Adapter, task: TaskSpec, item: Any) -> Any:
    """One example's prediction, for the latency pass: held to the same one-per-input contract."""
    out = adapter.predict(task, [item])
    if len(out) != 1:
        raise UserError(f"adapter {adapter.name}: predict returned {len(out)} predictions for 1 input; it must "
                        "return one per input (fix the adapter)")
    return out


def _check_labels(adapter: Adapter, task: TaskSpec, predictions: Sequence[Any]) -> None:
    """Predictions of the contract's type: a class id among the task's labels (a 1-based id or a
    vocabulary id would score as a plausible wrong answer; only -1 means 'no label'), an answer string."""
    if task.kind != "classification":
        bad = next((p for p in predictions if not isinstance(p, str)), _NONE)
        if bad is not _NONE:
            raise UserError(f"adapter {adapter.name}: predicted {bad!r} ({type(bad).__name__}) for {task.name}; "
                            "a QA prediction is the answer text ('' for none); fix the adapter")
        return
    n = len(task.labels)
    wrong = next((p for p in predictions if isinstance(p, bool) or not _is_int(p)), _NONE)
    if wrong is not _NONE:
        raise UserError(f"adapter {adapter.name}: predicted {wrong!r} ({type(wrong).__name__}) for {task.name}; a "
                        f"classification prediction is a label id 0 to {n - 1}, or -1; fix the adapter")
    bad = next((p for p in predictions if not -1 <= p < n), None)
    if bad is not None:
        raise UserError(f"adapter {adapter.name}: predicted label {bad} for {task.name}, which has {n} labels (ids 0 "
                        f"to {n - 1}, or -1 for an output that names none); fix the adapter")


_NONE = object()  # "no such prediction", where None itself is a prediction to refuse


def _is_int(value: Any) -> bool:
    """A Python or numpy integer (adapters often return numpy argmax results)."""
    import numbers

    return isinstance(value, numbers.Integral)


def _is_oom(exc: BaseException) -> bool:
    """Out of memory: MemoryError, or torch's out-of-memory errors (by class, or by the message CUDA and
    the CPU allocator give); an adapter's own error that merely mentions memory is not retried."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("cuda out of memory" in text or "defaultcpuallocator: can't allocate" in text
                                              or text.startswith("out of memory"))


def _free_cache(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------
# scoring and results
def score(task: TaskSpec, predictions: list[Any], rows: Sequence[dict[str, Any]],
          seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]]]:
    from .metrics import bootstrap_ci, score as compute

    refs = references(task, rows)
    kw = dict(positive=task.positive_index, normalizer=task.normalizer)
    metrics = compute(task.kind, task.metrics, predictions, refs, **kw)
    ci = bootstrap_ci(task.kind, task.metrics, predictions, refs, seed=seed, **kw)
    return ({k: round(float(v), 4) for k, v in metrics.items()},
            {k: [round(float(lo), 4), round(float(hi), 4)] for k, (lo, hi) in ci.items()})


def build_result(adapter: Adapter, fitted: Fitted, task: TaskSpec, split: Split, predictions: list[Any],
                 efficiency: R.Efficiency, cfg: RunConfig, key: str, train: Split | None = None) -> R.Result:
    metrics, ci95 = score(task, predictions, split.rows, cfg.seed)
    note = ""
    if efficiency.oom_halvings:
        asked = f"batch size {cfg.batch_size}" if cfg.batch_size else "the automatic batch size"
        note = (f"out of memory at {asked}: the batch was halved {efficiency.oom_halvings} time(s) and the pass "
                f"finished at batch size {efficiency.batch_size}")
    prov = result_provenance(task, cfg, adapter.settings(), key, fitted.revision, adapter.device)
    prov["train_data"] = None
    if train is not None:  # what it learned from, and how much of it (--max-train-examples: a seeded sample)
        cap = getattr(adapter.options, "max_train_examples", None)
        used = min(cap, train.info.num_examples) if cap else train.info.num_examples
        if fitted.labelled_examples is not None:  # a checkpoint run as it is (0), a K-shot prompt (K)
            used = fitted.labelled_examples
        prov["train_data"] = {**dataclasses.asdict(train.info), "max_examples": cap, "used_examples": used}
    return R.Result(
        task=task.name, task_version=task.version, suite=task.suite, kind=task.kind, split=split.name,
        column=task.column(split.name), model=cfg.model, adapter=adapter.name, mode=fitted.mode,
        weights=fitted.weights, data=split.info, metrics=metrics, ci95=ci95, efficiency=efficiency, note=note,
        provenance=prov, variant=adapter.variant(),
    )


def _unsupported(adapter: Adapter, task: TaskSpec, split: Split, reason: str, cfg: RunConfig, key: str) -> R.Result:
    return R.Result(
        task=task.name, task_version=task.version, suite=task.suite, kind=task.kind, split=split.name,
        column=task.column(split.name), model=cfg.model, adapter=adapter.name, mode=adapter.mode,
        weights=adapter.weights(), data=split.info, status="unsupported", note=reason, variant=adapter.variant(),
        provenance=result_provenance(task, cfg, adapter.settings(), key, adapter.revision(), adapter.device),
    )


def write(result: R.Result, path: Path) -> None:
    try:
        R.save(result, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}; earlier results are intact, "
                        "fix the disk or permissions and re-run to finish") from exc


def _resume_key(adapter: Adapter, task: TaskSpec, cfg: RunConfig) -> str:
    return R.settings_key({"adapter": adapter.name, "settings": adapter.settings(), "task_version": task.version,
                           "task_sha256": task.sha256, "seed": cfg.seed})


def replacement_error(path: Path, old: R.Result | None, split: Split, adapter: str, seed: int | None = None,
                      seed_path: Callable[[int], Path] | None = None) -> str | None:
    """The one-line error for a redo that would replace `old` (read from `path`), a result holding more
    (see `replacement_refusal`). `seed_path`: where each seed's result belongs, to name the file that an
    old result of another seed, written before each seed had a file of its own, should move to."""
    why = old and R.replacement_refusal(old, split.info, adapter, seed)
    other = R.seed_of(old) if old is not None else None
    if why and seed_path and other and other != seed:
        return (f"{path} {why}, kept under seed 0's name; rename it to {seed_path(other).name} to keep it beside "
                "this one, or pass --force to replace it")
    return why and (f"{path} {why}; pass --force to replace it, or write to another --results-dir")


def _kept_under_seed_0s_name(plain: Path, path: Path, seed: int) -> str | None:
    """A run of seed N whose result a file from before seeds had names of their own keeps under seed 0's
    name (`plain`): say so, instead of training the seed again beside it at `path`."""
    old = R.load_existing(plain)
    if old is None or R.seed_of(old) != seed:
        return None
    return (f"{plain} holds the result of seed {seed} under seed 0's name (written before each seed had a file of "
            f"its own); rename it to {path.name} and run again")


class _Current:
    """Resume rule: reuse a result only if it was made from the same eval data, settings, train data,
    model and adapter release. The train split and a local folder's hash are read only for a result that passes the
    cheap checks, and once per task; the train split read here is kept for the run (`train`)."""

    def __init__(self, adapter: Adapter, task: TaskSpec, cfg: RunConfig, key: str) -> None:
        self.adapter, self.task, self.cfg, self.key = adapter, task, cfg, key
        self.train: Split | None = None
        self.revision: str | None = None
        self.asked_revision = False

    def __call__(self, old: R.Result | None, split: Split) -> bool:
        if old is None or old.data.fingerprint != split.info.fingerprint or \
                old.provenance.get("settings_key") != self.key:
            return False
        trained_on = (old.provenance.get("train_data") or {}).get("fingerprint")
        if trained_on and self.task.dataset.train:
            if self.train is None:
                try:
                    self.train = load_split(self.task, self.task.dataset.train, self.cfg.data, hub=self.cfg.hub)
                except UserError:
                    return False  # redo: the run itself says what is wrong with the train split
            if trained_on != self.train.info.fingerprint:
                return False
        if not self.asked_revision:
            self.revision, self.asked_revision = self.adapter.revision(), True
        provider = old.provenance.get("adapter_provider")
        if provider and provider != self.cfg.adapter_provider:
            return False  # another release of a plugin adapter
        made_by = old.provenance.get("model_revision")
        return not (made_by and self.revision and made_by != self.revision)


def result_provenance(task: TaskSpec, cfg: RunConfig, settings: dict[str, Any], key: str, revision: str | None,
                device: str) -> dict[str, Any]:
    prov = provenance(task, settings=settings, key=key, revision=revision, device=device, seed=cfg.seed,
                      world_size=cfg.world.size, command=cfg.command, code=cfg.code)
    prov["adapter_provider"] = cfg.adapter_provider
    if cfg.data_fallback:
        prov["data_fallback"] = cfg.data_fallback  # the run asked for the hub and got the sample suite
    return prov
