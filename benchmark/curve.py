"""Learning curves: a task's primary metric against the labelled examples a model learned from.

"Transfer learning needs less labelled data" is a claim about the whole curve, so every point is an
ordinary Result (a run with --max-train-examples), and the curve is drawn from the results alone:
one line per (model, mode), log-scaled examples, and how many examples each line needs to reach a
target score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .leaderboard import _png_bytes, escape_cell, metric_label, seeds_words
from .results import (Result, combine_seeds, labelled_examples, row_mode, seed_of, seed_summary, subset_words,
                      train_cap)
from .tasks import TaskSpec


@dataclass
class Line:
    model: str
    mode: str
    sample: bool = False   # drawn from the built-in sample suite: not comparable to anything published
    points: list[tuple[int, float]] = field(default_factory=list)   # (labelled examples, metric), sorted
    evaluated_on: str = "the full split"  # the eval examples every point of the line was scored on
    seeds: dict[int, tuple[int, ...]] = field(default_factory=dict)  # examples -> the seeds of its point
    spread: dict[int, float] = field(default_factory=dict)  # examples -> sample sd, at points of 2+ seeds
    left_out: dict[int, tuple[int, ...]] = field(default_factory=dict)  # seeds not averaged (made otherwise)


def _conditions(r: Result) -> tuple[str, str]:
    """What must be equal along one line: the eval examples and every setting but the train size and the
    seed. Points differing in any of them are separate lines, never one curve; seeds are averaged."""
    import json

    return r.data.fingerprint, json.dumps(_but_size(r), sort_keys=True, default=str)


def _but_size(r: Result) -> dict:
    """A result's settings without the train size and the seed, at any depth (bilstm nests the size in 'train'),
    and without the mode asked for ('auto'), since the line already has the mode that ran."""
    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("max_train_examples", "seed")}
        return value

    settings = {k: v for k, v in (r.provenance.get("settings") or {}).items() if k != "mode"}
    return strip(settings)  # type: ignore[return-value]


def _evaluated_on(r: Result) -> str:
    return subset_words(r.data) or "the full split"


def _flat(settings: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in settings.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _tell_apart(group: Sequence[tuple[tuple, Result]]) -> list[str]:
    """Short labels for the lines of one (model, mode) that differ: by eval examples or settings."""
    evals = {cond[0] for cond, _ in group}
    settings = [_flat(_but_size(r)) for _, r in group]
    differing = sorted({k for s in settings for k in s if len({repr(t.get(k)) for t in settings}) > 1})
    out = []
    for (cond, r), s in zip(group, settings):
        parts = [_evaluated_on(r)] if len(evals) > 1 else []
        parts += [f"{k} {'default' if s.get(k) is None else s.get(k)}" for k in differing]
        out.append(", ".join(parts))
    return out


def lines(results: Iterable[Result], task: str, split: str, metric: str) -> list[Line]:
    """One line per (model, mode, eval examples, settings) with every point of `task`/`split` (real data;
    the sample suite only where there is none); at one train size and seed the uncapped run wins (a cap
    above the split's size trained on the same data), and the seeds of one size are one point, their mean.
    Lines of one (model, mode) that differ say how."""
    usable = [r for r in results if r.task == task and r.split == split and r.status == "ok"
              and r.weights != "random" and metric in r.metrics and labelled_examples(r)]
    if any(r.is_real for r in usable):  # sample-suite points are drawn only where nothing real exists
        usable = [r for r in usable if r.is_real]
    chosen: dict[tuple, Result] = {}
    for r in usable:
        key = (r.model, row_mode(r), _conditions(r), labelled_examples(r), r.provenance.get("seed"))
        if key not in chosen or train_cap(r) is None:
            chosen[key] = r
    by_point: dict[tuple, list[Result]] = {}
    for (model, mode, cond, n, _seed), r in sorted(chosen.items(), key=lambda kv: repr(kv[0])):
        by_point.setdefault((model, mode, cond, n), []).append(r)
    table: dict[tuple, Line] = {}
    first: dict[tuple, Result] = {}
    for (model, mode, cond, n), runs in by_point.items():
        line = table.setdefault((model, mode, cond), Line(model, mode, sample=runs[0].data.source == "sample",
                                                          evaluated_on=_evaluated_on(runs[0])))
        first.setdefault((model, mode, cond), runs[0])
        point = combine_seeds(runs)  # as a table cell would: only runs that differ in nothing but the seed
        summary = seed_summary(point)
        line.points.append((n, float(point.metrics[metric])))
        line.seeds[n] = summary.seeds if summary else tuple(s for s in [seed_of(point)] if s is not None)
        if summary and metric in summary.sd:
            line.spread[n] = summary.sd[metric]
        if summary and summary.left_out:
            line.left_out[n] = summary.left_out
    by_row: dict[tuple[str, str], list[tuple[tuple, Result]]] = {}
    for (model, mode, cond), r in first.items():
        by_row.setdefault((model, mode), []).append((cond, r))
    for (model, mode), group in by_row.items():
        if len(group) > 1:
            for (cond, _r), label in zip(group, _tell_apart(group)):
                table[model, mode, cond].mode = f"{mode} ({label})" if label else mode
    for line in table.values():
        line.points.sort()
    return sorted(table.values(), key=lambda ln: (ln.model, ln.mode))


def examples_to_reach(points: Sequence[tuple[int, float]], target: float) -> float | None:
    """Labelled examples where the curve first reaches `target`, interpolated linearly in log(examples)
    between the two points that bracket it; None when no point reaches it."""
    for i, (n, score) in enumerate(points):
        if score >= target:
            if i == 0:
                return float(n)
            n0, s0 = points[i - 1]
            t = (target - s0) / (score - s0)
            return math.exp(math.log(n0) + t * (math.log(n) - math.log(n0)))
    return None


def _count(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:.0f}"


def reach_sentence(curve: Sequence[Line], target: float, metric: str) -> str:
    """The one line a reader wants: how many labelled examples each line needs to reach the target."""
    parts = []
    for line in curve:
        n = examples_to_reach(line.points, target)
        top = max(line.points)[0]
        parts.append(f"{line.model} ({line.mode}) " + (f"about {_count(n)}" if n is not None else
                                                         f"not within its {top:,} examples"))
    return f"Labelled examples to reach {target:g} {metric_label(metric)}: " + "; ".join(parts) + \
        " (interpolated in log(examples) between measured points)."


def markdown(curve: Sequence[Line], task: TaskSpec, split: str, metric: str, target: float | None = None,
             plot_name: str | None = None, heading: str = "#") -> str:
    sizes = sorted({n for line in curve for n, _ in line.points})
    header = ["Model", "Mode"] + [f"{n:,}" for n in sizes]
    sample = " (SAMPLE SUITE: synthetic data, not comparable to published numbers)" if any(ln.sample for ln in curve) else ""
    lines_ = [f"{heading} Learning curve: {task.column(split)} {metric_label(metric)} by labelled train examples{sample}",
              "",
              "| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(sizes)]
    for line in curve:
        by_n = dict(line.points)
        lines_.append("| " + " | ".join([escape_cell(line.model), escape_cell(line.mode)] +
                                         [_point_text(line, n) if n in by_n else "—" for n in sizes]) + " |")
    lines_.append("")
    if target is not None and curve:
        lines_ += [reach_sentence(curve, target, metric), ""]
    where = {line.evaluated_on for line in curve}
    scored = f"evaluated on {where.pop()}" if len(where) == 1 else "evaluated on the examples its row names"
    lines_ += ["Each point is one Result, or the mean of one Result per seed; along a line the settings and the "
               "eval examples are the "
               "same, and only the train size changes: a seeded sample of the train split (`--max-train-examples`; "
               f"each smaller sample is part of every larger one, at one seed), {scored}.", ""]
    mixed = [f"{escape_cell(line.model)} ({escape_cell(line.mode)}) {_seeds_text(line)}" for line in curve
             if len(set(line.seeds.values())) > 1 or any(len(seeds) > 1 for seeds in line.seeds.values())]
    if mixed:
        lines_ += ["A point with ± is the mean ± sample standard deviation over seeds (each seed draws its own "
                   "train sample, batch order and initialisation); the seeds behind each point: "
                   + "; ".join(mixed) + ".", ""]
    left_out = [f"{escape_cell(line.model)} ({escape_cell(line.mode)}) at {n:,}: {seeds_words(seeds)}"
                for line in curve for n, seeds in sorted(line.left_out.items())]
    if left_out:
        lines_ += ["Seeds left out of a point, made otherwise than its newest run (other settings, model revision, "
                   "train data, task definition, adapter release or dtype): " + "; ".join(left_out) + ".", ""]
    if plot_name:
        lines_ += [f"![learning curve]({plot_name})", ""]
    return "\n".join(lines_)


def _seeds_text(line: Line) -> str:
    """'at 100 and 300, seeds 0, 1, 2; at 3,000, seed 0': which seeds each point of a line averages."""
    by_seeds: dict[tuple[int, ...], list[int]] = {}
    for n, _ in line.points:
        by_seeds.setdefault(line.seeds[n], []).append(n)
    return "; ".join(f"at {_and(f'{n:,}' for n in ns)}, {'seed' if len(seeds) == 1 else 'seeds'} "
                     f"{', '.join(map(str, seeds))}" for seeds, ns in by_seeds.items())


def _and(words: Iterable[str]) -> str:
    words = list(words)
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _point_text(line: Line, n: int) -> str:
    mean = dict(line.points)[n]
    return f"{mean:.1f}" + (f" ± {line.spread[n]:.1f}" if n in line.spread else "")


def figure_png(curve: Sequence[Line], task: TaskSpec, split: str, metric: str, target: float | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    markers = "os^Dv<>p"
    for i, line in enumerate(curve):
        xs, ys = [n for n, _ in line.points], [s for _, s in line.points]
        if line.spread:  # seeds' sample sd as error bars
            ax.errorbar(xs, ys, yerr=[line.spread.get(n, 0.0) for n in xs], marker=markers[i % len(markers)],
                        capsize=3, label=f"{line.model} ({line.mode})")
        else:
            ax.plot(xs, ys, marker=markers[i % len(markers)], label=f"{line.model} ({line.mode})")
    if target is not None:
        ax.axhline(target, color="0.5", linestyle=":", linewidth=1, label=f"{target:g}")
    ax.set_xscale("log")
    ax.set_xlabel("labelled train examples (log scale)")
    ax.set_ylabel(f"{task.column(split)} {metric_label(metric)}")
    ax.set_title(f"{task.column(split)}: learning curves" + (" (sample suite)" if any(ln.sample for ln in curve) else ""))
    ax.grid(True, which="both", alpha=0.3)
    bars = any(line.spread for line in curve)
    ax.legend(fontsize=8, loc="lower right", title="error bars: ± sd over seeds" if bars else None, title_fontsize=8)
    figure.tight_layout()
    return _png_bytes(figure)


def render_files(results: Iterable[Result], tasks: Mapping[str, TaskSpec], *, target: float | None = 80.0,
                 prefix: str = "curve") -> dict[str, bytes]:
    """`<prefix>-<task>.md` and `.png` for every task split with a line of two or more points."""
    results = list(results)
    files: dict[str, bytes] = {}
    for task_name, split in sorted({(r.task, r.split) for r in results}):
        task = tasks.get(task_name)
        if task is None:
            continue
        metric = task.primary_metric
        curve = [line for line in lines(results, task_name, split, metric) if len(line.points) > 1]
        if not curve:
            continue
        stem = f"{prefix}-{task_name}" + ("" if len(task.dataset.eval) == 1 else f"-{split}")
        files[f"{stem}.md"] = markdown(curve, task, split, metric, target, f"{stem}.png").encode("utf-8")
        files[f"{stem}.png"] = figure_png(curve, task, split, metric, target)
    return files
