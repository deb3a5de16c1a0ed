"""What a Result records about where its number came from: packages, hardware, the harness's commit.

Read from the running process and the files beside it (no subprocess), so a result can be
reproduced by someone who has only the JSON.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tasks import TaskSpec

# The widest matrix instructions, best first: int8 products run faster than fp32 only with VNNI or AMX,
# so an int8 row's speed means little without this.
MATRIX_ISA = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
              ("avx512f", "AVX-512 without VNNI"), ("avx2", "AVX2 without VNNI"))
PACKAGES = ("nlp-benchmark-harness", "torch", "transformers", "datasets", "tokenizers", "numpy", "scipy",
            "scikit-learn", "accelerate", "huggingface-hub", "safetensors", "onnx", "onnxruntime")


def collect(task: "TaskSpec", *, settings: dict[str, Any], key: str, revision: str | None, device: str,
            seed: int, world_size: int, command: str, code: tuple[str | None, str]) -> dict[str, Any]:
    """The `provenance` block of a Result. `code`: (git commit, source hash) as the run started (`code_identity`),
    not as this result lands: a run can last while its checkout is edited."""
    commit, sha = code
    return {
        "model_revision": revision,
        "task_source": task.source, "task_sha256": task.sha256, "task_provider": task.provider,
        "packages": package_versions(), "python": platform.python_version(), "platform": platform.platform(),
        "hardware": hardware(device), "seed": seed, "settings": settings, "settings_key": key,
        "world_size": world_size, "git_commit": commit, "code_sha256": sha,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
    }


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def hardware(device: str) -> dict[str, Any]:
    import sys

    info: dict[str, Any] = {"device": device, "cpu": cpu_name(), "cpu_count": os.cpu_count()}
    if isa := matrix_isa(cpu_flags()):
        info["cpu_isa"] = isa
    if "torch" in sys.modules:  # the thread count moves timings and the last bits of trained weights
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The first CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo("flags") or "").split())


def _cpuinfo(key: str) -> str | None:
    """The first CPU's `key` line of /proc/cpuinfo, None where there is no such file or line."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def matrix_isa(flags: set[str]) -> str | None:
    """The best of MATRIX_ISA among `flags`; None for a CPU with none of them (or no flags known)."""
    return next((name for flag, name in MATRIX_ISA if flag in flags), None)


def code_identity() -> tuple[str | None, str]:
    """(git commit, source hash) of the harness now: taken when a run starts, recorded in its every Result."""
    return git_commit(), code_sha256()


def code_sha256() -> str:
    """sha256 (16 hex) of the harness's own source files as they ran: a checkout with uncommitted edits,
    or an installed copy without .git, still says exactly which code made a number."""
    import hashlib

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".json") and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_commit() -> str | None:
    """The harness's own commit, when it runs from a checkout (read from .git, no subprocess)."""
    root = Path(__file__).resolve().parent.parent / ".git"
    try:
        head = (root / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = root / head[5:]
            if ref.exists():
                return ref.read_text().strip()
            for line in (root / "packed-refs").read_text().splitlines():
                if line.endswith(head[5:]):
                    return line.split()[0]
            return None
        return head
    except OSError:
        return None
