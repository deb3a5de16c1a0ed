"""Results -> one markdown leaderboard per suite (`leaderboards/glue.md`, `qa.md`, `<suite>.md`).

A suite file is regenerated from *all* results every time, and the same results always give the
same bytes: rows are sorted, nothing depends on the clock or on the order results were read.

Rules that keep the tables honest:

* **Provenance is never mixed.** Each suite file holds one table ("section") per data
  provenance: one per real data source (`local <dir>`, `predictions <location>`, and one for the
  Hugging Face Hub, whose `location` names the dataset of each task and so is listed under the
  heading instead of splitting the table), one for the built-in sample suite (synthetic data),
  and separate ones for random weights (on real data, and on the sample suite).
* **"—" is never a zero.** An unsupported task (the model cannot do it), a task not run, or a
  missing measurement all show "—".
* **Suite average.** For each task, its score is the mean of its metrics (GLUE convention:
  QQP = mean(acc, F1), SQuAD = mean(EM, F1)); a task reported in several columns is averaged over
  those columns first (MNLI = mean(MNLI-m, MNLI-mm), so MNLI counts once, not twice); the suite
  average is the mean over tasks. It is shown only when the row has an ok result for every task
  that has at least one ok result in that section, otherwise "—".
* **Duplicates are not averaged.** If one (model, mode, column) appears twice in a section
  (e.g. two `--limit` values), the result on more examples is kept and a footnote says so.
* **Mixtures are named.** A note names each cell trained on a `--max-train-examples` sample of its train
  split, each row whose cells come from more than one model revision, and each row whose latency and
  throughput medians pool cells timed on different hardware.
* **Every cell is escaped** (`escape_cell`): `|`, backslashes, newlines and HTML specials cannot
  break a table or inject markup.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import UserError
from .results import Result, cell_rank, headline, is_number, row_mode, seed_summary, subset_words, train_cap
from .storage import write_files
from .tasks import TaskSpec, suite_problem

DASH = "—"
SUITE_TITLES = {"glue": "GLUE", "qa": "QA", "superglue": "SuperGLUE"}
# Columns in the order papers print them; any other column follows, alphabetically.
CANONICAL_COLUMNS = {"glue": ("SST-2", "QQP", "MNLI-m", "MNLI-mm"), "qa": ("SQuAD", "TriviaQA")}
METRIC_ORDER = ("accuracy", "exact_match", "f1", "mcc")
METRIC_ABBR = {"accuracy": "acc", "exact_match": "EM", "f1": "F1", "mcc": "MCC"}
# Sources whose `location` is per task (hub: "<dataset id>/<config>"): grouped by source alone.
PER_TASK_LOCATION = ("hub",)
SOURCE_ORDER = ("hub", "local", "predictions")
LATENCY_HEADER = "Latency p50 (ms, bs=1)"
THROUGHPUT_HEADER = "Throughput (ex/s)"
SAMPLE_BANNER = "built-in sample suite (synthetic data; not comparable to published numbers)"
RANDOM_BANNER = "random weights (architecture only: accuracy is meaningless, latency and size are real)"

_CONTROL = {c: " " for c in map(chr, [*range(0x20), 0x7F, 0x85, 0x2028, 0x2029])}
_BIDI = {c: "" for c in map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])}  # text that reorders text


# ---------------------------------------------------------------------------------------
# cell formatting
def escape_cell(text: Any) -> str:
    """Make any value safe inside a GitHub markdown table cell (and in headings and notes)."""
    s = "" if text is None else str(text)
    s = s.replace("\\", "\\\\").replace("|", "\\|")          # a pipe must not end the cell
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = s.replace("\r\n", " ").translate(str.maketrans({**_CONTROL, **_BIDI}))  # a newline must not end the row
    for c in "[]`":  # a name must not become a link, an image or a code span
        s = s.replace(c, "\\" + c)
    return s


def format_params(n: int | float | None) -> str:
    """Human parameter count: 110M, 66.4M, 1.2k, 7B; "0" for zero, "—" when unknown."""
    if n is None or isinstance(n, bool) or (isinstance(n, float) and not math.isfinite(n)):
        return DASH
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n < 1000:
        return sign + str(int(round(n)))
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        value = round(n / scale, 1)
        if value >= 1:
            return sign + f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return sign + str(int(n))  # unreachable: n >= 1000 always finds 'k'


def _number(value: float | None) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DASH
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def cell_text(r: Result | None, metric: str) -> str:
    """A table cell: the metric, and for a mean over seeds its sample standard deviation ('91.2 ± 0.4')."""
    text = _number(_ok_metric(r, metric))
    summary = seed_summary(r) if r is not None and text != DASH else None
    sd = summary.sd.get(metric) if summary else None
    return text if sd is None else f"{text} ± {_number(sd)}"


def _measure(value: float | None) -> str:
    """Latency and throughput span 1e-4 to 1e7: three significant figures, thousands separated.

    The switch is made on the rounded value: 999.7 at three figures is 1000, which `.3g` would print
    as '1e+03'."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DASH
    if abs(float(f"{value:.3g}")) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def suite_title(suite: str) -> str:
    return SUITE_TITLES.get(suite, suite[:1].upper() + suite[1:])


def metric_label(metric: str) -> str:
    return METRIC_ABBR.get(metric, metric)


# ---------------------------------------------------------------------------------------
# sections: one table per data provenance
@dataclass(frozen=True, order=True)
class SectionKey:
    rank: int         # 0 real, 1 sample, 2 random weights on real data, 3 random weights on sample
    source_rank: int  # hub, local, predictions, then any other source
    source: str
    location: str     # '' when the source's locations are per task (hub)


def section_key(r: Result) -> SectionKey:
    sample = r.data.source == "sample"
    rank = (3 if sample else 2) if r.weights == "random" else (1 if sample else 0)
    location = "" if r.data.source in PER_TASK_LOCATION else r.data.location
    source_rank = SOURCE_ORDER.index(r.data.source) if r.data.source in SOURCE_ORDER else len(SOURCE_ORDER)
    return SectionKey(rank, source_rank, r.data.source, location)


def _data_label(key: SectionKey) -> str:
    return f"{key.source} {key.location}".strip()


def heading_text(title: str, key: SectionKey) -> str:
    """A section heading's words on one line, unescaped: the markdown and the page each escape it their way."""
    if key.rank == 0:
        text = f"{title} — data: {_data_label(key)}"
    elif key.rank == 1:
        text = f"{title} — {SAMPLE_BANNER}"
    elif key.rank == 2:
        text = f"{title} — {RANDOM_BANNER} — data: {_data_label(key)}"
    else:
        text = f"{title} — {RANDOM_BANNER} — on the {SAMPLE_BANNER}"
    if key.rank in (1, 3) and key.location not in ("", "builtin"):
        text += f" — {key.location}"
    return text.replace("\r\n", " ").translate(str.maketrans(_CONTROL))


def _heading(title: str, key: SectionKey) -> str:
    return "## " + escape_cell(heading_text(title, key))


# ---------------------------------------------------------------------------------------
# the numbers of one section, shared by the markdown table and the plot
@dataclass(frozen=True)
class ColumnSpec:
    column: str
    task: str
    metrics: tuple[str, ...]        # shown in the table
    score_metrics: tuple[str, ...]  # averaged into the task score (the task's declared metrics)
    primary: str


@dataclass
class Row:
    model: str
    mode: str
    cells: dict[str, Result]                     # column -> the kept result
    params: str = DASH
    average: float | None = None
    primary_mean: float | None = None            # mean primary metric over ok results (plot fallback)
    latency_p50: float | None = None
    throughput: float | None = None


@dataclass
class Section:
    key: SectionKey
    columns: list[ColumnSpec]
    rows: list[Row]
    average_tasks: list[str]                     # tasks the suite average needs
    notes: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)


def _metric_sort(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m))


def _column_specs(suite: str, kept: Sequence[Result], tasks: Mapping[str, TaskSpec]) -> list[ColumnSpec]:
    by_column: dict[str, list[Result]] = {}
    for r in kept:
        by_column.setdefault(r.column, []).append(r)
    canonical = CANONICAL_COLUMNS.get(suite, ())
    order = sorted(by_column, key=lambda c: (0, canonical.index(c), "") if c in canonical else (1, 0, c))
    specs = []
    for column in order:
        results = by_column[column]
        task = min(r.task for r in results)
        seen = _metric_sort(m for r in results if r.status == "ok" for m in r.metrics)
        spec = tasks.get(task)
        declared = list(spec.metrics) if spec else seen
        # Only unsupported results and no spec: one "—" column under the bare column name.
        shown = declared + [m for m in seen if m not in declared] or [""]
        specs.append(ColumnSpec(column, task, tuple(shown), tuple(declared),
                                spec.primary_metric if spec else (shown[0] if shown else "")))
    return specs


def _dedupe(results: Sequence[Result]) -> tuple[list[Result], list[str]]:
    """One result per (model, mode, column): the one on most examples; each drop gets a note."""
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.model, row_mode(r), r.column), []).append(r)
    kept, notes = [], []
    for (model, mode, column), group in sorted(groups.items()):
        group.sort(key=cell_rank, reverse=True)
        kept.append(group[0])
        if len(group) > 1:
            dropped = ", ".join(f"n={r.data.num_examples} (data {r.data.fingerprint[:12]})" for r in group[1:])
            notes.append(f"{model} ({mode or DASH}), {column}: {len(group)} results for the same column; "
                         f"kept the one on n={group[0].data.num_examples} examples "
                         f"(data {group[0].data.fingerprint[:12]}), dropped {dropped}. Not averaged.")
    return kept, notes


def _ok_metric(r: Result | None, metric: str) -> float | None:
    if r is None or r.status != "ok":
        return None
    value = r.metrics.get(metric)
    return float(value) if is_number(value) else None


def _column_score(r: Result | None, spec: ColumnSpec) -> float | None:
    values = [_ok_metric(r, m) for m in spec.score_metrics]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _average(row: Row, columns: list[ColumnSpec], average_tasks: list[str]) -> float | None:
    task_scores = []
    for task in average_tasks:
        scores = [_column_score(row.cells.get(c.column), c) for c in columns if c.task == task]
        if any(s is None for s in scores):
            return None
        task_scores.append(sum(scores) / len(scores))
    return sum(task_scores) / len(task_scores) if task_scores else None


def _median(values: Iterable[float | None]) -> float | None:
    clean = sorted(float(v) for v in values if is_number(v))
    return statistics.median(clean) if clean else None


def _per_task(results: Iterable[Result], value: Callable[[Result], Any]) -> list[float | None]:
    """One value per task, the mean over its columns (MNLI's two dev sets): a median "over the row's
    tasks" must not count a task with two columns twice."""
    by_task: dict[str, list[float]] = {}
    for r in results:
        v = value(r)
        if is_number(v):
            by_task.setdefault(r.task, []).append(float(v))
    return [statistics.fmean(vs) for vs in by_task.values()]


def _params(results: Iterable[Result]) -> str:
    counts = sorted({r.efficiency.num_parameters for r in results if r.efficiency.num_parameters is not None})
    if not counts:
        return DASH
    low, high = format_params(counts[0]), format_params(counts[-1])
    return low if low == high else f"{low}–{high}"  # task heads differ: show the range


def build_section(suite: str, key: SectionKey, results: Sequence[Result],
                  tasks: Mapping[str, TaskSpec] | None = None) -> Section:
    """Rows, columns and averages of one provenance section (no formatting beyond params)."""
    tasks = tasks or {}
    kept, notes = _dedupe(results)
    columns = _column_specs(suite, kept, tasks)
    # A task only unsupported/missing for everyone does not block everyone's average.
    ok_tasks = {c.task for c in columns for r in kept if r.column == c.column and _column_score(r, c) is not None}
    average_tasks = list(dict.fromkeys(c.task for c in columns if c.task in ok_tasks))
    spec_by_column = {c.column: c for c in columns}

    rows: dict[tuple[str, str], Row] = {}
    for r in kept:
        rows.setdefault((r.model, row_mode(r)), Row(r.model, row_mode(r), {})).cells[r.column] = r
    _fold_unsupported_rows(rows)
    for row in rows.values():
        ok = [r for r in row.cells.values() if r.status == "ok"]
        row.params = _params(row.cells.values())
        row.average = _average(row, columns, average_tasks)
        primaries = [_ok_metric(r, spec_by_column[r.column].primary) for r in ok]
        primaries = [p for p in primaries if p is not None]
        row.primary_mean = sum(primaries) / len(primaries) if primaries else None
        row.latency_p50 = _median(_per_task(ok, lambda r: (r.efficiency.latency_ms or {}).get("p50")))
        row.throughput = _median(_per_task(ok, lambda r: r.efficiency.throughput_per_s))
    # rows with the suite average first, by it; then the rest by the mean of their ok primary metrics
    ordered = sorted(rows.values(), key=lambda w: (w.average is None, -(w.average or 0.0), w.primary_mean is None,
                                                   -(w.primary_mean or 0.0), w.model, w.mode))
    locations = sorted({r.data.location for r in kept}) if key.location == "" else []
    return Section(key, columns, ordered, average_tasks, notes, locations)


def _fold_unsupported_rows(rows: dict[tuple[str, str], Row]) -> None:
    """A model's unsupported markers carry the mode asked for (often 'auto'), its results the mode that
    ran ('scratch'): a row of markers alone joins the model's other rows instead of standing as its own."""
    for key, row in list(rows.items()):
        siblings = [other for k, other in rows.items() if k[0] == key[0] and k != key
                    and any(r.status == "ok" for r in other.cells.values())]
        if siblings and all(r.status != "ok" for r in row.cells.values()):
            for other in siblings:
                for column, r in row.cells.items():
                    other.cells.setdefault(column, r)
            del rows[key]


def build_sections(suite: str, results: Sequence[Result],
                   tasks: Mapping[str, TaskSpec] | None = None) -> list[Section]:
    groups: dict[SectionKey, list[Result]] = {}
    for r in results:
        groups.setdefault(section_key(r), []).append(r)
    return [build_section(suite, key, groups[key], tasks) for key in sorted(groups)]


def _by_suite(results: Iterable[Result]) -> dict[str, list[Result]]:
    suites: dict[str, list[Result]] = {}
    for r in results:
        problem = suite_problem(r.suite)
        if problem:
            raise UserError(f"result for model {r.model!r}, task {r.task!r}: suite {r.suite!r}: {problem}; "
                            "fix or delete that result file")
        suites.setdefault(r.suite, []).append(r)
    canonical = list(CANONICAL_COLUMNS)
    return {s: suites[s] for s in sorted(suites, key=lambda s: (s not in canonical, canonical.index(s) if s in canonical else 0, s))}


# ---------------------------------------------------------------------------------------
# markdown
def _average_header(suite: str) -> str:
    return "GLUE avg" if suite == "glue" else "avg"


def _headers(suite: str, columns: list[ColumnSpec]) -> list[str]:
    headers = ["Model", "Mode", "Params"]
    for c in columns:
        if len(c.metrics) == 1:
            headers.append(c.column)
        else:
            headers += [f"{c.column} {metric_label(m)}" for m in c.metrics]
    return headers + [_average_header(suite), LATENCY_HEADER, THROUGHPUT_HEADER]


def _table(headers: list[str], rows: list[list[str]], numeric: Iterable[int]) -> str:
    """A GitHub table of already-escaped cells; `numeric` columns are right-aligned in the source."""
    import pandas as pd
    from tabulate import tabulate

    frame = pd.DataFrame(rows, columns=range(len(headers)), dtype=object)
    right = set(numeric)
    align = ["right" if i in right else "left" for i in range(len(headers))]
    return tabulate(frame.values.tolist(), headers=[escape_cell(h) for h in headers], tablefmt="github",
                    disable_numparse=True, colalign=align)


def _main_table(suite: str, section: Section) -> str:
    rows = []
    for row in section.rows:
        cells = [escape_cell(row.model), escape_cell(row.mode or DASH), row.params]
        for c in section.columns:
            cells += [cell_text(row.cells.get(c.column), m) for m in c.metrics]
        cells += [_number(row.average), _measure(row.latency_p50), _measure(row.throughput)]
        rows.append(cells)
    headers = _headers(suite, section.columns)
    return _table(headers, rows, numeric=range(2, len(headers)))


def _display(task: str, tasks: Mapping[str, TaskSpec]) -> str:
    return tasks[task].display if task in tasks else task.upper()


def _average_note(suite: str, section: Section, tasks: Mapping[str, TaskSpec], esc: Callable[[Any], str] = str) -> str:
    parts = []
    for task in section.average_tasks:
        cols = [c for c in section.columns if c.task == task]
        metric_cols = [c for c in cols if len(c.score_metrics) > 1]
        for c in metric_cols:
            parts.append(f"{esc(c.column)} = mean({', '.join(metric_label(m) for m in c.score_metrics)})")
        if len(cols) > 1:
            parts.append(f"{' and '.join(esc(c.column) for c in cols)} are first averaged into one "
                         f"{esc(_display(task, tasks))} score")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return (f"**{_average_header(suite)}**: mean over tasks of each task's score{detail}; shown only when the "
            "row has an ok result for every task with a result in this table.")


def _provenance_table(section: Section) -> str:
    headers = ["Model", "Mode", "Column", "Metric", "Value", "95% CI", "n", "Data fingerprint",
               "Task version", "Data", "Note"]
    rows = []
    for row in section.rows:
        for c in section.columns:
            r = row.cells.get(c.column)
            if r is None:
                continue
            base = [escape_cell(r.model), escape_cell(row_mode(r) or DASH), escape_cell(c.column)]
            tail = [str(r.data.num_examples), escape_cell(r.data.fingerprint[:12]), escape_cell(r.task_version),
                    escape_cell(f"{r.data.source} {r.data.location}")]
            metrics = [m for m in c.metrics if m in r.metrics] if r.status == "ok" else []
            if not metrics:
                rows.append(base + [DASH, DASH if r.status == "ok" else escape_cell(r.status), DASH] + tail
                            + [escape_cell(r.note)])
            for m in metrics:
                ci_text = _ci_text(r.ci95.get(m))
                note = "; ".join(n for n in (seeds_text(r, m), r.note) if n)
                rows.append(base + [escape_cell(metric_label(m)), cell_text(r, m), ci_text] + tail
                            + [escape_cell(note)])
    return _table(headers, rows, numeric=(4, 5, 6, 8))


def banners(key: SectionKey) -> list[str]:
    """The warnings above a sample-data or random-weights table (markdown **bold**; the page makes it <strong>)."""
    out = []
    if key.rank in (1, 3):
        out.append("**Synthetic data.** These numbers only show that the pipeline runs; never quote them.")
    if key.rank in (2, 3):
        out.append("**Random weights.** Scores are chance level by construction; only Params, latency and "
                   "throughput mean something.")
    return out


def _row_name(row: Row, esc: Callable[[Any], str] = str) -> str:
    return f"{esc(row.model)} ({esc(row.mode or DASH)})"


def _behind_their_column(section: Section, measure: Callable[[Result], int],
                         describe: Callable[[Row, str, Result, int], str],
                         also: Callable[[Result], bool] = lambda r: False) -> list[str]:
    """`describe` of every ok cell whose `measure` is below the largest of its column's ok cells, or
    that `also` flags."""
    parts = []
    for c in section.columns:
        cells = [(row, r) for row in section.rows
                 if (r := row.cells.get(c.column)) is not None and r.status == "ok"]
        top = max((measure(r) for _row, r in cells), default=0)
        parts += [describe(row, c.column, r, top) for row, r in cells if measure(r) < top or also(r)]
    return parts


def _subset_text(r: Result, top: int) -> str:
    n = r.data.num_examples
    return (subset_words(r.data, short=True) or f"n={n:,}") + (f" of {top:,}" if top > n else "")


def _subset_note(section: Section, esc: Callable[[Any], str] = str) -> list[str]:
    """Which cells were scored on part of their split (a `--limit` or `--sample` run), or on fewer
    examples than the column's largest set: their numbers are not comparable with whole-split rows,
    and a first-n cell not with an at-random one of the same n."""
    parts = _behind_their_column(
        section, lambda r: r.data.num_examples,
        lambda row, column, r, top: f"{_row_name(row, esc)} {esc(column)} {_subset_text(r, top)}",
        also=lambda r: bool(r.data.subset))
    if not parts:
        return []
    return ["**Subsets**: these cells were scored on part of their split (a `--limit` run, the first n; or a "
            "`--sample` run, n drawn at random), so they are not comparable with whole-split numbers, nor a first-n "
            "cell with an at-random one: " + "; ".join(parts) + "."]


def _version_note(section: Section, esc: Callable[[Any], str] = str) -> list[str]:
    """Which cells were scored on an older version of their task than the column's newest (its data,
    labels or template changed since, and the version with them)."""
    parts = _behind_their_column(
        section, lambda r: r.task_version,
        lambda row, column, r, newest: f"{_row_name(row, esc)} {esc(column)} v{r.task_version} of v{newest}")
    if not parts:
        return []
    return ["**Task versions**: these cells were scored on an older version of their task than the rest of "
            "their column (its data, labels or template have changed since), so they are not comparable with "
            "its other rows; re-run them: " + "; ".join(parts) + "."]


def seeds_text(r: Result, metric: str) -> str:
    """'mean of seeds 0, 1, 2: 91.1, 91.6, 90.9' for a cell averaged over seeds; '' for one run."""
    summary = seed_summary(r)
    if summary is None or metric not in summary.values:
        return ""
    values = ", ".join(_number(v) for v in summary.values[metric])
    text = (f"mean of seeds {', '.join(map(str, summary.seeds))}: {values}" if len(summary.seeds) > 1
            else f"seed {summary.seeds[0]}")
    return text + (f"; left out: {seeds_words(summary.left_out)}" if summary.left_out else "")


def seeds_words(seeds: Sequence[int]) -> str:
    """'seed 3' or 'seeds 1, 2'."""
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def seed_sentences(cells: Iterable[tuple[str, Result]]) -> list[str]:
    """The notes every table gives its cells that are a mean over seeds, and the seeds it left out of one
    (markdown **bold**); `cells` are (the name the table gives the cell, its result)."""
    averaged, left_out = [], []
    for name, r in cells:
        summary = seed_summary(r) if r.status == "ok" else None
        if summary and len(summary.seeds) > 1:
            averaged.append(f"{name} {seeds_words(summary.seeds)}")
        if summary and summary.left_out:
            left_out.append(f"{name} {seeds_words(summary.left_out)}")
    notes = []
    if averaged:
        notes.append("**Seeds**: a cell with ± is the mean ± sample standard deviation over runs that differ only "
                     "by their seed (the train sample, the batch order, the new head's initialisation and dropout); "
                     "each run's Result keeps its own value and 95% interval: " + "; ".join(averaged) + ".")
    if left_out:
        notes.append("**Seeds left out**: these runs were made otherwise than the cell's newest run (other "
                     "settings, model revision, train data, task definition, adapter release or dtype), so they are "
                     "not averaged in; re-run them as the newest was made (with --force), or delete their files: "
                     + "; ".join(left_out) + ".")
    return notes


def _seed_note(section: Section, esc: Callable[[Any], str] = str) -> list[str]:
    """Which cells are a mean over seeds, and which seeds were left out of a mean (the provenance table
    lists each seed's value)."""
    return seed_sentences((f"{_row_name(row, esc)} {esc(c.column)}", r) for row in section.rows
                          for c in section.columns if (r := row.cells.get(c.column)) is not None)


def capped_training(r: Result) -> tuple[int, int] | None:
    """(labelled examples used, train split size) where a `--max-train-examples` cap below the split's size
    decided how much a result learned from; None for the whole split, no train split, or a zero-shot run
    (a checkpoint as it is, or a K-shot prompt: it records what it used, and a cap shaped nothing)."""
    train = r.provenance.get("train_data")
    if not isinstance(train, dict) or r.mode == "zero-shot":
        return None
    cap, size = train_cap(r), train.get("num_examples")
    used = train.get("used_examples", cap)  # recorded since used_examples exists; the cap itself before
    if not (_count(cap) and _count(size) and _count(used)) or cap >= size:
        return None
    return used, size


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _train_cap_note(section: Section, esc: Callable[[Any], str] = str) -> list[str]:
    """Which cells stand for a model trained on a capped sample of its train split: the table keeps a row's
    run on the most labelled data, and where only learning-curve points exist, that is the largest of them."""
    parts = []
    for c in section.columns:
        for row in section.rows:
            r = row.cells.get(c.column)
            if r is not None and r.status == "ok" and (capped := capped_training(r)) is not None:
                parts.append(f"{_row_name(row, esc)} {esc(c.column)} {capped[0]:,} of {capped[1]:,} train examples")
    if not parts:
        return []
    return ["**Trained on part of the train split**: these cells were trained on a `--max-train-examples` sample "
            "of their train split (a learning-curve point), so they are not comparable with cells trained on all "
            "of it: " + "; ".join(parts) + "."]


def machine(hardware: object) -> str | None:
    """The machine a latency was measured on, as the hardware note compares them: the device kind (cpu, cuda,
    mps) and the name of the chip that ran the model (the GPU on a cuda device, else the CPU). Core and thread
    counts are left out: they are settings of one machine, not another machine. None where not recorded."""
    if not isinstance(hardware, dict) or not isinstance(hardware.get("device"), str):
        return None
    kind = hardware["device"].split(":")[0]
    chip = hardware.get("gpu") if kind == "cuda" else hardware.get("cpu")
    return f"{kind} {chip}" if chip else kind


def _revision(r: Result) -> str | None:
    revision = r.provenance.get("model_revision")
    return None if revision in (None, "") else str(revision)


def _timed_on(r: Result) -> str | None:
    """The machine of a cell that feeds its row's latency or throughput median; None for one that does not."""
    timed = [(r.efficiency.latency_ms or {}).get("p50"), r.efficiency.throughput_per_s]
    if not any(is_number(v) for v in timed):
        return None
    return machine(r.provenance.get("hardware"))


def _short_names(names: Sequence[str], least: int = 12) -> dict[str, str]:
    """Each name cut to `least` characters, or to as few more as keep them apart ('gguf-q4_1-sha256:…'
    revisions share their first 17)."""
    width = least
    while len({n[:width] for n in names}) < len(set(names)):
        width += 1
    return {n: n[:width] for n in names}


def _mixed_rows(section: Section, key: Callable[[Result], str | None], esc: Callable[[Any], str],
                shorten: Callable[[Sequence[str]], dict[str, str]] = lambda names: {n: n for n in names}) -> list[str]:
    """Each row whose ok cells have more than one `key` (a cell whose key is None, not recorded, is left out):
    'model (mode): key (columns), key (columns)', keys in the order of their first column."""
    parts = []
    for row in section.rows:
        groups: dict[str, list[str]] = {}
        for c in section.columns:
            r = row.cells.get(c.column)
            if r is not None and r.status == "ok" and (k := key(r)) is not None:
                groups.setdefault(k, []).append(c.column)
        if len(groups) > 1:
            short = shorten(list(groups))
            parts.append(f"{_row_name(row, esc)}: " + ", ".join(
                f"{esc(short[k])} ({', '.join(esc(c) for c in columns)})" for k, columns in groups.items()))
    return parts


def _revision_note(section: Section, esc: Callable[[Any], str] = str) -> list[str]:
    """Which rows mix model revisions (a hub model updated between the runs of its cells): their cells and
    average then describe no one checkpoint."""
    parts = _mixed_rows(section, _revision, esc, _short_names)
    if not parts:
        return []
    return ["**Mixed model revisions**: these rows take their cells from more than one recorded revision of the "
            "model (it changed between runs), so their scores and average mix checkpoints: " + "; ".join(parts) + "."]


def _hardware_note(section: Section, esc: Callable[[Any], str] = str) -> list[str]:
    """Which rows' latency and throughput medians pool cells timed on different machines."""
    parts = _mixed_rows(section, _timed_on, esc)
    if not parts:
        return []
    return ["**Mixed hardware**: these rows' latency and throughput medians pool cells timed on different hardware "
            "(another device kind, or the same kind with another GPU name on cuda, CPU name elsewhere; core and thread "
            "counts are not compared), so they describe no one machine: " + "; ".join(parts) + "."]


def fixed_notes(suite: str, section: Section, tasks: Mapping[str, TaskSpec],
                esc: Callable[[Any], str] = str) -> list[str]:
    """The notes under every table, before its own (markdown **bold**; the page makes it <strong>).
    `esc` escapes the names they quote (models, modes, columns): escape_cell for markdown; the page
    escapes the whole text as HTML itself."""
    return (_subset_note(section, esc) + _version_note(section, esc) + _train_cap_note(section, esc)
            + _seed_note(section, esc) + _revision_note(section, esc) + _hardware_note(section, esc)) + [
            _average_note(suite, section, tasks, esc),
            f"{DASH} means the model cannot do this task (unsupported), it was not run, or nothing was measured; "
            "never a zero.",
            f"**{LATENCY_HEADER}**: median over the row's tasks of the per-example p50 latency at batch size 1 "
            "(a task with two dev sets, as MNLI, counts once, at their mean). "
            f"**{THROUGHPUT_HEADER}**: median over the row's tasks of examples/s over the full pass, the same way."]


def _ci_text(ci: Sequence[float] | None) -> str:
    return f"[{_number(ci[0])}, {_number(ci[1])}]" if ci and len(ci) == 2 else DASH


def _section_markdown(suite: str, section: Section, tasks: Mapping[str, TaskSpec]) -> str:
    lines = [_heading(suite_title(suite), section.key), ""]
    for banner in banners(section.key):
        lines += [f"> {banner}", ""]
    if section.locations:
        lines += ["Datasets: " + ", ".join(f"`{escape_cell(loc)}`" for loc in section.locations), ""]
    lines += [_main_table(suite, section), ""]
    # the fixed notes name models, modes and columns: those are escaped like the cells, the notes' own markup kept
    notes = fixed_notes(suite, section, tasks, escape_cell) + [escape_cell(n) for n in section.notes]
    lines += ["Notes:", ""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)] + [""]
    lines += ["<details><summary>95% confidence intervals and provenance</summary>", "",
              _provenance_table(section), "", "</details>", ""]
    return "\n".join(lines)


def suite_markdown(suite: str, results: Sequence[Result], tasks: Mapping[str, TaskSpec] | None = None,
                   plot_name: str | None = None, generator: str = "`bench leaderboard`") -> str:
    """The whole markdown file for one suite."""
    tasks = tasks or {}
    title = suite_title(suite)
    lines = [f"# {escape_cell(title)} leaderboard", "",
             f"Generated by {generator} from {len(results)} result(s); do not edit by hand. "
             "Suite average: each task's score is the mean of its metrics (QQP = mean(acc, F1)), a task reported "
             "in several columns is averaged over them first (MNLI = mean(MNLI-m, MNLI-mm)), then the mean over "
             f"tasks. {DASH} marks an unsupported or missing result, never a zero.", ""]
    if plot_name:
        lines += [f"![{escape_cell(title)}: score vs throughput]({plot_name})", ""]
    for section in build_sections(suite, results, tasks):
        lines.append(_section_markdown(suite, section, tasks))
    return "\n".join(lines).rstrip("\n") + "\n"


PAGE_FILE = "index.html"


def render_files(results: Iterable[Result], *, tasks: Mapping[str, TaskSpec] | None = None, plots: bool = True,
                 page: bool = False, generator: str = "`bench leaderboard`") -> dict[str, bytes]:
    """File name -> bytes of every table (`<suite>.md`), plot (`<suite>.png`) and the page, nothing written.

    Rendering in memory first lets a publish step fail before it has touched a single file.
    Markdown files come first (suite order: glue, qa, then alphabetical), then the PNGs, then `index.html`.
    Learning-curve points (runs on part of a train split) give way to the run on the most data.
    """
    results = headline(r for r in results if isinstance(r, Result))
    images = plot_images(results, tasks=tasks) if plots else {}
    files: dict[str, bytes] = {}
    for suite, suite_results in _by_suite(results).items():
        plot_name = f"{suite}.png" if suite in images else None
        files[f"{suite}.md"] = suite_markdown(suite, suite_results, tasks, plot_name, generator).encode("utf-8")
    files.update({f"{suite}.png": png for suite, png in images.items()})
    if page and results:
        from .page import page_html

        files[PAGE_FILE] = page_html(results, tasks, plots=images).encode("utf-8")
    return files


def render(results: Iterable[Result], out_dir: Path, *, tasks: Mapping[str, TaskSpec] | None = None,
           plots: bool = True, page: bool = False) -> list[Path]:
    """Write `<suite>.md` (and `<suite>.png` when `plots`, `index.html` when `page`); return the paths written.

    No results: nothing is written and [] is returned (the caller says so).
    """
    return write_files(Path(out_dir), render_files(results, tasks=tasks, plots=plots, page=page))


# ---------------------------------------------------------------------------------------
# plot: score against throughput, one PNG per suite
def _plot_points(suite: str, results: Sequence[Result], tasks: Mapping[str, TaskSpec] | None):
    """([(section, row, score)], sample?) for the real sections, else for the sample suite."""
    sections = build_sections(suite, results, tasks)
    for ranks, sample in (((0,), False), ((1,), True)):
        points = []
        for section in sections:
            if section.key.rank not in ranks:
                continue
            for row in section.rows:
                score = row.average if row.average is not None else row.primary_mean
                if score is not None and row.throughput is not None and row.throughput > 0:
                    points.append((section, row, score))
        if points:
            return points, sample
    return [], False


PLOT_LABEL_WIDTH = 48


def _one_line(row: Row, short: bool = False) -> str:
    """'model (mode)' on one line; `short` drops the name's hub organisation or folder
    ('HuggingFaceTB/SmolLM2-135M-Instruct' -> 'SmolLM2-135M-Instruct'), which the table beside it still gives."""
    model = row.model.strip("/").rsplit("/", 1)[-1] if short else row.model
    return " ".join(f"{model} ({row.mode})".split()) if row.mode else " ".join(model.split())


def _shortened(rows: Sequence[Row], width: int) -> set[str]:
    """The models whose labels drop their organisation or folder: a row of theirs is too long, and the last
    part of the name still tells them from every other model (two checkpoints named '…/model' keep theirs)."""
    def last(model: str) -> str:
        return model.strip("/").rsplit("/", 1)[-1]

    models = {row.model for row in rows}
    long = {row.model for row in rows if len(_one_line(row)) > width and "/" in row.model.strip("/")}
    return {m for m in long if not any(last(m) == last(other) for other in models if other != m)}


def _middle_cut(text: str, width: int) -> str:
    """`text` in `width` characters: its start and its end around '…', so a long model name keeps both its
    organisation and the mode after it."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[:width - 1 - tail] + "…" + text[len(text) - tail:]


def _cut(text: str, mode: str, width: int, least: int = 12) -> str:
    """`text` ('model (mode)') in `width` characters: the model's name cut at its end and the mode kept
    whole, since the mode is what tells a model's rows apart ('1-shot, no chat template'); the middle cut
    where the mode leaves the name fewer than `least` characters."""
    end = f" ({mode})" if mode else ""
    if len(text) <= width or not end or not text.endswith(end) or width - len(end) < least:
        return _middle_cut(text, width)
    return text[:width - len(end) - 1] + "…" + end


def _from_difference(text: str, at: int, width: int, head: int = 15) -> str:
    """`text` in `width` characters: its first `head` characters, then from the word holding `at` (where it
    differs from a row whose label it was cut to; 'seed1', not '1')."""
    start = at
    while start > max(at - 10, 0) and text[start - 1] not in " -/_.,(":
        start -= 1
    shown = text if start <= head + 1 else text[:head] + "…" + text[start:]
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def _clashes(keys: Sequence[tuple[str, str]], texts: Sequence[str], labels: Sequence[str]) -> list[list[str]]:
    """For each label, the texts of the other rows (another model or mode) that have the same label."""
    return [[text for other, text, seen in zip(keys, texts, labels) if seen == label and other != key]
            for key, label in zip(keys, labels)]


def plot_labels(rows: Sequence[Row], width: int = PLOT_LABEL_WIDTH) -> list[str]:
    """One label per row: plain text for matplotlib, one line, at most `width` characters (plus the
    escape of '$', which would start mathtext).

    A long label keeps the start of the model's name and the whole mode (a long name drops its hub
    organisation first); rows whose cut labels would read the same are shown from where
    their texts differ, and numbered (' #1', ' #2', by model and mode) if they still read the same (names
    that differ only in whitespace). Rows of one model and mode in two sections keep one label: their
    colours tell them apart.
    """
    keys = [(row.model, row.mode) for row in rows]
    texts = [_one_line(row, short=row.model in _shortened(rows, width)) for row in rows]
    labels = [_cut(text, " ".join(row.mode.split()), width) for text, row in zip(texts, rows)]
    for i, others in enumerate(_clashes(keys, texts, labels)):
        at = max((len(os.path.commonprefix([texts[i], o])) for o in others if o != texts[i]), default=None)
        labels[i] = labels[i] if at is None else _from_difference(texts[i], at, width)
    out = []
    for key, label, others in zip(keys, labels, _clashes(keys, texts, labels)):
        if others:
            alike = sorted({k for k, seen in zip(keys, labels) if seen == label})
            suffix = f" #{alike.index(key) + 1}"
            label = (label if len(label) + len(suffix) <= width else label[:width - len(suffix) - 1] + "…") + suffix
        out.append(label.replace("$", r"\$"))
    return out


MODE_MARKERS = {"scratch": "o", "finetune": "D", "frozen": "s", "zero-shot": "^", "external": "P"}
OTHER_MARKERS = "v<>*Xh"


def _mode_marker(mode: str, modes: Sequence[str]) -> str:
    if mode in MODE_MARKERS:
        return MODE_MARKERS[mode]
    others = [m for m in modes if m not in MODE_MARKERS]
    return OTHER_MARKERS[others.index(mode) % len(OTHER_MARKERS)]


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (throughput, score) points no other point beats on both: the best score at each speed or faster.

    Sorted by throughput, ascending; ties in throughput keep the higher score only.
    """
    front: list[tuple[float, float]] = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return sorted(front)


def _png_bytes(figure: Any, dpi: float = 100) -> bytes:
    """The figure as PNG bytes without the Software stamp, so a re-render is byte-identical."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _suite_figure(suite: str, points: list, sample: bool) -> Any:
    """Score against throughput: colour per data source, marker per mode, the Pareto front, and labels
    moved apart (adjustText) so two rows at nearly the same point stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    from adjustText import adjust_text
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(8, 6))
    FigureCanvasAgg(figure)  # adjustText measures the labels with this canvas's renderer
    ax = figure.add_subplot()
    keys = list(dict.fromkeys(section.key for section, _row, _score in points))
    modes = list(dict.fromkeys(row.mode for _s, row, _v in points))
    front = pareto_front((row.throughput, score) for _s, row, score in points)
    if len(front) > 1:
        ax.step([x for x, _ in front], [y for _, y in front], where="pre", color="0.5", linestyle="--",
                linewidth=1, zorder=1)
    texts = []
    for (section, row, score), label in zip(points, plot_labels([row for _s, row, _v in points])):
        colour = f"C{keys.index(section.key)}"
        ax.scatter([row.throughput], [score], marker=_mode_marker(row.mode, modes), s=40, zorder=3,
                   edgecolors=colour, facecolors=colour if row.average is not None else "none")
        texts.append(ax.text(row.throughput, score, label, fontsize=8, zorder=4))
    ax.set_xscale("log")
    xs = [row.throughput for _s, row, _v in points]
    ys = [score for _s, _row, score in points]
    ax.set_xlim(min(xs) / 3, max(xs) * 3)
    span = max(max(ys) - min(ys), 10.0)
    ax.set_ylim(min(ys) - span * 0.15, max(ys) + span * 0.15)
    # A fixed iteration count, not adjustText's default one-second budget: the same rows give the same bytes.
    adjust_text(texts, ax=ax, iter_lim=250, arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
    handles = [Line2D([], [], marker=_mode_marker(m, modes), linestyle="", color="0.3", label=f"mode: {m or DASH}")
               for m in modes]
    if len(front) > 1:
        handles.append(Line2D([], [], color="0.5", linestyle="--", label="Pareto front (best score at this speed or faster)"))
    if len(keys) > 1:
        handles += [Line2D([], [], marker="o", linestyle="", color=f"C{i}",
                           label="sample suite" if sample else _data_label(k)) for i, k in enumerate(keys)]
    if any(row.average is None for _s, row, _v in points):
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none", color="0.3",
                              label="hollow: mean primary metric (no suite average)"))
    # below the axes, where it can cover no point and no label
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    ax.set_xlabel("Throughput (examples/s, log scale)")
    ax.set_ylabel(f"{_average_header(suite)} (hollow: mean primary metric)")
    ax.set_title(f"{suite_title(suite)}: score vs throughput" + (" (sample suite)" if sample else ""))
    ax.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return figure


def plot_images(results: Iterable[Result], *, tasks: Mapping[str, TaskSpec] | None = None) -> dict[str, bytes]:
    """suite -> PNG of each row's suite average (else mean primary metric) against throughput (log x).

    Real results only; a suite with none plots its sample-suite rows, titled "(sample suite)".
    Random-weight rows are never plotted. A suite with no plottable row gets no image.
    """
    results = headline(r for r in results if isinstance(r, Result))
    images: dict[str, bytes] = {}
    for suite, suite_results in _by_suite(results).items():
        points, sample = _plot_points(suite, suite_results, tasks)
        if points:
            images[suite] = _png_bytes(_suite_figure(suite, points, sample))
    return images


def plot(results: Iterable[Result], out_dir: Path, *, tasks: Mapping[str, TaskSpec] | None = None) -> list[Path]:
    """Write `<suite>.png` for every suite with a plottable row; return the paths written."""
    return write_files(Path(out_dir), {f"{suite}.png": png for suite, png in plot_images(results, tasks=tasks).items()})
