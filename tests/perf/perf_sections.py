"""leaderboards/perf.md is one file of sections, each written by its own `make perf` benchmark on one
machine. A section is replaced only by a run of the same benchmark on the same machine (CPU model or GPU
name), so a run elsewhere adds its own section instead of overwriting figures it cannot reproduce."""

from __future__ import annotations

HEAD = ("# Evaluation speed (`make perf`)\n\n"
        "Written by `make perf` (each section by its own benchmark, with its conditions), not rendered from "
        "the Result records in `results/`: these measure the harness itself, and `make perf` re-makes them "
        "(`PERF_TESTS=...` for one section).\n\n")
# a stable file: sections keep their places, kinds in this order, then by header
ORDER = ("## CPU", "## Training", "## Backends", "## Generation", "## CUDA")


def same_section(header: str, key: str, machine: str) -> bool:
    """Whether a section's header line (without '## ') is `key` measured on `machine`."""
    prefix = f"{key}: {machine}"
    return header.startswith(prefix) and header[len(prefix):len(prefix) + 1] in ("", ",")


def merge(old: str | None, section: str, key: str, machine: str) -> str:
    """`old` (perf.md's text, None for a new file) with `section` in place of the one for the same key and
    machine, under the current HEAD; every other section is kept as it is."""
    sections = (old or "").split("\n## ")[1:]
    kept = ["## " + s.strip() for s in sections if not same_section(s.splitlines()[0], key, machine)]

    def place(part: str) -> tuple[int, str]:
        kind = next((i for i, prefix in enumerate(ORDER) if part.startswith(prefix)), len(ORDER))
        return kind, part.splitlines()[0]

    return HEAD + "\n\n".join(sorted([section.strip()] + kept, key=place)) + "\n"
