"""Python API for notebooks: `evaluate` runs exactly what `bench run` runs, `results_frame` tabulates results.

`evaluate` does not re-implement the command: it turns its arguments into `bench run` flags, parses them with
the CLI's own parser (same types, choices and defaults) and calls the CLI's `execute_run`. So a notebook and
the command line can never disagree on validation, resume keys or the files they write, and every problem the
user can fix is raised as the same `UserError` subclass the CLI prints (a usage error included, never SystemExit).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NoReturn, Sequence

from .errors import UserError, choices_hint
from .results import Efficiency, Result, iter_results, labelled_examples, load

if TYPE_CHECKING:
    import pandas

_EXPLICIT = ("model", "tasks", "data", "mode", "results_dir", "option")  # evaluate()'s own parameters


def evaluate(model: str, tasks: Sequence[str] | str | None = None, data: str = "hub", mode: str = "auto", *,
             results_dir: str | Path = "results", adapter_options: Mapping[str, Any] | None = None,
             **options: Any) -> list[Result]:
    """Run `bench run` from Python and return its Results (written, already current, unsupported), by path.

    `tasks`: names or one comma-separated string (None: every task). `options`: any other `bench run` flag by
    its keyword name (`limit=50`, `epochs=3`, `max_train_examples=1000`, `weights="random"`, `force=True`,
    `quiet=True`, `tasks_dir=[...]`, `seed=[0, 1, 2]`: one run per seed); None leaves the CLI default. `adapter_options`: any option the adapter
    declares, by name (`--option KEY=VALUE`). Raises UserError subclasses, as the CLI does.
    """
    import json

    from .cli import execute_run, quiet_env

    parser = _parser()
    argv = _run_argv(_run_actions(parser), model, tasks, data, mode, results_dir, options)
    for key, value in dict(adapter_options or {}).items():
        argv.append(f"--option={key}={json.dumps(value, default=str)}")
    args = parser.parse_args(argv)
    quiet_env(args)
    # provenance records the equivalent command, re-runnable as is (not the notebook kernel's argv)
    outcome = execute_run(args, command="bench " + shlex.join(argv))
    paths = sorted(set(outcome.written) | set(outcome.skipped) | set(outcome.unsupported))
    return [load(path) for path in paths]


def _run_argv(actions: Mapping[str, argparse.Action], model: str, tasks: Sequence[str] | str | None,
              data: str | Path, mode: str, results_dir: str | Path, options: Mapping[str, Any]) -> list[str]:
    """evaluate()'s arguments as `bench run` flags (`--flag=value`, so a value may start with '-')."""
    if tasks is None or isinstance(tasks, str):
        task_text = tasks or ""
    else:
        tasks = list(tasks)
        if not all(isinstance(t, str) for t in tasks):
            raise UserError(f"evaluate(): tasks={tasks!r}; expected task names, e.g. ['sst2', 'qqp']")
        task_text = ",".join(tasks)
    argv = ["run", f"--model={model}", f"--tasks={task_text}", f"--data={data}", f"--mode={mode}",
            f"--results-dir={results_dir}"]
    for key, value in options.items():
        action = actions.get(key)
        if action is None:
            raise UserError(f"evaluate(): unknown option '{key}'; {choices_hint(key, actions)}")
        argv += _flag(action, key, value)
    return argv


def _flag(action: argparse.Action, key: str, value: Any) -> list[str]:
    flag = max(action.option_strings, key=len)
    if value is None:
        return []  # the CLI's default
    if action.nargs == 0:  # store_true: --force, --quiet, --compile, --trust-remote-code
        if not isinstance(value, bool):
            raise UserError(f"evaluate(): option {key}: expected True or False, got {value!r}")
        return [flag] if value else []
    if isinstance(action, argparse._AppendAction):  # --tasks-dir: repeatable
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        return [f"{flag}={v}" for v in values]
    if key == "label_map" and isinstance(value, Mapping):
        value = ",".join(f"{head}={label}" for head, label in value.items())
    if key == "seed" and isinstance(value, (list, tuple)):  # seed=[0, 1, 2]: one run per seed
        value = ",".join(str(v) for v in value)
    return [f"{flag}={value}"]


class _RaisingParser(argparse.ArgumentParser):
    """The CLI parser, but a usage error is raised as UserError; flag names shown as evaluate()'s keywords."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        message = re.sub(r"argument --([\w-]+)", lambda m: "option " + m.group(1).replace("-", "_"), message)
        raise UserError(f"evaluate(): {message}")


def _parser() -> argparse.ArgumentParser:
    from .cli import build_parser

    return build_parser(parser_class=_RaisingParser)


def _run_subparser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["run"]


def _run_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """`bench run` flags by keyword (dest) name, less evaluate()'s own parameters and --help."""
    return {a.dest: a for a in _run_subparser(parser)._actions
            if a.option_strings and a.dest != "help" and a.dest not in _EXPLICIT}


# ---------------------------------------------------------------------------------------
# results as a table
_IDENTITY = ("task", "split", "column", "task_version", "suite", "kind", "model", "adapter", "mode", "variant",
             "weights", "status", "note")
_BASE = (*_IDENTITY, "data_source", "data_location", "data_fingerprint", "num_examples", "data_subset",
         "train_examples")
_EFFICIENCY = tuple(c for f in dataclasses.fields(Efficiency)
                    for c in ((f"efficiency.{f.name}.p50", f"efficiency.{f.name}.p95") if f.name == "latency_ms"
                              else (f"efficiency.{f.name}",)))
_PROVENANCE = ("model_revision", "seed", "git_commit", "code_sha256", "created", "command", "device", "settings_key")


def results_frame(path: str | Path) -> "pandas.DataFrame":
    """One row per Result under a results folder (or of one result .json file), every number in a column.

    Columns: the result's identity and data, `metric.<name>`, `ci95.<name>.lo/.hi`, `efficiency.<field>`
    (latency as `efficiency.latency_ms.p50/.p95`) and key `provenance.*`; missing values are NaN/None.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; pass a results folder (e.g. results) or a result .json file")
    if path.is_dir():  # a results folder, or one model's folder inside it
        results = list(iter_results(path)) or [load(p) for p in sorted(path.glob("*.json"))]
    else:
        results = [load(path)]
    rows = [_row(r) for r in results]
    seen = list(dict.fromkeys(k for row in rows for k in row))
    fixed = {*_BASE, *_EFFICIENCY, *(f"provenance.{p}" for p in _PROVENANCE)}
    extra = lambda prefix: [c for c in seen if c.startswith(prefix) and c not in fixed]  # noqa: E731
    columns = [*_BASE, *extra("metric."), *extra("ci95."), *_EFFICIENCY, *extra("efficiency."),
               *(f"provenance.{p}" for p in _PROVENANCE)]
    return pd.DataFrame(rows, columns=columns)


def _row(r: Result) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(r, name) for name in _IDENTITY}
    row.update(data_source=r.data.source, data_location=r.data.location, data_fingerprint=r.data.fingerprint,
               num_examples=r.data.num_examples, data_subset=r.data.subset, train_examples=labelled_examples(r))
    for name, value in r.metrics.items():
        row[f"metric.{name}"] = value
    for name, bounds in r.ci95.items():
        lo, hi = (list(bounds or []) + [math.nan, math.nan])[:2]
        row[f"ci95.{name}.lo"], row[f"ci95.{name}.hi"] = lo, hi
    for name, value in dataclasses.asdict(r.efficiency).items():
        if name == "latency_ms" or isinstance(value, dict):  # {'p50', 'p95'}, or None when not measured
            for key, inner in (value or {"p50": None, "p95": None}).items():
                row[f"efficiency.{name}.{key}"] = inner
        else:
            row[f"efficiency.{name}"] = value
    prov = r.provenance
    hardware = prov.get("hardware") if isinstance(prov.get("hardware"), dict) else {}
    for name in _PROVENANCE:
        row[f"provenance.{name}"] = hardware.get("device") if name == "device" else prov.get(name)
    return row
