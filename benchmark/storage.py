"""Atomic files and folders, and the one stable hash behind every key.

A reader (another process, a resumed run, another rank) sees the old content or the new, never a
half-written one: everything is written beside its final name and renamed over it. Results, tables,
trained-weight caches and the biLM all go through these two writers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Mapping


def stable_hash(parts: Any, length: int | None = None) -> str:
    """sha256 of `parts` as canonical JSON (sorted keys; anything else by its str()), cut to `length`."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:length] if length else digest


def write_atomic(path: Path, content: str | bytes | Callable[[IO[bytes]], None]) -> None:
    """Write text, bytes, or whatever `content(fh)` writes, via a temporary file in the same folder,
    fsync, then rename: readers see old or new, never half. Files follow the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_files(folder: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write each name -> content under `folder` atomically, skipping a file whose bytes are already there
    (a re-render leaves unchanged files untouched); every path is returned, in `files`' order."""
    paths = []
    for name, content in files.items():
        path = Path(folder) / name
        data = content.encode("utf-8") if isinstance(content, str) else content
        if not path.is_file() or path.read_bytes() != data:
            write_atomic(path, data)
        paths.append(path)
    return paths


def write_folder_atomic(folder: Path, fill: Callable[[Path], None]) -> None:
    """`fill(tmp)` writes a whole folder into a temporary sibling, which then replaces `folder`."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    old = folder.parent / f".{folder.name}.old.{os.getpid()}"
    try:
        fill(tmp)
        if folder.exists():
            os.replace(folder, old)  # set aside, not deleted, until the new folder is in place
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
