"""Results -> Hugging Face model-card metadata (`model-index`), for `bench export`.

The YAML is built with huggingface_hub's own `EvalResult` and `ModelCardData`, never written by hand, so it
is exactly what the Hub parses into a model page's evaluation results. Only publishable results go in: sample
data, random weights and unsupported tasks are left out, and the command says so.

No `source` is set: huggingface_hub's EvalResult accepts a source name only together with a source URL,
and this harness has no public URL to point to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .errors import UserError, choices_hint
from .results import Result, headline, iter_results, row_mode, seed_summary

if TYPE_CHECKING:
    from huggingface_hub import EvalResult

    from .tasks import TaskSpec

TASK_TYPES = {"classification": "text-classification", "extractive_qa": "question-answering",
              "closed_book_qa": "question-answering"}
SUITE_NAMES = {"glue": "GLUE"}  # suites that are a benchmark in their own right prefix the dataset's name
METRIC_NAMES = {"accuracy": "accuracy", "f1": "F1", "exact_match": "exact match", "mcc": "MCC"}
WHY_LEFT_OUT = {"sample data": "synthetic, not comparable to published numbers",
                "random weights": "architecture only, meaningless scores",
                "part of the split": "a --limit or --sample run; a model card states whole splits"}


@dataclass
class Export:
    """The YAML to print, the results in it, and one warning line per group of results left out."""

    text: str
    exported: list[Result] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def skip_reason(result: Result) -> str | None:
    """Why a result must not appear on a model card (None: it may)."""
    if result.status != "ok":
        return f"status '{result.status}'"
    if result.data.source == "sample":
        return "sample data"
    if result.weights == "random":
        return "random weights"
    if result.data.subset:
        return "part of the split"
    return None


def model_index(results_dir: Path, model: str, tasks: Mapping[str, "TaskSpec"], *,
                mode: str | None = None) -> Export:
    """The `model-index` block for every publishable result of `model` (exact name) under `results_dir`."""
    if not results_dir.is_dir():
        raise UserError(f"--results-dir {results_dir}: no such folder; run 'bench run' first or point it at "
                        "your results")
    results = headline(iter_results(results_dir))  # a corrupt file is an error here, before anything is printed
    mine = [r for r in results if r.model == model]
    if not mine:
        raise UserError(f"no results for model '{model}' under {results_dir}; "
                        f"{choices_hint(model, {r.model for r in results})}")
    if mode is not None:
        modes = {row_mode(r) for r in mine}
        mine = [r for r in mine if row_mode(r) == mode]
        if not mine:
            raise UserError(f"no results for model '{model}' in mode '{mode}'; {choices_hint(mode, modes)}")

    skipped: dict[str, list[Result]] = {}
    keep: list[Result] = []
    for r in mine:
        reason = skip_reason(r)
        (skipped.setdefault(reason, []) if reason else keep).append(r)
    if not keep:
        what = "; ".join(f"{len(rs)} with {reason}" for reason, rs in skipped.items())
        raise UserError(f"nothing to export for model '{model}': all {len(mine)} result(s) are left out ({what}); "
                        "export needs real data (--data hub or a data folder) and pretrained or trained weights")
    _check_one_mode(keep, model)
    _check_one_result_per_split(keep, model)

    warnings = [f"left out {len(rs)} result(s) of '{model}' with {reason} ({WHY_LEFT_OUT.get(reason, 'no scores')}): "
                f"{', '.join(r.column for r in rs)}" for reason, rs in skipped.items()]
    local = sorted({r.data.location for r in keep if r.data.source == "local"
                    and (spec := tasks.get(r.task)) is not None and spec.dataset.hub})
    if local:
        warnings.append(f"results made on local data ({', '.join(local)}) are exported under each task's hub "
                        "dataset; export them only if those files are that dataset's splits, unchanged")
    evals = []
    for r in keep:
        spec = tasks.get(r.task)
        if spec is None:
            warnings.append(f"task '{r.task}' is not in the task catalog (pass its --tasks-dir): its dataset is "
                            f"named after the task, with no hub id or config")
        evals += eval_results(r, spec)

    from huggingface_hub import ModelCardData

    card = ModelCardData(model_name=model, eval_results=evals)
    return Export(card.to_yaml() + "\n", keep, warnings)


def _check_one_mode(results: list[Result], model: str) -> None:
    """A model card describes one model: two modes' numbers for the same split would be ambiguous."""
    modes: dict[tuple[str, str], set[str]] = {}
    for r in results:
        modes.setdefault((r.task, r.split), set()).add(row_mode(r))
    clash = sorted({m for ms in modes.values() if len(ms) > 1 for m in ms})
    if clash:
        raise UserError(f"model '{model}' has results for the same tasks in several modes ({', '.join(clash)}); "
                        f"pass --mode to export one of them")


def _check_one_result_per_split(results: list[Result], model: str) -> None:
    """Two results for one split (made on other data, or another seed's curve point on other examples)
    would be two different numbers for the same metric on the model card."""
    seen: dict[tuple[str, str], Result] = {}
    for r in results:
        other = seen.setdefault((r.task, r.split), r)
        if other is not r:
            raise UserError(f"model '{model}' has two results for {r.task}/{r.split}, on different data (fingerprints "
                            f"{other.data.fingerprint[:12]} and {r.data.fingerprint[:12]}); export from a results folder "
                            "that holds one of them")


def eval_results(result: Result, spec: "TaskSpec | None") -> list["EvalResult"]:
    """One huggingface_hub EvalResult per metric; the dataset comes from the task catalog when it knows the task."""
    from huggingface_hub import EvalResult

    if result.kind not in TASK_TYPES:
        raise UserError(f"result {result.model}/{result.task}: unknown kind '{result.kind}'; "
                        f"{choices_hint(result.kind, TASK_TYPES)}")
    if spec is not None:
        display, suite = spec.display, spec.suite
        hub, config, revision = spec.dataset.hub or spec.name, spec.dataset.config, spec.dataset.revision
    else:
        display, suite = result.column, result.suite
        hub, config, revision = result.task, None, None
    name = f"{SUITE_NAMES[suite]} {display}" if suite in SUITE_NAMES else display
    summary = seed_summary(result)
    over = f" (mean of {len(summary.seeds)} seeds)" if summary and len(summary.seeds) > 1 else ""
    out = []
    for metric, value in result.metrics.items():
        if value is None or not math.isfinite(value):
            continue  # the Hub cannot show a missing score; the table keeps the others
        out.append(EvalResult(
            task_type=TASK_TYPES[result.kind], task_name=display,
            dataset_type=hub, dataset_name=name, dataset_config=config, dataset_split=result.split,
            dataset_revision=revision,
            metric_type=metric, metric_value=value, metric_name=f"{result.column} {METRIC_NAMES.get(metric, metric)}{over}",
        ))
    return out
