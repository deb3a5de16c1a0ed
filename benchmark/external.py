"""Bring-your-own predictions: score a file made elsewhere with the same metrics and Result.

Accepted formats: SQuAD's official `{id: answer}` JSON object, or JSON Lines of
`{"id"|"idx": ..., "prediction": ...}`. Classification predictions are label ids or label
names (case-insensitive); a string that names no label counts as wrong, as in generation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import results as R
from .data import json_lines, load_split
from .errors import UserError
from .evaluator import RunConfig, replacement_error, result_provenance, score, write
from .tasks import TaskSpec


def read_predictions(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark some editors write is not JSON
    except FileNotFoundError:
        raise UserError(f"--predictions {path}: no such file")
    except UnicodeDecodeError:
        raise UserError(f"--predictions {path}: not UTF-8 text")
    stripped = text.lstrip()
    if stripped.startswith("{") and "\n{" not in stripped.strip():
        try:
            obj = json.loads(text, object_pairs_hook=_unique_keys(path))
        except json.JSONDecodeError as exc:
            raise UserError(f"--predictions {path}: invalid JSON at line {exc.lineno} ({exc.msg})")
        if "prediction" not in obj:
            return {str(k): v for k, v in obj.items()}
    out: dict[str, Any] = {}
    for n, rec in json_lines(text.splitlines(), f"--predictions {path}", UserError):
        ident = rec.get("id", rec.get("idx")) if isinstance(rec, dict) else None
        if ident is None or "prediction" not in rec:
            raise UserError(f"--predictions {path}: line {n}: expected {{\"id\": ..., \"prediction\": ...}}")
        if str(ident) in out:
            raise UserError(f"--predictions {path}: line {n}: id {ident!r} appears twice")
        out[str(ident)] = rec["prediction"]
    if not out:
        raise UserError(f"--predictions {path}: no predictions in the file")
    return out


def _unique_keys(path: Path):
    """json's object hook: an id given twice is an error, as in the JSON Lines format (json keeps the last)."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise UserError(f"--predictions {path}: id {key!r} appears twice; predict every example once")
            out[key] = value
        return out

    return hook


def _as_answer(path: Path, ident: str, value: Any) -> str:
    """A QA prediction is the answer text ("" or null: no answer); anything else is a mistake to name."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"--predictions {path}: id {ident}: the answer must be a string, got "
                        f"{type(value).__name__} {json.dumps(value)[:60]}")
    return value


def _as_label(task: TaskSpec, value: Any) -> int:
    if isinstance(value, bool):
        return -1
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0: a label id written by a tool that keeps every number as a float
    if isinstance(value, int):
        return value if 0 <= value < len(task.labels) else -1
    lowered = [name.lower() for name in task.labels]
    text = str(value).strip().lower()
    if text in lowered:
        return lowered.index(text)
    return _as_label(task, int(text)) if text.isdigit() else -1  # "1": an id written as a string


def score_file(task: TaskSpec, split: str, predictions_path: Path, model: str, cfg: RunConfig) -> Path:
    if split not in [es.split for es in task.dataset.eval]:
        valid = ", ".join(es.split for es in task.dataset.eval)
        raise UserError(f"--split {split}: not an evaluation split of {task.name}; valid: {valid}")
    data = load_split(task, split, cfg.data, limit=cfg.limit, sample=cfg.sample)
    given = read_predictions(predictions_path)
    ids = [task.example_id(row, i) for i, row in enumerate(data.rows)]
    missing = [i for i in ids if i not in given]
    extra = sorted(set(given) - set(ids))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} id(s) missing (first: {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unknown id(s) (first: {', '.join(extra[:3])})")
        raise UserError(f"--predictions {predictions_path}: {'; '.join(parts)}; predict every example of "
                        f"{task.name}/{split} ({len(ids)}) and nothing else")
    if task.kind == "classification":
        preds = [_as_label(task, given[i]) for i in ids]
    else:
        preds = [_as_answer(predictions_path, i, given[i]) for i in ids]
    metrics, ci95 = score(task, preds, data.rows, cfg.seed)
    unknown = sum(p == -1 for p in preds) if task.kind == "classification" else 0
    import hashlib

    settings = {"predictions_file": str(predictions_path),
                "predictions_sha256": hashlib.sha256(predictions_path.read_bytes()).hexdigest(), "limit": cfg.limit,
                **({"sample": cfg.sample} if cfg.sample else {})}
    result = R.Result(
        task=task.name, task_version=task.version, suite=task.suite, kind=task.kind, split=split,
        column=task.column(split), model=model, adapter="external", mode="external", weights="external",
        data=data.info, metrics=metrics, ci95=ci95, efficiency=R.Efficiency(),
        note=f"{unknown} prediction(s) named no label and count as wrong" if unknown else "",
        provenance=result_provenance(task, cfg, settings, R.settings_key(settings), None, "external"),
    )
    path = R.result_path(cfg.results_dir, model, task.name, split, len(task.dataset.eval) == 1)
    refused = None if cfg.force else replacement_error(path, R.load_existing(path), data, result.adapter)
    if refused:
        raise UserError(refused)
    write(result, path)
    return path
