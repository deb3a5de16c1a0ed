"""Matching a classifier head's labels to a task's labels (pure: no model needed).

Public checkpoints disagree on label order (some MNLI heads put contradiction first), so labels are
matched by name (case and punctuation ignored); generic LABEL_<i> heads of the right size fall back
to position, and a user's `--label-map` overrides both.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from ..errors import UserError

_GENERIC = re.compile(r"^LABEL_\d+$")
LABEL_MAP_FORMAT = "HEAD=TASK_LABEL pairs separated by commas, e.g. LABEL_0=negative,LABEL_1=positive"


def normalize_label(name: Any) -> str:
    """'Not Duplicate', 'not_duplicate' and 'NOT-DUPLICATE' are the same label."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def parse_label_map(value: Any) -> dict[str, str] | None:
    """A dict, or the CLI's 'HEAD=TASK,HEAD=TASK' string, as {head label or id: task label}; None when empty."""
    if value is None or value == {} or value == "":
        return None
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if not pairs or not all(sep and head.strip() and label.strip() for head, sep, label in pairs):
            raise UserError(f"--label-map {value!r}: expected {LABEL_MAP_FORMAT}")
        value = {head: label for head, _, label in pairs}
    if not isinstance(value, Mapping):
        raise UserError(f"label_map: got {type(value).__name__}, expected a mapping of head label to task label")
    return {str(k).strip(): str(v).strip() for k, v in value.items()}


def map_head_labels(id2label: Mapping[Any, Any], task_labels: Sequence[str], label_map: Mapping[str, str] | None = None,
                    *, model: str = "model", task: str = "task") -> list[int]:
    """Task label index for each head output, -1 for an output the task has no label for."""
    head = _head_names(id2label)
    if label_map:
        return _from_label_map(head, task_labels, label_map, model)
    by_name = _by_name(head, task_labels)
    if by_name is not None:
        return by_name
    if len(head) == len(task_labels) and all(_GENERIC.match(h) for h in head):
        return list(range(len(head)))  # an unnamed head of the right size: position is all there is
    example = ",".join(f"{h}={t}" for h, t in zip(head, task_labels))
    raise UserError(f"{model}: cannot match the classifier's labels ({', '.join(head)}) to {task}'s labels "
                    f"({', '.join(task_labels)}); pass --label-map HEAD=TASK,... (e.g. --label-map {example})")


def _head_names(id2label: Mapping[Any, Any]) -> list[str]:
    ids = {int(k): str(v) for k, v in id2label.items()}
    return [ids.get(i, f"LABEL_{i}") for i in range(max(ids) + 1 if ids else 0)]


def _by_name(head: Sequence[str], task_labels: Sequence[str]) -> list[int] | None:
    """A mapping when every task label names exactly one head output; None otherwise."""
    wanted = {normalize_label(t): i for i, t in enumerate(task_labels)}
    if len(wanted) != len(task_labels):
        return None
    mapped = [wanted.get(normalize_label(h), -1) for h in head]
    return mapped if sorted(m for m in mapped if m >= 0) == list(range(len(task_labels))) else None


def _from_label_map(head: Sequence[str], task_labels: Sequence[str], label_map: Mapping[str, str],
                    model: str) -> list[int]:
    task_index = {normalize_label(t): i for i, t in enumerate(task_labels)}
    mapped = [-1] * len(head)
    for key, value in label_map.items():
        outputs = [i for i, h in enumerate(head) if key in (h, str(i)) or normalize_label(key) == normalize_label(h)]
        if not outputs:
            raise UserError(f"--label-map {key}={value}: {model} has no head label {key!r}; "
                            f"its labels are {', '.join(f'{i}:{h}' for i, h in enumerate(head))}")
        if normalize_label(value) not in task_index:
            raise UserError(f"--label-map {key}={value}: {value!r} is not a task label; "
                            f"the task's labels are {', '.join(task_labels)}")
        for i in outputs:
            mapped[i] = task_index[normalize_label(value)]
    return mapped
