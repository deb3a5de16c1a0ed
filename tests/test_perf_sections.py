"""leaderboards/perf.md's sections: a `make perf` run replaces only its own benchmark's section for its own
machine, so figures measured on another CPU or GPU survive a run here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "perf"))

import perf_sections  # noqa: E402

KEY = "Backends, CPU, 2 threads"
XEON = f"## {KEY}: Intel(R) Xeon(R) Processor, 2 cores, torch 2.13.0+cpu\n\n| old Xeon row |"
EPYC = f"## {KEY}: AMD EPYC, 2 cores, torch 2.13.0+cpu\n\n| old EPYC row |"
OTHERS = ["## CPU, 2 threads: AMD EPYC, 2 cores\n\n| evaluation row |",
          "## CUDA: NVIDIA H200\n\n| cuda row |",
          "## Automatic batch budget (`AUTO_BATCH_TOKENS`)\n\nwhy 2,048"]


def _file(*parts: str) -> str:
    return perf_sections.HEAD + "\n\n".join(parts) + "\n"


def _headers(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("## ")]


def test_a_run_replaces_its_own_section_for_its_own_machine_only():
    old = _file(OTHERS[0], XEON, EPYC, *OTHERS[1:])
    new = f"## {KEY}: AMD EPYC, 2 cores, torch 2.13.0+cpu\n\n| new EPYC row |"
    out = perf_sections.merge(old, new, KEY, "AMD EPYC")
    assert "| new EPYC row |" in out and "| old EPYC row |" not in out
    assert "| old Xeon row |" in out  # another CPU's figures are kept
    assert all(part in out for part in OTHERS)  # and every other benchmark's section
    assert out == _file(OTHERS[0], new, XEON, *OTHERS[1:])  # kinds in order, then by header


def test_a_first_run_on_a_machine_adds_its_section_and_a_rerun_is_stable():
    old = _file(OTHERS[0], XEON)
    out = perf_sections.merge(old, EPYC, KEY, "AMD EPYC")
    assert _headers(out) == _headers(_file(OTHERS[0], EPYC, XEON))
    assert perf_sections.merge(out, EPYC, KEY, "AMD EPYC") == out


def test_a_machine_whose_name_extends_another_is_its_own_machine():
    h200 = "## CUDA: NVIDIA H200\n\n| H200 |"
    nvl = "## CUDA: NVIDIA H200 NVL\n\n| NVL |"
    out = perf_sections.merge(_file(h200), nvl, "CUDA", "NVIDIA H200 NVL")
    assert "| H200 |" in out and "| NVL |" in out
    out = perf_sections.merge(out, "## CUDA: NVIDIA H200\n\n| H200 again |", "CUDA", "NVIDIA H200")
    assert "| H200 |" not in out and "| NVL |" in out and "| H200 again |" in out


def test_a_missing_file_starts_with_the_head():
    assert perf_sections.merge(None, EPYC, KEY, "AMD EPYC") == perf_sections.HEAD + EPYC + "\n"


def test_two_cpus_of_one_name_with_other_matrix_instructions_are_two_machines():
    avx2 = f"## {KEY}: AMD EPYC (AVX2 without VNNI), 2 cores\n\n| AVX2 |"
    vnni = f"## {KEY}: AMD EPYC (AVX-512 VNNI), 2 cores\n\n| VNNI |"
    out = perf_sections.merge(_file(avx2), vnni, KEY, "AMD EPYC (AVX-512 VNNI)")
    assert "| AVX2 |" in out and "| VNNI |" in out


def _backend_row(seconds: float, rate: float) -> dict:
    """A measured backend row: 100 sentences, 2 TFLOP of work, its best round timed after a `rate` sample."""
    best = {"rate": rate, "seconds": seconds, "latency": {"p50": 10.0, "p95": 12.0}}
    return {"examples": 100, "tokens": 1000, "params": 1e9, "flops": 2e12, "rounds": [best], "best": best,
            "accuracy": None, "export_seconds": None, "source": "sample", "training": None}


def test_the_backend_table_judges_every_row_by_the_sections_best_rate_and_pairs_it_with_its_own(monkeypatch):
    """A row timed after a low rate sample must not look faster than the floor: the floor share uses the
    section's best rate (0.2 TFLOP/s here: 10 s for the 2 TFLOP), the paired share the row's own sample."""
    import test_backend_perf as backends

    written: list[str] = []
    monkeypatch.setattr(backends, "_write_section", lambda section, key=None: written.append(section))
    for table in ("GEMMS", "FUSIONS_MEASURED", "PLANS_MEASURED"):
        monkeypatch.setattr(backends, table, {})
    # a profiled pass of the same work, its rate sampled low: 10 s, 2 s of it outside the products
    monkeypatch.setattr(backends, "PROFILED", {"p": {"none": {"ops": {"MatMul": 8.0, "Add": 2.0}, "seconds": 10.0,
                                                               "flops": 2e12, "rate": 0.1}}})
    monkeypatch.setattr(backends, "MEASURED", {"m": {"PyTorch eager": _backend_row(20.0, 0.2),
                                                      "ONNX Runtime fp32": _backend_row(10.0, 0.1)}})
    backends.write_backend_table()
    rows = [line for line in written[0].splitlines() if line.startswith("| m |")]
    # ex/s, floor share, paired share, p50, p95, p50 ÷ a sentence's FLOP time (100 ms), accuracy, × eager
    assert rows == ["| m | PyTorch eager | 5.0 | 50% | 50% | 10.00 | 12.00 | 0.10 | — | 1.00 |",
                    "| m | ONNX Runtime fp32 | 10.0 | 100% | 200% | 10.00 | 12.00 | 0.10 | — | 2.00 |"]
    assert "best of the section 200.0 GFLOP/s, lowest 100.0" in written[0]
    # the profile's shares use the best rate too: 10 s of floor in 10 s, and in the 8 s of products
    assert "| p | none | MatMul 80.0%, Add 20.0%, other 0.0% | 80.0% | 100% | 125% |" in written[0].splitlines()
