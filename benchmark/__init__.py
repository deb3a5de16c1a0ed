"""GLUE/SQuAD-style benchmark harness: task plugins, model adapters, one evaluator, leaderboards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate", "results_frame"]

if TYPE_CHECKING:
    from .api import evaluate, results_frame

_API = ("evaluate", "results_frame")


def __getattr__(name: str) -> Any:
    """`benchmark.evaluate` and `benchmark.results_frame` load `.api` on first use: `import benchmark` (and so
    `bench --help`) must not pay for the CLI parser, let alone torch or pandas."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
