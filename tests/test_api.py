"""The Python API: `benchmark.evaluate` is `bench run` (same code path, files, errors); `results_frame` tabulates."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import benchmark
from benchmark.cli import build_parser, execute_run, main
from benchmark.errors import ModelError, UserError
from benchmark.results import iter_results, load

ROOT = Path(__file__).resolve().parents[1]

# The README's notebook example, run verbatim by test_readme_example so the README stays true.
README_EXAMPLE = '''\
import benchmark

results = benchmark.evaluate(model="majority", tasks=["sst2", "qqp"], data="sample",
                             results_dir="results-demo", quiet=True)
for r in results:
    print(r.column, r.metrics)

df = benchmark.results_frame("results-demo")
print(df[["column", "model", "metric.accuracy", "metric.f1", "efficiency.latency_ms.p50"]])
'''

SAME = ("task", "task_version", "suite", "kind", "split", "column", "model", "adapter", "mode", "weights",
        "data", "metrics", "ci95", "status", "note")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, list, Path]:
    """sst2 on the sample suite, once through the API and once through `bench run`."""
    api_dir, cli_dir = tmp_path_factory.mktemp("api"), tmp_path_factory.mktemp("cli")
    results = benchmark.evaluate(model="majority", tasks=["sst2"], data="sample", results_dir=api_dir, quiet=True)
    assert main(["run", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--results-dir", str(cli_dir),
                 "--quiet"]) == 0
    return api_dir, results, cli_dir


def test_evaluate_returns_what_bench_run_writes(runs):
    api_dir, results, cli_dir = runs
    expected = list(iter_results(cli_dir))
    assert len(results) == len(expected) == 1
    for got, want in zip(results, expected):
        for name in SAME:
            assert getattr(got, name) == getattr(want, name), name
        assert got.data.fingerprint == want.data.fingerprint
        assert got.provenance["settings_key"] == want.provenance["settings_key"]  # the same resume key
    # the files on disk are the ones returned, at the same relative paths
    assert [p.relative_to(api_dir) for p in sorted(api_dir.glob("*/*.json"))] == \
           [p.relative_to(cli_dir) for p in sorted(cli_dir.glob("*/*.json"))]
    assert list(iter_results(api_dir)) == results
    # provenance records a re-runnable command, not the test runner's argv
    assert results[0].provenance["command"].startswith("bench run --model=majority --tasks=sst2 --data=sample")


def test_evaluate_again_returns_the_current_results_unchanged(runs):
    api_dir, results, _ = runs
    again = benchmark.evaluate(model="majority", tasks="sst2", data="sample", results_dir=api_dir, quiet=True)
    assert again == results  # same created timestamp: reused (already current), not rewritten


def test_evaluate_returns_unsupported_results_too_in_path_order(tmp_path):
    results = benchmark.evaluate(model="majority", tasks="squad, sst2", data="sample", results_dir=tmp_path,
                                 quiet=True, limit=20)
    assert [(r.task, r.status) for r in results] == [("squad", "unsupported"), ("sst2", "ok")]
    assert all(r.data.num_examples == 20 for r in results)


def test_unknown_option_is_a_user_error_naming_the_valid_ones(tmp_path):
    with pytest.raises(UserError) as err:
        benchmark.evaluate(model="majority", tasks=["sst2"], data="sample", results_dir=tmp_path, limt=5)
    message = str(err.value)
    assert "'limt'" in message and "did you mean 'limit'" in message
    for valid in ("epochs", "max_train_examples", "weights", "batch_size", "seed", "force", "quiet"):
        assert valid in message
    assert "\n" not in message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("option, words", [
    ({"limit": 0}, "option limit: 0 must be at least 1"),
    ({"limit": 2.5}, "option limit: '2.5' is not a whole number"),
    ({"max_train_examples": -3}, "option max_train_examples: -3 must be at least 1"),
    ({"weights": "randm"}, "option weights: invalid choice: 'randm'"),
    ({"dtype": "int8"}, "option dtype: invalid choice"),
    ({"seed": "x"}, "option seed: .x. is not a whole number"),
    ({"seed": -1}, "option seed: -1 must be at least 0"),
    ({"force": "yes"}, "option force: expected True or False"),
])
def test_bad_option_values_are_user_errors_not_system_exit(tmp_path, option, words):
    with pytest.raises(UserError, match=words):
        benchmark.evaluate(model="majority", tasks=["sst2"], data="sample", results_dir=tmp_path, **option)


def test_errors_are_the_cli_ones(tmp_path, capsys):
    with pytest.raises(ModelError, match="unknown model 'no such model'"):
        benchmark.evaluate(model="no such model", tasks=["sst2"], data="sample", results_dir=tmp_path)
    args = build_parser().parse_args(["run", "--model", "no such model", "--tasks", "sst2", "--data", "sample",
                                      "--results-dir", str(tmp_path)])
    with pytest.raises(ModelError):  # the CLI's own path raises the same type before printing it
        execute_run(args)
    assert main(["run", "--model", "no such model", "--data", "sample", "--results-dir", str(tmp_path)]) == 2
    with pytest.raises(UserError, match="unknown task 'sst3'"):
        benchmark.evaluate(model="majority", tasks=["sst3"], data="sample", results_dir=tmp_path)
    with pytest.raises(UserError, match="unknown mode 'finetun'"):
        benchmark.evaluate(model="majority", tasks=["sst2"], data="sample", mode="finetun", results_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_results_frame_one_row_per_result_with_flat_columns(runs):
    import pandas as pd

    api_dir, results, _ = runs
    df = benchmark.results_frame(api_dir)
    assert len(df) == len(results) == 1
    (r,) = results
    row = df.iloc[0]
    for name in ("task", "task_version", "split", "column", "suite", "kind", "model", "adapter", "mode", "variant",
                 "weights", "status", "note"):
        assert row[name] == getattr(r, name), name
    assert (row["data_source"], row["data_location"], row["data_fingerprint"], row["num_examples"],
            row["data_subset"], row["train_examples"]) == \
           (r.data.source, r.data.location, r.data.fingerprint, r.data.num_examples, r.data.subset,
            r.provenance["train_data"]["used_examples"])
    assert row["metric.accuracy"] == r.metrics["accuracy"]
    assert [row["ci95.accuracy.lo"], row["ci95.accuracy.hi"]] == r.ci95["accuracy"]
    assert row["efficiency.latency_ms.p50"] == r.efficiency.latency_ms["p50"]
    assert row["efficiency.latency_ms.p95"] == r.efficiency.latency_ms["p95"]
    assert row["efficiency.throughput_per_s"] == r.efficiency.throughput_per_s
    assert row["efficiency.num_parameters"] == r.efficiency.num_parameters
    assert row["efficiency.device"] == r.efficiency.device
    for name in ("model_revision", "seed", "git_commit", "code_sha256", "created", "command", "settings_key"):
        want = r.provenance[name]
        assert pd.isna(row[f"provenance.{name}"]) if want is None else row[f"provenance.{name}"] == want, name
    assert row["provenance.device"] == r.provenance["hardware"]["device"]
    assert "efficiency.latency_ms" not in df.columns  # flattened, never a dict cell
    assert "metric.f1" not in df.columns  # sst2 has accuracy only
    assert r.efficiency.train_seconds is None and pd.isna(row["efficiency.train_seconds"])


def test_results_frame_mixes_tasks_and_fills_missing_values(tmp_path):
    benchmark.evaluate(model="majority", tasks=["qqp", "squad"], data="sample", results_dir=tmp_path, quiet=True,
                       limit=30)
    df = benchmark.results_frame(tmp_path).set_index("task")
    assert list(df.index) == ["qqp", "squad"]
    assert {"metric.accuracy", "metric.f1", "ci95.f1.lo", "ci95.f1.hi"} <= set(df.columns)
    assert df.loc["qqp", "metric.f1"] == load(next(tmp_path.glob("*/qqp.json"))).metrics["f1"]
    assert math.isnan(df.loc["squad", "metric.accuracy"]) and df.loc["squad", "status"] == "unsupported"
    # one file, or one model's folder, works too
    (path,) = tmp_path.glob("*/qqp.json")
    assert list(benchmark.results_frame(path)["task"]) == ["qqp"]
    assert list(benchmark.results_frame(path.parent)["task"]) == ["qqp", "squad"]


def test_results_frame_errors(tmp_path, runs):
    with pytest.raises(UserError, match="no such file or folder") as err:
        benchmark.results_frame(tmp_path / "nope")
    assert "\n" not in str(err.value)
    assert list(benchmark.results_frame(tmp_path).columns)[:3] == ["task", "split", "column"]  # empty: no rows
    api_dir, _, _ = runs
    broken = tmp_path / "copy"
    for path in api_dir.glob("*/*.json"):
        (broken / path.parent.name).mkdir(parents=True, exist_ok=True)
        (broken / path.parent.name / path.name).write_text(path.read_text())
    (broken / "majority" / "zzz.json").write_text('{"task": "sst2", ')
    with pytest.raises(UserError, match="zzz.json: not a valid result file"):
        benchmark.results_frame(broken)
    (broken / "majority" / "zzz.json").write_text(json.dumps({"schema": 1}))
    with pytest.raises(UserError, match="zzz.json: not a valid result file"):
        benchmark.results_frame(broken)


def test_import_benchmark_stays_light():
    code = ("import sys, benchmark; from benchmark import evaluate, results_frame; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_package_exports():
    assert benchmark.evaluate.__module__ == "benchmark.api"
    assert {"evaluate", "results_frame"} <= set(dir(benchmark)) and "evaluate" in benchmark.__all__
    with pytest.raises(AttributeError):
        benchmark.no_such_thing  # noqa: B018


def test_readme_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert README_EXAMPLE in readme, "the README's Python example changed: update README_EXAMPLE to match"
    exec(compile(README_EXAMPLE, "README_EXAMPLE", "exec"), {})
    out = capsys.readouterr().out
    assert "SST-2 {'accuracy':" in out and "QQP {'accuracy':" in out and "metric.f1" in out
    assert len(list((tmp_path / "results-demo").glob("*/*.json"))) == 2


def test_ctrl_c_stops_evaluate_and_bench_run_says_where_results_are(tmp_path, monkeypatch, capsys):
    from benchmark import evaluator
    from benchmark.cli import RunInterrupted

    real_run = evaluator.run_seeds

    def run_then_interrupt(runs, tasks, outcome, labels=None):
        real_run(runs, tasks[:1], outcome, labels)
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluator, "run_seeds", run_then_interrupt)
    with pytest.raises(KeyboardInterrupt) as stop:  # a notebook cell stops as usual
        benchmark.evaluate(model="majority", tasks=["sst2", "qqp"], data="sample", results_dir=tmp_path, quiet=True)
    assert isinstance(stop.value, RunInterrupted) and [p.name for p in stop.value.outcome.written] == ["sst2.json"]
    capsys.readouterr()
    assert main(["run", "--model", "majority", "--tasks", "sst2,qqp", "--data", "sample", "--force", "--quiet",
                 "--results-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err == (f"\ninterrupted: 1 result(s) from this run are complete in {tmp_path}; re-run the same command "
                   "to finish the rest\n")
