"""What a Result records about the machine: the CPU's matrix instructions, which decide whether an int8
row is faster than fp32 at all."""

from __future__ import annotations

from pathlib import Path

from benchmark import provenance


def test_the_widest_matrix_instructions_are_named():
    assert provenance.matrix_isa({"avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"}) == "AMX"
    assert provenance.matrix_isa({"avx2", "avx512f", "avx512_vnni"}) == "AVX-512 VNNI"
    assert provenance.matrix_isa({"avx2", "avx_vnni"}) == "AVX-VNNI"
    assert provenance.matrix_isa({"avx2", "avx512f"}) == "AVX-512 without VNNI"
    assert provenance.matrix_isa({"sse4_2", "avx2", "fma"}) == "AVX2 without VNNI"
    assert provenance.matrix_isa({"sse4_2"}) is None
    assert provenance.matrix_isa(set()) is None


def test_hardware_records_the_isa_only_when_the_flags_are_known(monkeypatch):
    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_vnni"})
    assert provenance.hardware("cpu")["cpu_isa"] == "AVX-512 VNNI"
    monkeypatch.setattr(provenance, "cpu_flags", lambda: set())
    assert "cpu_isa" not in provenance.hardware("cpu")


def test_cpu_flags_reads_the_first_cpus_flags_line(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512_vnni\n\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    real = provenance.Path
    monkeypatch.setattr(provenance, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real(p))
    assert provenance.cpu_flags() == {"fpu", "avx2", "avx512_vnni"}
    assert provenance.cpu_name() == "Test CPU"
    cpuinfo.unlink()
    assert provenance.cpu_flags() == set()


def test_code_hash_changes_with_any_source_file_and_threads_are_recorded(monkeypatch, tmp_path):
    import shutil
    import sys

    from benchmark import provenance

    copy = tmp_path / "benchmark"
    shutil.copytree(Path(provenance.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "__file__", str(copy / "provenance.py"))
    before = provenance.code_sha256()
    assert len(before) == 16 and provenance.code_sha256() == before
    (copy / "metrics.py").write_text((copy / "metrics.py").read_text() + "\n# an uncommitted edit\n")
    assert provenance.code_sha256() != before
    import torch  # noqa: F401  (recorded only once torch is loaded, so `majority` never imports it)

    assert provenance.hardware("cpu")["torch_threads"] == sys.modules["torch"].get_num_threads()
