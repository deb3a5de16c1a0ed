"""tests/perf/gpu.sh, the one script a lent GPU machine runs: its plumbing, checked here without a GPU
or the benchmark itself. A stand-in `python3` records what the script asked of it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "perf" / "gpu.sh"
FAKE_PYTHON = """#!/bin/bash
{ echo "ARGS $*"
  if [ "$1 $2" = "-m pytest" ]; then
    echo "ENV PERF_SPLIT=$PERF_SPLIT PERF_LIMIT=$PERF_LIMIT OMP=$OMP_NUM_THREADS RAYON=$RAYON_NUM_THREADS"
    echo "ENV TOKENIZERS_PARALLELISM=$TOKENIZERS_PARALLELISM HF_HUB_OFFLINE=$HF_HUB_OFFLINE PYTHONPATH=$PYTHONPATH"
    echo "DATA $(cat ../shared/data/sst2/rows 2>/dev/null || echo none)"
    echo "| a row written by the benchmark |" >> leaderboards/perf.md
  fi
} >> "$FAKE_LOG"
[ "$1 $2" = "-m pytest" ] && exit "${FAKE_STATUS:-0}"
exit 0
"""


def _run(tmp_path: Path, *, wheels: bool, data: bool, status: int = 0, env: dict | None = None):
    repo = tmp_path / "repo"
    (repo / "tests" / "perf").mkdir(parents=True)
    (repo / "leaderboards").mkdir()
    shutil.copy(SCRIPT, repo / "tests" / "perf" / "gpu.sh")
    (repo / "leaderboards" / "perf.md").write_text("# perf\n")
    if wheels:
        (repo / ".whl").mkdir()
        (repo / ".whl" / "datasets-4.0.0-py3-none-any.whl").write_bytes(b"")
    if data:
        (repo / ".perfdata" / "sst2").mkdir(parents=True)
        (repo / ".perfdata" / "sst2" / "rows").write_text("carried sst2")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out, log = tmp_path / "out", tmp_path / "python3.log"
    run_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "OUT": str(out),
               "FAKE_LOG": str(log), "FAKE_STATUS": str(status), **(env or {})}
    proc = subprocess.run(["bash", "tests/perf/gpu.sh"], cwd=repo, env=run_env, capture_output=True, text=True,
                          timeout=60)
    return proc, log.read_text().splitlines(), out, repo


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_script_installs_carried_wheels_links_carried_data_and_returns_the_benchmarks_status(tmp_path):
    proc, log, out, repo = _run(tmp_path, wheels=True, data=True, status=3)
    assert proc.returncode == 3, proc.stderr  # a failing benchmark fails the device run
    pip = next(line for line in log if line.startswith("ARGS -m pip install"))
    assert "--no-index" in pip and "--target /tmp/site" in pip and ".whl/datasets-4.0.0-py3-none-any.whl" in pip
    pytest_args = next(line for line in log if line.startswith("ARGS -m pytest"))
    assert "tests/perf/test_perf.py" in pytest_args and "--benchmark-only" in pytest_args
    threads = os.cpu_count()
    assert f"ENV PERF_SPLIT=train PERF_LIMIT=10000 OMP={threads} RAYON={threads}" in log
    env_line = next(line for line in log if line.startswith("ENV TOKENIZERS_PARALLELISM"))
    assert "TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1" in env_line and "/tmp/site" in env_line
    assert "DATA carried sst2" in log  # the benchmark saw the carried SST-2 where it looks for the data
    assert not (tmp_path / "shared").exists()  # and the link it made for the run is gone afterwards
    assert (out / "perf.md").read_text() == (repo / "leaderboards" / "perf.md").read_text()
    assert "a row written by the benchmark" in (out / "perf.md").read_text()
    assert (out / "perf.log").exists() and (out / "gpu.txt").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_without_carried_files_the_script_installs_nothing_and_keeps_a_smaller_run(tmp_path):
    proc, log, _, _ = _run(tmp_path, wheels=False, data=False, env={"PERF_SPLIT": "validation", "PERF_LIMIT": "48"})
    assert proc.returncode == 0, proc.stderr
    assert not any(line.startswith("ARGS -m pip") for line in log)
    assert any(line.startswith("ENV PERF_SPLIT=validation PERF_LIMIT=48 ") for line in log)
    assert "DATA none" in log and not (tmp_path / "shared").exists()
