"""Data sources (hub, local directory, built-in sample), schema checks and content fingerprints.

Every split becomes a list of plain dict rows in the task's Hugging Face schema, whatever file
format it came from, so the same data gives the same fingerprint from a TSV, a JSON Lines file
or the hub. The fingerprint hashes content (never mtimes) and chains each transform after it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlparse

from .errors import DataError, HubUnavailable, UserError
from .results import DataInfo
from .tasks import TaskSpec, get_field

HUB_PROBE_SECONDS = 1.5
MAX_TEXT_CHARS = 50_000  # SQuAD's longest context is ~4k; anything near this is a broken file


@dataclass(frozen=True)
class Split:
    task: str
    name: str
    rows: list[dict[str, Any]]
    info: DataInfo


# ---------------------------------------------------------------------------------------
# fingerprints
def content_fingerprint(rows: Iterable[dict[str, Any]]) -> str:
    """sha256 of the rows as canonical JSON; text that cannot be UTF-8 (a lone surrogate) is a data error."""
    h = hashlib.sha256()
    for n, row in enumerate(rows):
        try:
            h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                                default=_plain).encode("utf-8"))
        except UnicodeEncodeError:
            raise DataError(f"example {n}: contains a lone UTF-16 surrogate (a broken \\u escape); fix the text")
        except TypeError as exc:
            raise DataError(f"example {n}: {exc}; the data holds a value JSON cannot express")
        h.update(b"\n")
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """What a hub column of dates or bytes hashes as (JSON has neither); anything else stays an error."""
    import datetime

    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(f"a {type(value).__name__} value")


def chain(fingerprint: str, transform: str, version: int = 1, **args: Any) -> str:
    """Fingerprint of a transform's output: previous fingerprint + name + version + its arguments."""
    payload = json.dumps({"prev": fingerprint, "transform": transform, "version": version, "args": args},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


# ---------------------------------------------------------------------------------------
# source resolution
def describe_source(data: str) -> tuple[str, str]:
    """('hub'|'sample'|'local', location) for a --data value; a missing directory is a user error."""
    if data in ("hub", "sample"):
        return data, "builtin" if data == "sample" else "huggingface"
    path = Path(data).expanduser()
    if not path.is_dir():
        raise UserError(f"--data {data}: no such directory; use hub, sample, or a folder laid out "
                        "<task>/<split>.jsonl[.gz] (e.g. DATA=../shared/data)")
    return "local", str(path)


SAMPLE_SEED = 0  # --sample's one draw: the same examples for every model, seed and run


def load_split(spec: TaskSpec, split: str, data: str, *, limit: int | None = None, sample: int | None = None,
               hub: "HubAccess | None" = None) -> Split:
    """One split as validated rows with its fingerprint. `hub`: the run's decision (`choose_source`);
    None probes the hub here, for a caller outside a run. `limit`: the first N rows; `sample`: N rows
    drawn at random with a fixed seed, kept in split order."""
    if limit is not None and sample is not None:
        raise UserError(f"--limit {limit} and --sample {sample}: pass one (the first N examples, or N at random)")
    source, location = describe_source(data)
    path: Path | None = None  # the file a local split is read from, named in its errors
    if source == "sample":
        from .sample import generate

        rows = generate(spec, split)
    elif source == "hub":
        rows = _load_hub(spec, split, hub or hub_access())
        location = f"{spec.dataset.hub}" + (f"/{spec.dataset.config}" if spec.dataset.config else "") + \
                   (f"@{spec.dataset.revision}" if spec.dataset.revision else "")
    else:
        rows, location, path = _load_local(spec, split, Path(location))
    validate_rows(spec, rows, f"{path if source == 'local' else location} ({spec.name}/{split})")
    rows = _labels_as_ids(spec, rows)
    fingerprint = content_fingerprint(rows)
    subset = ""
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit {limit}: must be a positive number of examples")
        if limit < len(rows):  # a limit at or above the split's size keeps the whole split, and its fingerprint
            subset = "first"
            rows = rows[:limit]
            fingerprint = chain(fingerprint, "limit", n=limit)
    if sample is not None:
        if sample < 1:
            raise UserError(f"--sample {sample}: must be a positive number of examples")
        if sample < len(rows):
            import random

            keep = sorted(random.Random(SAMPLE_SEED).sample(range(len(rows)), sample))
            rows = [rows[i] for i in keep]
            # the drawn rows' own hash: a change in how Python draws could not pass for the same subset
            fingerprint = chain(fingerprint, "sample", n=sample, seed=SAMPLE_SEED, rows=content_fingerprint(rows))
            subset = "random"
    return Split(spec.name, split, rows, DataInfo(source, location, fingerprint, len(rows), subset))


def _labels_as_ids(spec: TaskSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Labels written as names ("positive", "1") become the ids the HF schema stores, as the TSV reader
    makes them, so the same data hashes the same in every format; rows with ids are returned as they are."""
    if spec.kind != "classification" or not spec.label or "." in spec.label or \
            not any(isinstance(row.get(spec.label), str) for row in rows):
        return rows
    return [{**row, spec.label: spec.label_index(row)} if isinstance(row.get(spec.label), str) else row
            for row in rows]


# ---------------------------------------------------------------------------------------
# hub
def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """A bounded TCP probe, so an offline machine fails in ~1 s instead of ~25 s of retries."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    worker = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores timeouts: bound it here
    worker.start()
    worker.join(timeout)
    return bool(ok)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HubAccess:
    """Whether the Hugging Face Hub may be asked: decided once per run, before it starts."""

    online: bool
    reason: str = ""  # why not: HF_HUB_OFFLINE (the local cache only), or the probe failed


def hub_access() -> HubAccess:
    """The one bounded probe (skipped when HF_HUB_OFFLINE is set)."""
    if hub_offline():
        return HubAccess(False, "HF_HUB_OFFLINE is set")
    if not hub_reachable():
        return HubAccess(False, "the Hugging Face Hub is unreachable")
    return HubAccess(True)


def choose_source(data: str, tasks: Iterable[TaskSpec], hub: HubAccess) -> tuple[str, str | None]:
    """(the data source the run uses, why it is not the one asked for): `--data hub` falls back to the
    sample suite when the hub is unreachable, or when HF_HUB_OFFLINE is set and a task's dataset is not
    in the local Hugging Face cache. Decided once, before the run; never retried mid-run."""
    if data != "hub" or hub.online:
        return data, None
    if not hub_offline():
        return "sample", f"{hub.reason}."
    missing = [t.dataset.hub or f"{t.name} (local data only)" for t in tasks if not _hub_cached(t)]
    if missing:
        return "sample", (f"{', '.join(sorted(set(missing)))} not in the local Hugging Face cache and "
                          "HF_HUB_OFFLINE is set.")
    return data, None


def _hub_cached(spec: TaskSpec) -> bool:
    """Whether the local Hugging Face cache holds the task's dataset (offline: nothing is downloaded)."""
    import datasets  # heavy: only on this path

    ds = spec.dataset
    if ds.hub is None:
        return False
    try:
        datasets.load_dataset_builder(ds.hub, ds.config, revision=ds.revision)
    except Exception:  # datasets raises many types for 'not cached'
        return False
    return True


def _load_hub(spec: TaskSpec, split: str, hub: HubAccess) -> list[dict[str, Any]]:
    ds = spec.dataset
    if ds.hub is None:
        raise DataError(f"task {spec.name} has no dataset on the hub (dataset.hub is null); pass --data <dir> "
                        f"holding {ds.local}/{split}.jsonl, or --data sample")
    what = f"{ds.hub}" + (f" ({ds.config})" if ds.config else "") + f" split {split}"
    offline = hub_offline()
    if not offline and not hub.online:
        raise HubUnavailable(f"cannot reach the Hugging Face Hub to load {what}; use --data sample, "
                             "--data <dir> (e.g. DATA=../shared/data), or HF_HUB_OFFLINE=1 to read your HF cache")
    import datasets  # heavy: only on this path

    try:
        loaded = datasets.load_dataset(ds.hub, ds.config, split=split, revision=ds.revision)
    except Exception as exc:  # datasets raises many types for 'not cached' / 'not found'
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if offline:
            raise HubUnavailable(f"{what} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set "
                                 f"({reason}); use --data sample or --data <dir>")
        raise DataError(f"loading {what} from the hub failed: {reason}")
    return [dict(r) for r in loaded]


# ---------------------------------------------------------------------------------------
# local directory
def _local_file(spec: TaskSpec, split: str, root: Path) -> Path:
    """The one file holding a split; two would leave the number to whichever this code tried first."""
    folder = root / spec.dataset.local
    candidates = [folder / f"{split}.jsonl.gz", folder / f"{split}.jsonl", folder / f"{split}.parquet"]
    candidates += [folder / name for name in spec.dataset.files.get(split, ())]
    found = [p for p in candidates if p.is_file()
             and (p.name.endswith((".jsonl", ".jsonl.gz")) or p.suffix in (".tsv", ".json", ".parquet"))]
    shards = _shards(folder, split)
    if shards:  # the hub's own layout: validation-00000-of-00001.parquet, read as one split
        found.append(shards[0])
    if len(found) > 1:
        raise DataError(f"{folder}: {len(found)} files for {spec.name} split '{split}' ({', '.join(p.name for p in found)}); "
                        "keep one, so the number cannot depend on which is read")
    if found:
        return found[0]
    tried = ", ".join(p.name for p in candidates)
    raise DataError(f"{folder}: no file for {spec.name} split '{split}' (tried {tried}){_folder_hint(folder)}; "
                    f"add one, or use --data sample")


def _folder_hint(folder: Path) -> str:
    """'; found SST-2/ beside it, ...' when the task's folder is missing but one spelled otherwise (the
    GLUE download's SST-2/, MNLI/, QQP/) is there."""
    if folder.is_dir() or not folder.parent.is_dir():
        return ""
    squash = lambda name: "".join(c for c in name.lower() if c.isalnum())  # noqa: E731
    other = next((p for p in sorted(folder.parent.iterdir()) if p.is_dir() and squash(p.name) == squash(folder.name)), None)
    return f"; {other.name}/ is there: rename or link it as {folder.name}/" if other else ""


def require_split(spec: TaskSpec, split: str, data: str) -> None:
    """Fail now, not after an earlier task has been trained and written, when a local folder lacks a
    split or holds a broken one: its rows are read and validated here, then let go (the run reads them
    again when it trains). The hub and the sample suite are settled before the run."""
    source, location = describe_source(data)
    if source == "local":
        rows, _location, path = _load_local(spec, split, Path(location))
        validate_rows(spec, rows, f"{path} ({spec.name}/{split})")


def _load_local(spec: TaskSpec, split: str, root: Path) -> tuple[list[dict[str, Any]], str, Path]:
    """(rows, the folder recorded as the data's location, the file read, for error messages)."""
    path = _local_file(spec, split, root)
    if not path.name.endswith(".gz") and _is_gzip(path):
        raise DataError(f"{path}: the file is gzip-compressed; name it {path.name}.gz, or decompress it")
    if path.suffix == ".tsv":
        return _read_glue_tsv(spec, path), str(root), path
    if path.suffix == ".json":
        return _read_squad_json(path), str(root), path
    if path.suffix == ".parquet":
        return _read_parquet(path, split), str(root), path
    return _read_jsonl(path), str(root), path


def _shards(folder: Path, split: str) -> list[Path]:
    """A split's parquet shards as the hub names them (`<split>-00000-of-00002.parquet`), in order."""
    import re

    pattern = re.compile(re.escape(split) + r"-\d+-of-\d+\.parquet")
    return sorted(p for p in folder.glob(f"{split}-*.parquet") if pattern.fullmatch(p.name)) if folder.is_dir() else []


def _read_parquet(path: Path, split: str) -> list[dict[str, Any]]:
    """A parquet split as the hub stores it (one file, or its shards in order): rows as plain dicts, so
    the same data hashes as it does from JSON Lines."""
    import pyarrow
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for file in _shards(path.parent, split) or [path]:
        try:
            rows += pq.read_table(file).to_pylist()
        except (OSError, pyarrow.ArrowException) as exc:
            raise DataError(f"{file}: cannot read it as parquet ({str(exc).splitlines()[0]}); check the file is complete")
    return rows


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    def lines(fh: Iterable[bytes]) -> Iterator[str]:
        for n, raw in enumerate(fh, 1):
            try:
                yield raw.decode("utf-8-sig" if n == 1 else "utf-8")  # an editor's byte-order mark is no text
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: line {n}: not valid UTF-8 (byte {exc.start + 1} of the line); "
                                "re-encode the file as UTF-8")

    rows = []
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as fh:
            for n, row in json_lines(lines(fh), str(path), DataError):
                if not isinstance(row, dict):
                    raise DataError(f"{path}: line {n}: expected a JSON object per line, got {type(row).__name__}")
                rows.append(row)
    except gzip.BadGzipFile:
        raise DataError(f"{path}: not gzip-compressed; name it {path.name[:-3]}, or compress it")
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); check the file is complete")
    return rows


def json_lines(lines: Iterable[str], where: str, error: type[UserError]) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-blank line of a JSON Lines text; a bad line is `error`."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: line {n}: invalid JSON ({exc.msg}); fix or remove the line")


def _read_glue_tsv(spec: TaskSpec, path: Path) -> list[dict[str, Any]]:
    """GLUE's original TSV, read as HF's loader does (tab, no quoting); columns mapped by the plugin."""
    mapping = spec.dataset.tsv_columns
    if not mapping:
        raise DataError(f"{path}: task {spec.name} declares no dataset.tsv_columns, so TSV files cannot be read")
    rows = []
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(MAX_TEXT_CHARS * 4)  # a longer text is reported by validate_rows, with its row
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in mapping if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing TSV column(s) {', '.join(missing)}; "
                                f"found {', '.join(reader.fieldnames or [])}")
            for n, rec in enumerate(reader):
                row: dict[str, Any] = {dst: rec[src] for src, dst in mapping.items()}
                if spec.label and spec.label in row:
                    value = row[spec.label]
                    if value in spec.labels:
                        row[spec.label] = spec.labels.index(value)
                    elif value is not None and value.strip().lstrip("-").isdigit():
                        row[spec.label] = int(value)
                    else:
                        raise DataError(f"{path}: row {n + 1}: label {value!r} is not one of "
                                        f"{', '.join(spec.labels)} or an integer id")
                if spec.id and spec.id not in row:
                    row[spec.id] = n
                elif spec.id and str(row[spec.id]).isdigit():
                    row[spec.id] = int(row[spec.id])
                rows.append(row)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8; re-encode the file as UTF-8")
    except csv.Error as exc:
        raise DataError(f"{path}: row {len(rows) + 1}: {exc}; the file is likely broken")
    finally:
        csv.field_size_limit(limit)
    return rows


def _read_squad_json(path: Path) -> list[dict[str, Any]]:
    """SQuAD's original JSON (data → paragraphs → qas), flattened in file order like HF's loader."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        rows = []
        for article in doc["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    rows.append({
                        "id": qa["id"], "title": article.get("title", ""), "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": {"text": [a["text"] for a in qa["answers"]],
                                    "answer_start": [a["answer_start"] for a in qa["answers"]]},
                    })
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8; re-encode the file as UTF-8")
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})")
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not in SQuAD format (missing {exc}); expected data → paragraphs → qas")
    return rows


# ---------------------------------------------------------------------------------------
# schema checks
def validate_rows(spec: TaskSpec, rows: list[dict[str, Any]], where: str) -> None:
    """Refuse data that would give a wrong number: one line naming the row, the field and the problem."""
    if not rows:
        raise DataError(f"{where}: the split is empty; point --data at a folder with examples")
    seen_ids: set[str] = set()
    for n, row in enumerate(rows):
        def bad(fieldname: str, problem: str) -> DataError:
            return DataError(f"{where}: example {n}: field '{fieldname}' {problem}")

        for f in spec.inputs:
            try:
                value = get_field(row, f)
            except (KeyError, TypeError):
                raise bad(f, f"is missing; the task reads {', '.join(spec.inputs)}")
            if not isinstance(value, str):
                raise bad(f, f"is {type(value).__name__}, expected text")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad(f, "contains a lone UTF-16 surrogate (a broken \\u escape); fix the text")
            if len(value) > MAX_TEXT_CHARS:
                raise bad(f, f"has {len(value):,} characters (limit {MAX_TEXT_CHARS:,}); the file is likely broken")
        if spec.kind == "classification":
            try:
                value = get_field(row, spec.label)
            except (KeyError, TypeError):
                raise bad(spec.label or "label", "is missing")
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise bad(spec.label or "label", f"is {value!r}, expected a label id 0..{len(spec.labels) - 1}")
            try:
                index = spec.label_index(row)
            except ValueError:
                raise bad(spec.label or "label", f"is {value!r}, not one of {', '.join(spec.labels)}")
            if not 0 <= index < len(spec.labels):
                raise bad(spec.label or "label", f"is {value!r}, outside 0..{len(spec.labels) - 1} "
                                                 f"({', '.join(spec.labels)})")
        else:
            try:
                answers = get_field(row, spec.answers)
            except (KeyError, TypeError):
                raise bad(spec.answers or "answers", "is missing")
            answers = [answers] if isinstance(answers, str) else answers
            if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
                raise bad(spec.answers or "answers", f"is {answers!r}, expected a non-empty list of answer strings")
            if spec.kind == "extractive_qa":
                _check_spans(row, spec, answers, bad)
        if spec.id:
            try:
                ident = str(get_field(row, spec.id))
            except (KeyError, TypeError):
                raise bad(spec.id, "is missing; every example needs an id")
            if ident in seen_ids:
                raise bad(spec.id, f"repeats id {ident!r}; ids must be unique within a split")
            seen_ids.add(ident)


def _check_spans(row: dict[str, Any], spec: TaskSpec, answers: list[str], bad) -> None:
    starts = spec.answer_starts(row)
    if starts is None:
        return
    parent = spec.answers.rpartition(".")[0]
    context = row.get("context", "")
    if not isinstance(starts, list) or len(starts) != len(answers):
        raise bad(f"{parent}.answer_start", f"has {starts!r}, expected one start per answer")
    for text, start in zip(answers, starts):
        if not isinstance(start, int) or context[start:start + len(text)] != text:
            raise bad(f"{parent}.answer_start", f"{start!r} does not point at answer {text[:40]!r} in the context; "
                                                "fix the offset (character index into context)")
