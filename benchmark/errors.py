"""Errors the user can fix. The CLI prints them as one line and exits 2, without a traceback."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class UserError(Exception):
    """A problem with the user's input (flags, files, data), never a bug in the harness."""


class TaskError(UserError):
    """A task plugin file is malformed."""


class DataError(UserError):
    """A data split is missing, unreadable or does not match its task's schema."""


class HubUnavailable(DataError):
    """The Hugging Face Hub cannot be reached and nothing usable is cached."""


class ModelError(UserError):
    """A model name or path cannot be resolved to an adapter."""


def choices_hint(value: str, valid: Iterable[str]) -> str:
    """'valid: a, b, c' plus a close match, for messages about an unknown name."""
    valid = sorted(set(valid))
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"valid: {', '.join(valid) or '(none)'}{hint}"


def require_folder(path: Path, flag: str, fix: str) -> None:
    """A path given for a folder that is a file: one line naming the flag, before anything reads or writes it."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a folder; {fix}")
