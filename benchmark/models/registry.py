"""Model name or path -> adapter class, resolved lazily so `bench --help` imports no torch.

Adapters register as 'module:Class' strings; installed packages add more through the
`benchmark.adapters` entry-point group. Duplicate names are refused; a miss lists the valid names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, choices_hint
from .base import Adapter

ENTRY_POINT_GROUP = "benchmark.adapters"


@dataclass(frozen=True)
class AdapterEntry:
    name: str
    target: str            # 'module:Class'
    description: str
    provider: str = "builtin"

    def load(self) -> type[Adapter]:
        module, _, attr = self.target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise ModelError(f"adapter '{self.name}' ({self.target}) is not a benchmark Adapter subclass")
        return cls


BUILTIN_ADAPTERS = (
    AdapterEntry("majority", "benchmark.models.majority:MajorityAdapter",
                 "majority class of the train split (classification only): the floor of every GLUE table"),
)

# Well-known model names and the adapter that runs them.
KNOWN_MODELS = {
    "majority": "majority",
}


def adapters(entry_points: bool = True) -> dict[str, AdapterEntry]:
    found: dict[str, AdapterEntry] = {}
    entries = list(BUILTIN_ADAPTERS)
    if entry_points:
        from importlib.metadata import entry_points as eps

        for ep in eps(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            entries.append(AdapterEntry(ep.name, ep.value, "plugin adapter",
                                        f"{dist.name}=={dist.version}" if dist else ep.value))
    for entry in entries:
        if entry.name in found:
            raise ModelError(f"adapter '{entry.name}' is registered twice ({found[entry.name].provider} and "
                             f"{entry.provider}); uninstall one")
        found[entry.name] = entry
    return found


def resolve(model: str) -> AdapterEntry:
    """The adapter for a model name (known name or adapter name) or a local checkpoint path."""
    table = adapters()
    if model in KNOWN_MODELS:
        return table[KNOWN_MODELS[model]]
    if model in table:
        return table[model]
    if Path(model).expanduser().exists():
        raise ModelError(f"{model}: no adapter can load this path yet; known models: {', '.join(sorted(KNOWN_MODELS))}")
    raise ModelError(f"unknown model '{model}'; {choices_hint(model, set(KNOWN_MODELS) | set(table))}")
