"""The published record: `leaderboards/` holds Result files (`leaderboards/results/`) and the tables,
page and plots rendered from them alone.

A user's own runs render into their results folder; only `bench publish` changes the record. It adds
or replaces rows by (model, mode, task, split), never drops another, refuses sample-suite and
random-weight results, and renders everything in memory before it writes a single file, so every
error leaves the record as it was.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from .errors import UserError, require_folder
from .results import (Result, holds_more, iter_results, load, locked, result_path, row_mode, save, seed_of,
                      train_cap)
from .storage import write_files
from .tasks import TaskSpec

RECORD_DIR = "results"             # leaderboards/results/<model>.<mode>/<task>-<split>.json
NOTES_FILE = "glue-paper.notes"    # lines of glue-paper.md's "how these numbers were made" (hand-written)
COMPARE_FILE = "glue-paper.md"
GENERATOR = "`bench publish` (the Result records in `results/`)"
README_FILE = "README.md"          # says what the folder is; also how a user's render recognises the record
RECORD_TITLE = "# The published leaderboards"
# Root-mean-square difference (0-255 channel levels, matplotlib's image-test measure) under which a re-rendered
# plot counts as the published one. numpy picks SIMD kernels by CPU (AVX2 or AVX-512), which moves an
# anti-aliased arrow pixel by one level (RMS 0.002 on glue.png); one SST-2 score 0.05 higher gives RMS 1.1.
PNG_RMS_TOLERANCE = 0.05
_PNG_URI = re.compile(rb"data:image/png;base64,([A-Za-z0-9+/=]+)")


def record_key(r: Result) -> tuple[str, str, str, str, int | None, int]:
    """What one published cell (or learning-curve point, or one seed of either) is: a later result with the
    same key replaces it."""
    return (r.model, row_mode(r), r.task, r.split, train_cap(r), seed_of(r) or 0)


def record_path(root: Path, r: Result) -> Path:
    return result_path(root / RECORD_DIR, r.model, r.task, r.split, single_split=False, mode=r.mode or None,
                       train_cap=train_cap(r), variant=r.variant, seed=seed_of(r) or 0)


def refusal(r: Result) -> str | None:
    """Why a result may not enter the published record, or None."""
    if r.data.source == "sample":
        return "was made on the built-in sample suite (synthetic data)"
    if r.weights == "random":
        return "was made with random weights (architecture only)"
    broken = sorted(k for k, v in r.metrics.items() if not isinstance(v, (int, float)) or not math.isfinite(v))
    if r.status == "ok" and broken:
        return f"has no finite value for {', '.join(broken)}"
    return None


def builtin_tasks() -> dict[str, TaskSpec]:
    """The task specs the record renders with: built-in only, so the bytes depend on the record alone."""
    from .tasks import discover

    return dict(discover([], entry_points=False).tasks)


def read_notes(root: Path, name: str = NOTES_FILE) -> list[str]:
    """The hand-written lines of a table's "how these numbers were made" (one note per line)."""
    path = root / name
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def render_record(results: Iterable[Result], notes: Iterable[str] = (),
                  tasks: Mapping[str, TaskSpec] | None = None, transfer_notes: Iterable[str] = (),
                  qa_notes: Iterable[str] = ()) -> dict[str, bytes]:
    """File name -> bytes of every published table, plot and the page, from results alone."""
    from . import compare, leaderboard, qa_modes, transfer

    results = list(results)
    tasks = builtin_tasks() if tasks is None else tasks
    files = leaderboard.render_files(results, tasks=tasks, page=True, generator=GENERATOR)
    if compare.rows_from(results):
        files[COMPARE_FILE] = compare.markdown(results, notes=notes).encode("utf-8")
    files.update(transfer.render_files(results, tasks, transfer_notes))
    files.update(qa_modes.render_files(results, qa_notes))
    files[README_FILE] = _readme(results, sorted(files)).encode("utf-8")
    return files


def _readme(results: list[Result], names: list[str]) -> str:
    models = sorted({(r.model, row_mode(r)) for r in results})
    lines = [RECORD_TITLE, "",
             f"Rendered by {GENERATOR}; do not edit by hand. {len(results)} Result record(s) of "
             f"{len(models)} model/mode row(s) stand behind every number here, one JSON file per "
             "(model, mode, task, split, train size and seed) under `results/`, with its metrics, 95% CIs, efficiency and provenance.", "",
             "- Add or replace rows with your real-data results: `bench publish --results-dir results` "
             "(sample-suite and random-weight results are refused; no other row is ever dropped).",
             "- Re-make every file below from the records alone: `bench publish --render`; "
             "check that they agree: `bench publish --check`.",
             f"- `{NOTES_FILE}`, `transfer.notes` and `qa-modes.notes` hold the hand-written 'how these numbers were "
             f"made' lines of `{COMPARE_FILE}`, `transfer.md` and `qa-modes.md`.",
             "- `perf.md` is not rendered from these records: `make perf` writes it, with its own conditions.", "",
             "Files: " + ", ".join(f"[`{n}`]({n})" for n in names), ""]
    return "\n".join(lines)


def read_record(root: Path) -> list[tuple[Path, Result]]:
    """The record's files by absolute path, as `record_path` names them: a relative root read one way and
    written the other made a replacing file look like one to delete."""
    folder = (root / RECORD_DIR).resolve()
    return [(path, load(path)) for path in sorted(folder.glob("*/*.json"))] if folder.is_dir() else []


@dataclass
class Plan:
    """What a publish will do; built completely (and rendered) before anything is written."""
    add: list[tuple[Path, Result]] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)     # record files whose row a new result replaces
    replacing: int = 0                                     # how many of `add` replace a published row
    files: dict[str, bytes] = field(default_factory=dict)  # rendered outputs


def plan(root: Path, new: Iterable[Result], tasks: Mapping[str, TaskSpec] | None = None,
         force: bool = False) -> Plan:
    new = list(new)
    for r in new:
        why = refusal(r)
        if why:
            raise UserError(f"result for model {r.model!r}, task {r.task!r} {why}: only real-data results are "
                            "published; pass --model/--tasks to choose others, or re-run on real data")
    keys = [record_key(r) for r in new]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        size = f", train size {dup[4]}" if dup[4] else ""
        raise UserError(f"two results for model {dup[0]!r}, mode {dup[1]!r}, task {dup[2]!r}, split {dup[3]!r}{size}, "
                        f"seed {dup[5]}; keep one of them in the results folder and publish again")
    existing = read_record(root)
    _refuse_misnamed(root, existing, new)
    if not force:
        _refuse_smaller(existing, new)
    incoming = set(keys)
    kept = [r for _p, r in existing if record_key(r) not in incoming]
    out = Plan(add=[(record_path(root, r), r) for r in new],
               replaced=[p for p, r in existing if record_key(r) in incoming],
               replacing=len(incoming & {record_key(r) for _p, r in existing}))
    out.files = _render(root, kept + new, tasks)
    return out


def _refuse_misnamed(root: Path, existing: list[tuple[Path, Result]], new: list[Result]) -> None:
    """A record written before each seed had a file of its own can hold seed 3 under seed 0's name: a new
    seed-0 result must not overwrite it as if it were the same row."""
    held = dict(existing)
    for r in new:
        path = record_path(root, r)
        old = held.get(path)
        if old is not None and record_key(old) != record_key(r):
            right = record_path(root, old)
            raise UserError(f"{path} holds seed {seed_of(old)} of this row, under the name of seed {seed_of(r) or 0}; "
                            f"rename it to {right.name} (its seed's name) and publish again")


def _refuse_smaller(existing: list[tuple[Path, Result]], new: list[Result]) -> None:
    """A row is not replaced by a result evaluated on fewer examples (a --limit smoke test) unless forced
    (both sides are real data: `refusal` keeps the sample suite out of the record)."""
    published = {record_key(r): r for _p, r in existing}
    for r in new:
        old = published.get(record_key(r))
        if old is not None and holds_more(old.data, r.data):
            raise UserError(f"result for model {r.model!r}, task {r.task!r}, split {r.split!r} was evaluated on "
                            f"{r.data.num_examples:,} examples and the published one on {old.data.num_examples:,}; "
                            "publish a run over the whole split, or pass --force to replace it")


@dataclass
class Report:
    added: int
    replaced: int
    written: list[Path]


def publish(root: Path, new: Iterable[Result], tasks: Mapping[str, TaskSpec] | None = None,
            force: bool = False) -> Report:
    """Add `new` to the record at `root` and re-render; under the leaderboard lock, all or nothing on error."""
    require_root(root)
    with locked(root / ".leaderboard.lock"):
        p = plan(root, new, tasks, force)
        targets = {path for path, _r in p.add}
        for path, r in p.add:
            save(r, path)
        for path in p.replaced:
            if path not in targets:
                path.unlink(missing_ok=True)
        written = write_files(root, p.files)
    return Report(added=len(p.add) - p.replacing, replaced=p.replacing,
                  written=[path for path, _r in p.add] + written)


def require_root(root: Path) -> None:
    require_folder(root, "--to", "pass the published record's folder")


def require_record(root: Path) -> None:
    """--check and --render read a record that is there: a mistyped --to is not an empty record."""
    if not (is_record(root) or (root / RECORD_DIR).is_dir()):
        raise UserError(f"--to {root}: not a published record (no {README_FILE} of one and no {RECORD_DIR}/ "
                        "folder); pass the record's folder (default leaderboards)")


def rerender(root: Path, tasks: Mapping[str, TaskSpec] | None = None) -> list[Path]:
    """Re-make every table, plot and the page from the record alone."""
    require_record(root)
    with locked(root / ".leaderboard.lock"):
        return write_files(root, _render_current(root, tasks))


def check(root: Path, tasks: Mapping[str, TaskSpec] | None = None) -> list[str]:
    """The published files that differ from what their record renders to (missing ones included), then
    those no record renders (see `check_report`)."""
    differ, unrendered = check_report(root, tasks)
    return differ + unrendered


HAND_WRITTEN = frozenset({"perf.md"})  # besides the *.notes: written by `make perf`, not rendered from records


def check_report(root: Path, tasks: Mapping[str, TaskSpec] | None = None) -> tuple[list[str], list[str]]:
    """(files that differ from what their record renders to, files no record renders: a table whose results
    were removed, or one added by hand, whose numbers have no Result behind them), from one render."""
    require_record(root)
    files = _render_current(root, tasks)
    differ = [name for name, content in files.items()
              if not (root / name).exists() or not same_render(name, (root / name).read_bytes(), content)]
    unrendered = sorted(p.name for p in root.iterdir() if p.is_file() and p.name not in files
                        and p.name not in HAND_WRITTEN and not p.name.endswith(".notes")
                        and not p.name.startswith("."))
    return differ, unrendered


def same_render(name: str, published: bytes, rendered: bytes) -> bool:
    """Whether a published file is what its record renders to: the same bytes, or, for a plot and a page
    that embeds plots, the same text and images that differ only by CPU-dependent rounding."""
    if published == rendered:
        return True
    if name.endswith(".png"):
        return same_image(published, rendered)
    if name.endswith(".html"):
        old, new = _PNG_URI.split(published), _PNG_URI.split(rendered)
        # split keeps the captured base64 at the odd positions: text at the even ones must match exactly
        if len(old) != len(new) or old[0::2] != new[0::2]:
            return False
        try:
            return all(same_image(base64.b64decode(a), base64.b64decode(b)) for a, b in zip(old[1::2], new[1::2]))
        except ValueError:  # a hand-edited page with broken base64
            return False
    return False


def same_image(a: bytes, b: bytes, tolerance: float = PNG_RMS_TOLERANCE) -> bool:
    """Same size and an RMS pixel difference within `tolerance` (matplotlib.testing's measure)."""
    import io

    import numpy as np
    from matplotlib.testing.compare import calculate_rms
    from PIL import Image

    try:
        x, y = (np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(np.int16) for data in (a, b))
    except OSError:  # not a readable PNG: only identical bytes would have matched
        return False
    return x.shape == y.shape and calculate_rms(x, y) <= tolerance


def _render_current(root: Path, tasks: Mapping[str, TaskSpec] | None) -> dict[str, bytes]:
    """What the record at `root` renders to, as it stands."""
    return _render(root, [r for _p, r in read_record(root)], tasks)


def _render(root: Path, results: list[Result], tasks: Mapping[str, TaskSpec] | None) -> dict[str, bytes]:
    from .qa_modes import NOTES_FILE as QA_NOTES
    from .transfer import NOTES_FILE as TRANSFER_NOTES

    return render_record(results, read_notes(root), tasks, read_notes(root, TRANSFER_NOTES), read_notes(root, QA_NOTES))


def select(results_dir: Path, model: str | None = None, tasks: Iterable[str] = ()) -> list[Result]:
    """The user's results to publish; a corrupt file is an error (iter_results), never skipped."""
    if not results_dir.is_dir():
        raise UserError(f"--results-dir {results_dir}: no such folder; run 'bench run' first or point at your "
                        "results folder")
    wanted = set(tasks)
    chosen = [r for r in iter_results(results_dir)
              if (model is None or r.model == model) and (not wanted or r.task in wanted)]
    if not chosen:
        what = " for model " + repr(model) if model else ""
        raise UserError(f"no results{what} under {results_dir}; run 'bench run' first (or check --model/--tasks)")
    return chosen


def is_record(folder: Path) -> bool:
    readme = folder / README_FILE
    try:
        return readme.is_file() and readme.read_text(encoding="utf-8").startswith(RECORD_TITLE)
    except (OSError, UnicodeDecodeError):
        return False


def enclosing_record(path: Path) -> Path | None:
    """The published record that `path` is, or lies inside, if any."""
    here = path.absolute()
    return next((folder for folder in (here, *here.parents) if is_record(folder)), None)


def guard_out(out: Path) -> None:
    """A user's render must not land on a published record (it would drop every row not in the user's folder)."""
    require_folder(out, "--out", "choose a folder for the tables")
    record = enclosing_record(out)
    if record is not None and record != out.absolute():
        raise UserError(f"--out {out} is inside the published record {record}; render your own tables elsewhere "
                        "(the default is <results-dir>/leaderboards)")
    if is_record(out):
        raise UserError(f"--out {out} is a published record (see {out / README_FILE}); render your own tables "
                        f"elsewhere (the default is <results-dir>/leaderboards) and add results to it with "
                        f"'bench publish --to {out}'")
