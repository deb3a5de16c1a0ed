"""Learning curves: `bench curve` runs one result per train size (resuming like `bench run`), the
curve is drawn from results alone, and a curve point never displaces the full-data row of a table
or of the published record."""

from __future__ import annotations

import dataclasses
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from benchmark import curve  # noqa: E402
from benchmark.cli import main  # noqa: E402
from benchmark.results import headline, iter_results, labelled_examples, load, train_cap  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

TASKS = discover(entry_points=False).tasks


def _curve(tmp_path, sizes: str, *extra: str) -> int:
    return main(["curve", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--sizes", sizes,
                 "--results-dir", str(tmp_path / "results"), "--quiet", *extra])


def test_curve_writes_one_result_per_size_and_resumes(tmp_path, capsys):
    assert _curve(tmp_path, "all,5,50") == 0
    folder = tmp_path / "results" / "majority"
    assert sorted(p.name for p in folder.glob("*.json")) == ["sst2-n5.json", "sst2-n50.json", "sst2.json"]
    results = {train_cap(r): r for r in iter_results(tmp_path / "results")}
    assert {cap: labelled_examples(r) for cap, r in results.items()} == {5: 5, 50: 50, None: 800}
    table = (tmp_path / "results" / "leaderboards" / "curve-sst2.md").read_text()
    assert "| majority | scratch |" in table and "SAMPLE SUITE" in table
    assert (tmp_path / "results" / "leaderboards" / "curve-sst2.png").read_bytes()[:4] == b"\x89PNG"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    capsys.readouterr()
    # resumed: the finished points are skipped, a new size is the only new run
    assert _curve(tmp_path, "5,50,500,all") == 0
    err = capsys.readouterr().err
    assert "done: 1 written, 0 unsupported, 3 already current" in err  # one run over every size
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json") if p.name in stamps} == stamps


@pytest.mark.parametrize("sizes, message", [("10,10", "repeats a size"), ("10,x", "not a whole number"),
                                            ("0,all", "must be at least 1"), (",", "no sizes")])
def test_bad_sizes_are_one_line_and_exit_2(tmp_path, capsys, sizes, message):
    with pytest.raises(SystemExit) as stop:
        _curve(tmp_path, sizes)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_curve_refuses_max_train_examples(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _curve(tmp_path, "5,all", "--max-train-examples", "5")
    assert stop.value.code == 2


def test_examples_to_reach_interpolates_in_log_examples():
    points = [(100, 60.0), (1000, 70.0), (10000, 90.0)]
    assert curve.examples_to_reach(points, 80.0) == pytest.approx(math.sqrt(1000 * 10000))
    assert curve.examples_to_reach(points, 50.0) == 100
    assert curve.examples_to_reach(points, 95.0) is None
    line = curve.Line("m", "frozen", points=points)
    text = curve.reach_sentence([line, curve.Line("b", "scratch", points=[(100, 50.0), (300, 55.0)])], 80.0,
                                "accuracy")
    assert "m (frozen) about 3,162" in text and "b (scratch) not within its 300 examples" in text


def _with(r, *, cap, used, score, source="local"):
    train = dict(r.provenance["train_data"], max_examples=cap, used_examples=used)
    return dataclasses.replace(r, metrics={"accuracy": score}, provenance={**r.provenance, "train_data": train},
                               data=dataclasses.replace(r.data, source=source))


@pytest.fixture
def full_result(tmp_path):
    assert _curve(tmp_path, "all") == 0
    (r,) = iter_results(tmp_path / "results")
    return _with(r, cap=None, used=800, score=90.0)


def test_lines_prefer_real_data_and_the_uncapped_run(full_result):
    points = [_with(full_result, cap=10, used=10, score=60.0), _with(full_result, cap=100, used=100, score=70.0),
              _with(full_result, cap=5000, used=800, score=11.0),  # a cap above the split: same data as 'all'
              _with(full_result, cap=10, used=10, score=1.0, source="sample"), full_result]
    (line,) = curve.lines(points, "sst2", "validation", "accuracy")
    assert line.points == [(10, 60.0), (100, 70.0), (800, 90.0)] and not line.sample


def _seeded(r, seed):
    settings = {**r.provenance["settings"], "seed": seed}
    return dataclasses.replace(r, provenance={**r.provenance, "seed": seed, "settings": settings})


def test_points_of_other_settings_or_eval_examples_are_other_lines_and_seeds_are_named(full_result):
    a = [_with(full_result, cap=10, used=10, score=60.0), _with(full_result, cap=100, used=100, score=70.0)]
    b = [_seeded(_with(full_result, cap=300, used=300, score=75.0), 3),
         _seeded(_with(full_result, cap=500, used=500, score=76.0), 3)]
    first = dataclasses.replace(full_result.data, subset="first", num_examples=50, fingerprint="f" * 64)
    c = [dataclasses.replace(_with(full_result, cap=n, used=n, score=s), data=first) for n, s in ((20, 1.0), (40, 2.0))]
    d = [_with(full_result, cap=n, used=n, score=s) for n, s in ((60, 3.0), (80, 4.0))]
    d = [dataclasses.replace(r, provenance={**r.provenance, "settings": {**r.provenance["settings"], "epochs": 3}})
         for r in d]
    found = curve.lines(a + b + c + d, "sst2", "validation", "accuracy")
    by_points = {tuple(ln.points): ln for ln in found}
    assert set(by_points) == {((10, 60.0), (100, 70.0), (300, 75.0), (500, 76.0)), ((20, 1.0), (40, 2.0)),
                              ((60, 3.0), (80, 4.0))}
    assert "the first 50 examples" in by_points[(20, 1.0), (40, 2.0)].mode
    assert "epochs 3" in by_points[(60, 3.0), (80, 4.0)].mode
    text = curve.markdown(found, TASKS["sst2"], "validation", "accuracy")
    assert "evaluated on the examples its row names." in text and "evaluated on the full split" not in text
    assert "| majority | scratch (the full split, epochs default) | 60.0 | — |" in text
    assert "at 10 and 100, seed 0; at 300 and 500, seed 3." in text  # a line of other seeds' points says so
    alone = curve.markdown(curve.lines(a, "sst2", "validation", "accuracy"), TASKS["sst2"], "validation", "accuracy")
    assert "evaluated on the full split" in alone and "the seeds behind each point" not in alone


def test_seeds_at_one_train_size_are_one_point_their_mean(full_result):
    runs = [_seeded(_with(full_result, cap=100, used=100, score=score), seed)
            for seed, score in ((0, 60.0), (1, 70.0), (2, 80.0))] + [_with(full_result, cap=300, used=300, score=85.0)]
    (line,) = curve.lines(runs, "sst2", "validation", "accuracy")
    assert line.points == [(100, 70.0), (300, 85.0)] and line.spread == {100: 10.0}
    assert line.seeds == {100: (0, 1, 2), 300: (0,)}
    text = curve.markdown([line], TASKS["sst2"], "validation", "accuracy", target=80.0)
    assert "| 70.0 ± 10.0 | 85.0 |" in text
    assert "the seeds behind each point: majority (scratch) at 100, seeds 0, 1, 2; at 300, seed 0." in text
    assert curve.figure_png([line], TASKS["sst2"], "validation", "accuracy").startswith(b"\x89PNG")


def test_a_curve_point_never_replaces_the_tables_row(full_result):
    small = _with(full_result, cap=10, used=10, score=60.0)
    assert headline([small, full_result]) == [full_result] == headline([full_result, small])


def test_publishing_a_curve_point_keeps_the_full_row(tmp_path, full_result):
    from benchmark.publish import publish, read_record

    root = tmp_path / "record"
    publish(root, [full_result], tasks=TASKS)
    publish(root, [_with(full_result, cap=10, used=10, score=60.0)], tasks=TASKS)
    names = sorted(p.name for p, _r in read_record(root))
    assert names == ["sst2-validation-n10.json", "sst2-validation.json"]
    assert load(root / "results" / "majority.scratch" / "sst2-validation.json").metrics == {"accuracy": 90.0}


def test_a_point_averages_only_seeds_made_like_its_newest_run(full_result):
    old = _seeded(_with(full_result, cap=100, used=100, score=30.0), 1)
    old = dataclasses.replace(old, provenance={**old.provenance, "model_revision": "old",
                                               "created": "2026-01-01T00:00:00+00:00"})
    new = [dataclasses.replace(r, provenance={**r.provenance, "model_revision": "new",
                                              "created": "2026-02-01T00:00:00+00:00"})
           for r in (_with(full_result, cap=100, used=100, score=70.0),
                     _seeded(_with(full_result, cap=100, used=100, score=80.0), 2))]
    (line,) = curve.lines([old, *new, _with(full_result, cap=300, used=300, score=85.0)], "sst2", "validation",
                          "accuracy")
    assert line.points[0] == (100, 75.0) and line.seeds[100] == (0, 2) and line.left_out == {100: (1,)}
    text = curve.markdown([line], TASKS["sst2"], "validation", "accuracy")
    assert "Seeds left out of a point, made otherwise than its newest run" in text and "at 100: seed 1." in text
