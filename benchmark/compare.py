"""Our numbers beside a published table: the check that the training path reproduces the field.

The reference is the GLUE paper's single-task BiLSTM baseline (Wang et al. 2018, "GLUE: A
Multi-Task Benchmark and Analysis Platform for Natural Language Understanding", Table 6, dev
sets). That baseline used GloVe vectors and the full train sets; the table states what ours used.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .leaderboard import escape_cell, seed_sentences
from .results import (Result, is_prompted, labelled_examples, one_per_cell, row_mode, seed_summary, subset_words,
                      train_cost_seconds)
from .storage import write_atomic

COLUMNS = (("SST-2", "accuracy"), ("MNLI-m", "accuracy"), ("MNLI-mm", "accuracy"), ("MNLI avg", "accuracy"),
           ("QQP", "accuracy"), ("QQP", "f1"))


@dataclass(frozen=True)
class Published:
    name: str
    source: str
    scores: dict[tuple[str, str], float]
    train: str
    notes: str = ""
    train_sizes: dict[str, int] = field(default_factory=dict)  # task -> examples the reference trained on


GLUE_PAPER_BILSTM = Published(
    name="BiLSTM, single-task (GLUE paper)",
    source="Wang et al. 2018, GLUE, Table 6 (dev)",
    scores={("SST-2", "accuracy"): 87.5, ("MNLI avg", "accuracy"): 66.7, ("QQP", "accuracy"): 85.3,
            ("QQP", "f1"): 82.0},
    train="full GLUE train sets (SST-2 67k, MNLI 393k, QQP 364k); GloVe vectors",
    notes="MNLI reported as the mean of matched and mismatched.",
    train_sizes={"sst2": 67_349, "mnli": 392_702, "qqp": 363_846},
)


@dataclass
class Row:
    model: str
    mode: str
    scores: dict[tuple[str, str], float] = field(default_factory=dict)
    spread: dict[tuple[str, str], float] = field(default_factory=dict)  # sample sd of a mean over seeds
    results: list[Result] = field(default_factory=list)
    train_sizes: dict[str, int] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    pretrain_seconds: float = 0.0  # shared by every task of the run, counted once
    commands: set[str] = field(default_factory=set)
    hardware: set[str] = field(default_factory=set)
    train_locations: set[str] = field(default_factory=set)
    subsets: list[str] = field(default_factory=list)  # cells scored on part of their dev set


def rows_from(results: Iterable[Result]) -> list[Row]:
    """One row per (model, mode) over real-data GLUE results."""
    table: dict[tuple[str, str], Row] = {}
    for r in one_per_cell(results):  # as the leaderboard keeps a cell: the one on the most dev examples
        if r.suite != "glue" or not r.is_real or r.column not in ("SST-2", "MNLI-m", "MNLI-mm", "QQP") or is_prompted(r):
            continue
        row = table.setdefault((r.model, row_mode(r)), Row(r.model, row_mode(r)))
        row.results.append(r)
        for metric, value in r.metrics.items():
            row.scores[(r.column, metric)] = value
        if (summary := seed_summary(r)) and len(summary.seeds) > 1:
            row.spread.update({(r.column, metric): sd for metric, sd in summary.sd.items()})
        train = r.provenance.get("train_data") or {}
        if labelled_examples(r):
            row.train_sizes[r.task] = int(labelled_examples(r) or 0)
        if train.get("location"):
            row.train_locations.add(str(train["location"]))
        if part := subset_words(r.data, short=True):
            row.subsets.append(f"{r.column} {part}")
        if train_cost_seconds(r):
            row.train_seconds[r.task] = train_cost_seconds(r)
        row.pretrain_seconds = max(row.pretrain_seconds, float(r.efficiency.pretrain_seconds or 0.0))
        row.commands.add(r.provenance.get("command", ""))
        hw = r.provenance.get("hardware") or {}
        row.hardware.add(f"{hw.get('gpu') or hw.get('cpu', '?')} ({hw.get('cpu_count', '?')} cores)")
    for row in table.values():
        m, mm = row.scores.get(("MNLI-m", "accuracy")), row.scores.get(("MNLI-mm", "accuracy"))
        if m is not None and mm is not None:
            row.scores[("MNLI avg", "accuracy")] = statistics.fmean([m, mm])
    return sorted(table.values(), key=lambda r: (r.model, r.mode))


def markdown(results: Iterable[Result], reference: Published = GLUE_PAPER_BILSTM, notes: Iterable[str] = ()) -> str:
    """The whole comparison file; pure, so a publish step can render it before writing anything."""
    rows = rows_from(results)
    header = ["Model", "Mode"] + [f"{c} {'F1' if m == 'f1' else 'acc'}" if c == "QQP" else c for c, m in COLUMNS] + \
             ["Train examples (SST-2 / MNLI / QQP)", "Train time (incl. biLM pre-training)"]
    lines = ["# Our BiLSTM baselines beside the GLUE paper", "",
             f"Reference: {reference.source}. {reference.notes} Reference training: {reference.train}.", "",
             _ours(rows, reference), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ref_cells = [escape_cell(reference.name), "published"] + [_num(reference.scores.get(k)) for k in COLUMNS] + \
                [escape_cell(reference.train.split(";")[0]), "—"]
    lines.append("| " + " | ".join(ref_cells) + " |")
    for row in rows:
        sizes = " / ".join(f"{row.train_sizes[t]:,}" if t in row.train_sizes else "—" for t in ("sst2", "mnli", "qqp"))
        seconds = sum(row.train_seconds.values()) + row.pretrain_seconds
        cells = [escape_cell(row.model), escape_cell(row.mode)] + \
                [_num(row.scores.get(k)) + (f" ± {row.spread[k]:.1f}" if k in row.spread else "") for k in COLUMNS] + \
                [sizes, f"{seconds / 60:.1f} min" if seconds else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    for note in seed_sentences((f"{escape_cell(row.model)} ({escape_cell(row.mode)}) {escape_cell(r.column)}", r)
                               for row in rows for r in row.results):
        lines += ["", note]
    published = reference.scores[("SST-2", "accuracy")]
    full = reference.train_sizes.get("sst2", 0)
    sst2 = [(r.scores[("SST-2", "accuracy")], r) for r in rows  # like for like: a BiLSTM, all of SST-2
            if ("SST-2", "accuracy") in r.scores and "bilstm" in r.model.lower()
            and r.train_sizes.get("sst2", 0) >= full and not any(c.startswith("SST-2 ") for c in r.subsets)]
    if sst2:
        gaps = "; ".join(f"{escape_cell(r.model)} ({escape_cell(r.mode)}) {v:.1f}, {abs(v - published):.1f} points "
                         f"{'below' if v < published else 'above'}" for v, r in sorted(sst2, key=lambda x: -x[0]))
        lines += ["", f"SST-2, the fair comparison (published {published}): {gaps}."]
    lines += ["", "## How these numbers were made", ""]
    for row in rows:
        lines.append(f"- **{escape_cell(row.model)} ({escape_cell(row.mode)})** on "
                     f"{escape_cell('; '.join(sorted(row.hardware)))}:")
        lines += [f"  - `{c}`" for c in sorted(row.commands) if c]
    lines += [f"- {escape_cell(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def _ours(rows: list[Row], reference: Published) -> str:
    """What our rows were trained and evaluated on, from their results: the train folders, each task's
    train size against the reference's, and every cell scored on part of its dev set."""
    names = {"sst2": "SST-2", "mnli": "MNLI", "qqp": "QQP"}
    places = sorted({loc for row in rows for loc in row.train_locations})
    text = "Ours: trained by the harness" + (f" on {', '.join(f'`{p}`' for p in places)}" if places else "")
    whole, fewer = [], []
    for task, name in names.items():
        sizes = [row.train_sizes[task] for row in rows if task in row.train_sizes]
        full = reference.train_sizes.get(task)
        if not sizes or full is None:
            continue
        least, most = min(sizes), max(sizes)
        if least >= full:
            whole.append(name)
        elif most >= full:
            fewer.append(f"{name} on its complete train split in some rows and on {least:,} examples in others "
                         f"({full / least:.0f} times fewer than the reference)")
        else:
            fewer.append(f"{name} on at most {most:,} examples, {full / most:.0f} times fewer than the reference")
    parts = ([f"{' and '.join(whole)} on {'its' if len(whole) == 1 else 'their'} complete train "
              f"split{'s' if len(whole) > 1 else ''}"] if whole else []) + fewer
    if parts:
        text += " (" + "; ".join(parts) + (", so those columns are learning-curve points, not a match" if fewer else "") + ")"
    cut = [f"{row.model} ({row.mode}) {s}" for row in rows for s in row.subsets]
    return text + ". Evaluated on the full GLUE dev sets" + \
        (f", except these cells, scored on part of theirs: {escape_cell('; '.join(cut))}." if cut else ".")


def render(results: Iterable[Result], out: Path, reference: Published = GLUE_PAPER_BILSTM,
           notes: Iterable[str] = ()) -> Path:
    write_atomic(out, markdown(results, reference, notes))
    return out


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
