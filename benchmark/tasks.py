"""Task plugins: declarative YAML files parsed into frozen, validated `TaskSpec`s.

A task file is data, never code: it is read with `yaml.safe_load`, unknown keys are errors,
and every error names the file, the field, the bad value and what was expected.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import TaskError, UserError, choices_hint

KINDS = ("classification", "extractive_qa", "closed_book_qa")
METRICS_BY_KIND = {
    "classification": ("accuracy", "f1", "mcc"),
    "extractive_qa": ("exact_match", "f1"),
    "closed_book_qa": ("exact_match", "f1"),
}
NORMALIZERS = ("squad", "triviaqa")
ENTRY_POINT_GROUP = "benchmark.tasks"
BUILTIN_TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A suite names its leaderboard files (<suite>.md, <suite>.png) beside the ones the published folder
# already has: perf.md (make perf), transfer.md (the transfer study) and README.md.
RESERVED_SUITES = ("perf", "readme", "transfer")
_YAML_BOOLS = "quote it: YAML reads an unquoted yes, no, on, off, true or false as a boolean"
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class EvalSplit:
    """One evaluation split and the leaderboard column it fills (MNLI has two)."""

    split: str
    column: str


@dataclass(frozen=True)
class DatasetSpec:
    hub: str | None  # None: local data only (--data DIR)
    config: str | None
    revision: str | None
    train: str | None
    eval: tuple[EvalSplit, ...]
    local: str
    # Original-format files per split (GLUE TSV, SQuAD JSON), tried after <split>.jsonl[.gz].
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Original TSV column -> schema field; values in a label column may be label names.
    tsv_columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    kind: str
    suite: str
    display: str
    description: str
    dataset: DatasetSpec
    inputs: tuple[str, ...]
    template: str
    metrics: tuple[str, ...]
    label: str | None = None
    labels: tuple[str, ...] = ()
    positive_label: str | None = None
    answers: str | None = None
    id: str | None = None
    normalizer: str = "squad"
    max_new_tokens: int = 8
    prompt: str | None = None  # decoder-only models: the prompt (default: the template)
    choices: tuple[str, ...] = ()  # decoder-only classification: the answer text of each label (default: labels)
    source: str = ""          # file (or entry point) the spec came from
    sha256: str = ""          # content hash of that file: results record it
    provider: str = "builtin"  # 'builtin', 'dir:<path>' or '<package>==<version>'

    # --- accessors used by data loaders, adapters and the evaluator -------------------
    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive_label) if self.positive_label else len(self.labels) - 1

    def column(self, split: str) -> str:
        for es in self.dataset.eval:
            if es.split == split:
                return es.column
        return f"{self.display} ({split})"

    def texts(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(get_field(row, f)) for f in self.inputs)

    def label_index(self, row: Mapping[str, Any]) -> int:
        """An int is a label id; a string is a label name first ("5" of labels 1..5 is the fifth
        label), and an id only when no label has that name. ValueError when it is neither."""
        value = get_field(row, self.label)
        if isinstance(value, str):
            if value in self.labels:
                return self.labels.index(value)
            if not value.strip().lstrip("-").isdigit():
                raise ValueError(f"{value!r} is not a label name")
        return int(value)

    def answer_list(self, row: Mapping[str, Any]) -> list[str]:
        value = get_field(row, self.answers)
        return [value] if isinstance(value, str) else list(value)

    def answer_span(self, row: Mapping[str, Any]) -> tuple[int, int] | None:
        """The character span extractive QA trains on: the first answer at its recorded offset, else
        (data with no offsets, or a stale one) the first answer found in the context; None if none is."""
        context = str(get_field(row, "context"))
        answers = self.answer_list(row)
        starts = self.answer_starts(row)
        if answers and isinstance(starts, list) and starts:
            start, text = starts[0], answers[0]
            if isinstance(start, int) and not isinstance(start, bool) and text.strip() \
                    and context[start:start + len(text)] == text:
                return start, start + len(text)
        for text in answers:
            start = context.find(text) if text.strip() else -1
            if start >= 0:
                return start, start + len(text)
        return None

    def answer_starts(self, row: Mapping[str, Any]) -> Any:
        """The character offsets SQuAD keeps beside the answer texts ('answers.answer_start'), as
        stored; None when the data has none (closed-book answers, or a plain list of strings)."""
        parent = (self.answers or "").rpartition(".")[0]
        if not parent:
            return None
        try:
            holder = get_field(row, parent)
            return holder["answer_start"] if "answer_start" in holder else None
        except (KeyError, TypeError):
            return None

    def example_id(self, row: Mapping[str, Any], position: int) -> str:
        return str(get_field(row, self.id)) if self.id else str(position)

    @property
    def answer_choices(self) -> tuple[str, ...]:
        """What a decoder-only model writes for each label (lm-eval's doc_to_choice)."""
        return self.choices or self.labels

    def render(self, row: Mapping[str, Any]) -> str:
        """Fill the text-to-text template by plain substitution: no format-string evaluation."""
        return _fill(self.template, row)

    def render_prompt(self, row: Mapping[str, Any]) -> str:
        """The decoder-only prompt (`prompt`, else the template), filled the same way."""
        return _fill(self.prompt or self.template, row)


def _fill(template: str, row: Mapping[str, Any]) -> str:
    out = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(str(get_field(row, name)))
    return "".join(out)


def references(task: TaskSpec, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """What a prediction is scored against: the label index, or every acceptable answer."""
    if task.kind == "classification":
        return [task.label_index(r) for r in rows]
    return [task.answer_list(r) for r in rows]


def get_field(row: Mapping[str, Any], path: str | None) -> Any:
    """Read a dotted field ('answers.text') from a schema row."""
    if path is None:
        raise KeyError("no field")
    value: Any = row
    for part in path.split("."):
        value = value[part]
    return value


# ---------------------------------------------------------------------------------------
# parsing and validation
_TOP_KEYS = {
    "name", "version", "kind", "suite", "display", "description", "dataset", "inputs", "template",
    "metrics", "label", "labels", "positive_label", "answers", "id", "normalizer", "max_new_tokens", "prompt",
    "choices",
}
_DATASET_KEYS = {"hub", "config", "revision", "train", "eval", "local", "files", "tsv_columns"}
_REQUIRED = ("name", "version", "kind", "dataset", "inputs", "template", "metrics")


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, fieldname: str, problem: str) -> TaskError:
        return TaskError(f"{self.source}: field '{fieldname}': {problem}")

    def keys(self, data: Mapping, allowed: set[str], prefix: str = "") -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(prefix + str(key), f"unknown key; {choices_hint(str(key), allowed)}")

    def typed(self, data: Mapping, key: str, types: type | tuple, expected: str, prefix: str = "",
              default: Any = ..., nullable: bool = False) -> Any:
        if key not in data:
            if default is ...:
                raise self.fail(prefix + key, f"missing; expected {expected}")
            return default
        value = data[key]
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, types):
            hint = f"; {_YAML_BOOLS}" if isinstance(value, bool) else ""
            raise self.fail(prefix + key, f"got {value!r} ({type(value).__name__}), expected {expected}{hint}")
        return value

    def str_list(self, data: Mapping, key: str, expected: str, default: Any = ...) -> tuple[str, ...]:
        value = self.typed(data, key, list, expected, default=default)
        if value is default and default is not ...:
            return tuple(value)
        if not value or not all(isinstance(v, str) and v for v in value):
            hint = f"; {_YAML_BOOLS}" if any(isinstance(v, bool) for v in value or ()) else ""
            raise self.fail(key, f"got {value!r}, expected {expected}{hint}")
        if len(set(value)) != len(value):
            raise self.fail(key, f"got {value!r}: duplicate entries")
        return tuple(value)

    def fieldname(self, value: str, key: str) -> str:
        if not _FIELD.match(value):
            raise self.fail(key, f"got {value!r}, expected a field name like 'sentence' or 'answers.text'")
        return value


def parse_task(data: Any, source: str, sha256: str = "", provider: str = "builtin") -> TaskSpec:
    """Validate one task definition (already parsed from YAML) into a `TaskSpec`."""
    c = _Checker(source)
    if not isinstance(data, dict):
        raise TaskError(f"{source}: expected a mapping of task fields at the top level, got {type(data).__name__}")
    c.keys(data, _TOP_KEYS)
    for key in _REQUIRED:
        if key not in data:
            raise c.fail(key, "missing; every task needs " + ", ".join(_REQUIRED))
    name = c.typed(data, "name", str, "a lower-case name like 'sst2'")
    if not _NAME.match(name):
        raise c.fail("name", f"got {name!r}, expected lower-case letters, digits and '_' starting with a letter")
    version = c.typed(data, "version", int, "a positive integer (bump it when data, labels or template change)")
    if version < 1:
        raise c.fail("version", f"got {version}, expected a positive integer")
    kind = c.typed(data, "kind", str, "one of " + ", ".join(KINDS))
    if kind not in KINDS:
        raise c.fail("kind", f"got {kind!r}; {choices_hint(kind, KINDS)}")
    suite = c.typed(data, "suite", str, "a suite name like 'glue' or 'qa'", default="glue" if kind == "classification" else "qa")
    problem = suite_problem(suite)
    if problem:
        raise c.fail("suite", f"got {suite!r}: {problem}")
    display = c.typed(data, "display", str, "a short column name like 'SST-2'", default=name.upper())
    description = c.typed(data, "description", str, "a sentence", default="")

    inputs = c.str_list(data, "inputs", "a non-empty list of field names")
    for f in inputs:
        c.fieldname(f, "inputs")
    metrics = c.str_list(data, "metrics", "a non-empty list of metric names")
    for m in metrics:
        if m not in METRICS_BY_KIND[kind]:
            raise c.fail("metrics", f"got {m!r}, not a metric for kind {kind}; {choices_hint(m, METRICS_BY_KIND[kind])}")

    template = c.typed(data, "template", str, "a text-to-text template like 'sst2 sentence: {sentence}'")
    _check_template(c, template, inputs)
    prompt = c.typed(data, "prompt", str, "a decoder-only prompt like '{sentence}\\nAnswer:'", default=None)
    if prompt is not None:
        _check_template(c, prompt, inputs, key="prompt")

    label = labels = positive = answers = None
    if kind == "classification":
        label = c.fieldname(c.typed(data, "label", str, "the label field name, e.g. 'label'"), "label")
        labels = c.str_list(data, "labels", "the label names in id order, e.g. [negative, positive]")
        if len(labels) < 2:
            raise c.fail("labels", f"got {list(labels)!r}, expected at least two label names")
        positive = c.typed(data, "positive_label", str, "one of the label names", default=None)
        if positive is not None and positive not in labels:
            raise c.fail("positive_label", f"got {positive!r}; {choices_hint(positive, labels)}")
        if "f1" in metrics and positive is None and len(labels) != 2:
            raise c.fail("positive_label", f"missing; metric f1 on {len(labels)} labels needs the positive class")
        for key in ("answers",):
            if key in data:
                raise c.fail(key, "only for QA tasks; a classification task uses 'label' and 'labels'")
        choices = c.str_list(data, "choices", "one answer text per label, in label order", default=[])
        if choices and len(choices) != len(labels):
            raise c.fail("choices", f"got {len(choices)} answer texts for {len(labels)} labels; give one per label")
    else:
        answers = c.fieldname(c.typed(data, "answers", str, "the answers field, e.g. 'answers.text'"), "answers")
        for key in ("label", "labels", "positive_label", "choices"):
            if key in data:
                raise c.fail(key, f"only for classification tasks; a {kind} task uses 'answers'")
        choices = ()
    if kind == "extractive_qa" and "context" not in inputs:
        raise c.fail("inputs", f"got {list(inputs)!r}; extractive QA needs a 'context' input to take spans from")

    ident = c.typed(data, "id", str, "the example-id field name (or null: position in the split)", default=None, nullable=True)
    if ident is not None:
        c.fieldname(ident, "id")
    normalizer = c.typed(data, "normalizer", str, "one of " + ", ".join(NORMALIZERS),
                         default="triviaqa" if kind == "closed_book_qa" else "squad")
    if normalizer not in NORMALIZERS:
        raise c.fail("normalizer", f"got {normalizer!r}; {choices_hint(normalizer, NORMALIZERS)}")
    max_new = c.typed(data, "max_new_tokens", int, "a positive integer", default=8 if kind == "classification" else 32)
    if max_new < 1:
        raise c.fail("max_new_tokens", f"got {max_new}, expected a positive integer")

    dataset = _parse_dataset(c, data["dataset"], name, display)
    return TaskSpec(
        name=name, version=version, kind=kind, suite=suite, display=display, description=description,
        dataset=dataset, inputs=inputs, template=template, metrics=metrics, label=label,
        labels=labels or (), positive_label=positive, answers=answers, id=ident, normalizer=normalizer,
        max_new_tokens=max_new, prompt=prompt, choices=tuple(choices), source=source, sha256=sha256,
        provider=provider,
    )


def suite_problem(suite: Any) -> str | None:
    """Why `suite` cannot name a leaderboard file, or None."""
    if not isinstance(suite, str) or not _NAME.match(suite):
        return "not a valid suite name (lower-case letters, digits and '_', starting with a letter)"
    if suite in RESERVED_SUITES:
        return (f"'{suite}' is reserved (the leaderboards folder has its own {suite}.md); "
                "choose another suite name")
    return None


def _check_template(c: _Checker, template: str, inputs: tuple[str, ...], key: str = "template") -> None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise c.fail(key, f"got {template!r}: {exc}; write fields as {{name}} and a literal brace as {{{{")
    named = False
    for _literal, fname, spec, conv in parts:
        if fname is None:
            continue
        named = True
        if fname not in inputs:
            if not _FIELD.match(fname or "x") or "." in fname or fname == "":
                raise c.fail(key, f"placeholder {{{fname}}}: only plain field names are allowed, "
                                         "no attribute, index or positional access")
            raise c.fail(key, f"placeholder {{{fname}}} is not an input; {choices_hint(fname, inputs)}")
        if spec or conv:
            raise c.fail(key, f"placeholder {{{fname}}} has a conversion or format spec; use plain {{{fname}}}")
    if not named:
        raise c.fail(key, f"got {template!r}, expected at least one {{field}} placeholder")


def _parse_dataset(c: _Checker, data: Any, name: str, display: str) -> DatasetSpec:
    if not isinstance(data, dict):
        raise c.fail("dataset", f"got {data!r}, expected a mapping with hub, config, train, eval")
    c.keys(data, _DATASET_KEYS, "dataset.")
    hub = c.typed(data, "hub", str, "a Hugging Face dataset id like 'nyu-mll/glue', or null for local data only",
                  "dataset.", nullable=True)
    config = c.typed(data, "config", str, "a dataset config name or null", "dataset.", default=None, nullable=True)
    revision = c.typed(data, "revision", str, "a dataset revision or null", "dataset.", default=None, nullable=True)
    train = c.typed(data, "train", str, "the train split name or null", "dataset.", default=None, nullable=True)
    if train is not None:
        _check_split(c, train, "dataset.train")
    raw_eval = c.typed(data, "eval", (list, str), "a list of evaluation splits", "dataset.")
    raw_eval = [raw_eval] if isinstance(raw_eval, str) else raw_eval
    if not raw_eval:
        raise c.fail("dataset.eval", "empty; expected at least one evaluation split")
    evals: list[EvalSplit] = []
    for item in raw_eval:
        if isinstance(item, str):
            evals.append(EvalSplit(item, display if len(raw_eval) == 1 else f"{display}-{item}"))
        elif isinstance(item, dict) and set(item) <= {"split", "column"} and isinstance(item.get("split"), str):
            evals.append(EvalSplit(item["split"], str(item.get("column") or f"{display}-{item['split']}")))
        else:
            raise c.fail("dataset.eval", f"got {item!r}, expected a split name or {{split: ..., column: ...}}")
    if len({e.split for e in evals}) != len(evals):
        raise c.fail("dataset.eval", "the same split is listed twice")
    for e in evals:
        _check_split(c, e.split, "dataset.eval")
    if train is not None and train in {e.split for e in evals}:
        raise c.fail("dataset.eval", f"'{train}' is also the train split; evaluate on a held-out split "
                                     "(a score on the examples a model learned from measures nothing)")
    local = c.typed(data, "local", str, "a folder name under a local data directory", "dataset.", default=name)
    if "/" in local or local in ("", ".", ".."):
        raise c.fail("dataset.local", f"got {local!r}, expected a plain folder name")
    files_raw = c.typed(data, "files", dict, "a mapping of split to file names", "dataset.", default={})
    files: dict[str, tuple[str, ...]] = {}
    for split, names in files_raw.items():
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not all(isinstance(n, str) and "/" not in n and n not in (".", "..") for n in names):
            raise c.fail(f"dataset.files.{split}", f"got {names!r}, expected plain file names")
        files[str(split)] = tuple(names)
    cols = c.typed(data, "tsv_columns", dict, "a mapping of TSV column to field name", "dataset.", default={})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in cols.items()):
        raise c.fail("dataset.tsv_columns", f"got {cols!r}, expected TSV column: field name pairs")
    return DatasetSpec(hub=hub, config=config, revision=revision, train=train, eval=tuple(evals),
                       local=local, files=files, tsv_columns=dict(cols))


def _check_split(c: _Checker, split: str, key: str) -> None:
    """A split names a file under the task's data folder (<split>.jsonl): no path in it."""
    if not split.strip() or "/" in split or "\\" in split or split in (".", ".."):
        raise c.fail(key, f"got {split!r}, expected a split name like 'validation'")


def _safe_load_unique(text: str) -> Any:
    """yaml.safe_load, except that a key given twice in one mapping is an error, not 'the last wins'."""
    import yaml  # light; only the CLI paths that read tasks pay for it

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=UniqueKeyLoader)


def load_task_file(path: Path, provider: str = "builtin") -> TaskSpec:
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskError(f"{path}: cannot read task file: {exc.strerror}")
    try:
        data = _safe_load_unique(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise TaskError(f"{path}: not UTF-8 text; save the task file as UTF-8")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TaskError(f"{path}: YAML syntax error{where}: {problem}; fix the file (see README, 'Adding a task')")
    return parse_task(data, str(path), hashlib.sha256(raw).hexdigest(), provider)


# ---------------------------------------------------------------------------------------
# discovery
@dataclass
class TaskCatalog:
    """Every task found, plus the plugins that failed to load (reported, not fatal until selected)."""

    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # plugin source -> one-line error
    claims: dict[str, frozenset[str]] = field(default_factory=dict)  # broken source -> task names it meant

    def broken_error(self, name: str) -> str | None:
        """The error of a broken plugin that meant to define task `name` (by its `name:` or file name)."""
        return next((self.broken[src] for src, names in self.claims.items() if name in names), None)

    def add(self, spec: TaskSpec) -> None:
        if spec.name in self.tasks:
            other = self.tasks[spec.name].source
            raise TaskError(f"{spec.source}: field 'name': task '{spec.name}' is already defined by {other}; "
                            "rename one (change a task by bumping its version, not by shadowing it)")
        self.tasks[spec.name] = spec

    def select(self, names: Iterable[str] | None) -> list[TaskSpec]:
        if not names:
            return list(self.tasks.values())
        out = []
        for name in dict.fromkeys(names):  # a name given twice is evaluated once
            broken = self.broken_error(name)
            if broken:  # even beside a built-in of that name: the user meant their file, which is broken
                raise TaskError(broken)
            if name not in self.tasks:
                raise UserError(f"unknown task '{name}'; {choices_hint(name, self.tasks)}")
            out.append(self.tasks[name])
        return out


def _files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml")
                  and p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def discover(tasks_dirs: Iterable[str | Path] = (), builtin: bool = True, entry_points: bool = True) -> TaskCatalog:
    """Built-in tasks, then each --tasks-dir, then installed packages' entry points."""
    catalog = TaskCatalog()
    scanned: set[Path] = set()
    if builtin:
        scanned.add(BUILTIN_TASKS_DIR)
        for path in _files_in(BUILTIN_TASKS_DIR):
            catalog.add(load_task_file(path))  # a broken built-in is a bug: let it fail loudly
    for d in tasks_dirs:
        directory = Path(d)
        if not directory.is_dir():
            raise UserError(f"--tasks-dir {d}: not a directory; pass a folder holding task .yaml files")
        if directory.resolve() in scanned:
            continue  # the built-in folder, or one given twice: its tasks are already in
        scanned.add(directory.resolve())
        for path in _files_in(directory):
            try:
                spec = load_task_file(path, provider=f"dir:{directory}")
            except TaskError as exc:
                catalog.broken[str(path)] = str(exc)
                catalog.claims[str(path)] = frozenset({path.stem} | _declared_name(path))
                continue
            catalog.add(spec)  # a duplicate name is an error, never a silently shadowed task
    if entry_points:
        _load_entry_points(catalog)
    return catalog


def _declared_name(path: Path) -> set[str]:
    """The `name:` a broken task file gives, when its YAML is still readable; else nothing."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()
    name = data.get("name") if isinstance(data, dict) else None
    return {name} if isinstance(name, str) else set()


def _load_entry_points(catalog: TaskCatalog) -> None:
    """Each entry point yields a task file, a folder of them, a list of those, or a task mapping."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        provider = f"{dist.name}=={dist.version}" if dist else ep.value
        label = f"entry point '{ep.name}' ({provider})"
        try:
            obj = ep.load()
            obj = obj() if callable(obj) else obj
            items = obj if isinstance(obj, (list, tuple)) else [obj]
            for item in items:
                if isinstance(item, dict):
                    catalog.add(parse_task(item, label, provider=provider))
                elif Path(item).is_dir():
                    for path in _files_in(Path(item)):
                        catalog.add(load_task_file(path, provider=provider))
                else:
                    catalog.add(load_task_file(Path(item), provider=provider))
        except TaskError as exc:
            catalog.broken[label] = str(exc)
        except Exception as exc:  # a third-party plugin must not stop the others
            catalog.broken[label] = f"{label}: failed to load: {type(exc).__name__}: {exc}"
