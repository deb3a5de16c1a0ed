"""The published record: committed Result files, tables that re-render byte for byte from them (plots
within CPU rounding),
an explicit publish step that adds or replaces rows and never drops one, and user runs that never
touch it."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import publish
from benchmark.cli import main
from benchmark.results import save
from test_leaderboard import glue_model, make, qa_model

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "leaderboards"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (the lock file aside), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".leaderboard.lock"}


def user_results(folder: Path, results) -> Path:
    for r in results:
        save(r, folder / f"{r.model}.{r.mode}" / f"{r.task}-{r.split}.json")
    return folder


def published(tmp_path: Path, results) -> Path:
    """A record folder holding `results`, rendered."""
    root = tmp_path / "board"
    publish.publish(root, results)
    return root


# ---------------------------------------------------------------------------------------
# the repository's own record
def test_committed_tables_match_their_records():
    assert list((PUBLISHED / publish.RECORD_DIR).glob("*/*.json")), "leaderboards/results/ holds no record"
    assert publish.check(PUBLISHED) == []


def test_deleted_tables_come_back_identical(tmp_path):
    copy = tmp_path / "leaderboards"
    shutil.copytree(PUBLISHED, copy)
    before = snapshot(copy)
    rendered = publish.render_record([r for _p, r in publish.read_record(copy)], publish.read_notes(copy))
    for name in rendered:
        (copy / name).unlink()
    assert main(["publish", "--render", "--to", str(copy)]) == 0
    after = snapshot(copy)
    assert after.keys() == before.keys()
    assert [name for name in before if not publish.same_render(name, before[name], after[name])] == []


def test_the_check_passes_with_numpy_kept_to_avx2():
    """numpy's AVX-512 kernels round differently from its AVX2 ones, which moved one anti-aliased pixel of
    glue.png by one level: the committed plots must still match on a CPU without AVX-512 (CI's failure)."""
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR")
    done = subprocess.run([sys.executable, "-m", "benchmark", "publish", "--check"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def _png(pixels) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_plots_match_within_rounding_and_not_beyond():
    import numpy as np

    plot = np.full((100, 160, 4), 255, dtype=np.uint8)
    plot[40:60, 20:140, :3] = 30
    nudged, moved = plot.copy(), plot.copy()
    nudged[50, 70, :3] += 1                      # one pixel one level off: CPU rounding
    moved[42:62, 20:140] = plot[40:60, 20:140]   # the bar two pixels lower: a changed score
    moved[40:42, 20:140] = 255
    assert publish.same_render("glue.png", _png(plot), _png(nudged))
    assert not publish.same_render("glue.png", _png(plot), _png(moved))
    assert not publish.same_render("glue.png", _png(plot), _png(plot[:, :150]))
    assert not publish.same_render("glue.png", _png(plot), b"not a png")
    assert not publish.same_render("glue.md", b"| a | 90.0 |", b"| a | 90.1 |")

    def page(png: bytes, score: str = "90.0") -> bytes:
        return (f'<p><img src="data:image/png;base64,{base64.b64encode(png).decode()}"></p><td>{score}</td>'
                ).encode()

    assert publish.same_render("index.html", page(_png(plot)), page(_png(nudged)))
    assert not publish.same_render("index.html", page(_png(plot)), page(_png(moved)))
    assert not publish.same_render("index.html", page(_png(plot)), page(_png(nudged), "90.1"))
    assert not publish.same_render("index.html", page(_png(plot)), page(_png(plot)) + page(_png(plot)))
    broken = b'<p><img src="data:image/png;base64,AAAAA"></p><td>90.0</td>'  # 5 characters: not base64
    assert not publish.same_render("index.html", broken, page(_png(plot)))


def test_check_fails_when_a_table_and_its_record_disagree(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    assert main(["publish", "--check", "--to", str(root)]) == 0
    glue = root / "glue.md"
    glue.write_text(glue.read_text().replace("90.0", "91.0"))
    assert main(["publish", "--check", "--to", str(root)]) == 1
    assert "glue.md: differs" in capsys.readouterr().err


def test_no_suite_can_name_a_file_the_record_already_has():
    """A plugin's suite becomes <suite>.md and <suite>.png in the published folder: no suite name may be
    that of a table or plot made otherwise (a user's suite 'perf' replaced perf.md, 'transfer' lost)."""
    from benchmark.tasks import suite_problem

    suites = {r.suite for _path, r in publish.read_record(PUBLISHED)}
    others = [p.name for p in PUBLISHED.iterdir() if p.suffix in (".md", ".png") and p.stem not in suites]
    assert {"perf.md", "transfer.md", "README.md", "qa-modes.md", "glue-paper.md"} <= set(others)
    for name in others:  # lower-cased too: README.md and readme.md are one file on macOS
        assert suite_problem(Path(name).stem.lower()) is not None, f"a suite could overwrite {name}"


# ---------------------------------------------------------------------------------------
# publishing
def test_publish_adds_exactly_its_rows_and_keeps_every_other_byte(tmp_path):
    root = published(tmp_path, glue_model("bert") + qa_model("t5"))
    before = snapshot(root / publish.RECORD_DIR)
    results = user_results(tmp_path / "results", glue_model("roberta"))
    assert main(["publish", "--results-dir", str(results), "--to", str(root)]) == 0
    after = snapshot(root / publish.RECORD_DIR)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing else changed
    assert sorted(set(after) - set(before)) == sorted(
        str(publish.record_path(root, r).relative_to(root / publish.RECORD_DIR)) for r in glue_model("roberta"))
    glue = (root / "glue.md").read_text()
    assert "| bert " in glue and "| roberta " in glue
    assert "| t5 " in (root / "qa.md").read_text()
    assert publish.check(root) == []


def test_publish_replaces_the_same_model_mode_and_task(tmp_path):
    root = published(tmp_path, glue_model("bert"))
    better = [make("SST-2", {"accuracy": 95.5}, model="bert")]
    assert main(["publish", "--results-dir", str(user_results(tmp_path / "r", better)), "--to", str(root)]) == 0
    records = [r for _p, r in publish.read_record(root)]
    assert len(records) == 4
    assert [r.metrics for r in records if r.task == "sst2"] == [{"accuracy": 95.5}]
    assert "95.5" in (root / "glue.md").read_text()


def test_a_limit_run_does_not_replace_a_published_row_unless_forced(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    before = snapshot(root)
    smoke = [make("SST-2", {"accuracy": 20.0}, model="bert", n=5)]
    results = user_results(tmp_path / "r", smoke)
    assert main(["publish", "--results-dir", str(results), "--to", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evaluated on 5 examples and the published one on 100" in err
    assert "--force" in err and snapshot(root) == before
    assert main(["publish", "--results-dir", str(results), "--to", str(root), "--force"]) == 0
    assert [r.data.num_examples for _p, r in publish.read_record(root) if r.task == "sst2"] == [5]


def test_publish_to_a_relative_folder_keeps_the_replacing_records(tmp_path, monkeypatch):
    # `make publish` passes the default --to leaderboards, a relative path: the files that replace a row
    # must survive the clean-up of the files they replace
    monkeypatch.chdir(tmp_path)
    publish.publish(Path("board"), glue_model("bert"))
    better = [make("SST-2", {"accuracy": 95.5}, model="bert")]
    assert main(["publish", "--results-dir", str(user_results(Path("r"), better)), "--to", "board"]) == 0
    records = {p.relative_to(tmp_path / "board"): r for p, r in publish.read_record(tmp_path / "board")}
    assert len(records) == 4
    sst2 = publish.record_path(Path("board"), better[0]).relative_to(tmp_path / "board")
    assert records[sst2].metrics == {"accuracy": 95.5}
    assert publish.check(Path("board")) == []


def test_publish_chooses_by_model_and_task(tmp_path):
    results = user_results(tmp_path / "r", glue_model("a") + glue_model("b"))
    root = tmp_path / "board"
    assert main(["publish", "--results-dir", str(results), "--to", str(root), "--model", "b", "--tasks", "sst2"]) == 0
    assert [(r.model, r.task) for _p, r in publish.read_record(root)] == [("b", "sst2")]


def test_page_and_plot_are_part_of_the_record(tmp_path):
    root = published(tmp_path, glue_model("bert"))
    assert (root / "index.html").read_text().count("<table") >= 1
    assert (root / "glue.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("bad, message", [
    (dict(source="sample", location="builtin"), "sample suite"),
    (dict(weights="random"), "random weights"),
    (dict(metrics={"accuracy": float("nan")}), "no finite value for accuracy"),
])
def test_sample_and_random_results_are_refused_and_nothing_changes(tmp_path, capsys, bad, message):
    root = published(tmp_path, glue_model("bert"))
    before = snapshot(root)
    results = user_results(tmp_path / "r", glue_model("good") + [make("SST-2", model="evil", **bad)])
    assert main(["publish", "--results-dir", str(results), "--to", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "evil" in err
    assert snapshot(root) == before


def test_corrupt_user_result_is_one_line_and_nothing_changes(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    before = snapshot(root)
    results = user_results(tmp_path / "r", glue_model("good"))
    (results / "good.finetune" / "sst2-validation.json").write_text("{ not json")
    assert main(["publish", "--results-dir", str(results), "--to", str(root)]) == 2
    assert "not a valid result file" in capsys.readouterr().err
    assert snapshot(root) == before


def test_corrupt_record_file_is_one_line_and_nothing_changes(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    next((root / publish.RECORD_DIR).glob("*/*.json")).write_text("[]")
    before = snapshot(root)
    results = user_results(tmp_path / "r", glue_model("good"))
    assert main(["publish", "--results-dir", str(results), "--to", str(root)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert snapshot(root) == before


def test_nothing_to_publish_is_an_error(tmp_path, capsys):
    assert main(["publish", "--results-dir", str(tmp_path / "none"), "--to", str(tmp_path / "b")]) == 2
    results = user_results(tmp_path / "r", glue_model("a"))
    assert main(["publish", "--results-dir", str(results), "--to", str(tmp_path / "b"), "--model", "zzz"]) == 2
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------
# a user's own runs
def test_user_run_and_leaderboard_leave_the_published_record_alone(tmp_path, monkeypatch, capsys):
    shutil.copytree(PUBLISHED, tmp_path / "leaderboards")
    before = snapshot(tmp_path / "leaderboards")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--quiet"]) == 0
    assert main(["leaderboard"]) == 0
    assert main(["compare"]) == 0
    assert snapshot(tmp_path / "leaderboards") == before
    mine = tmp_path / "results" / "leaderboards"
    assert (mine / "glue.md").exists() and "<table" in (mine / "index.html").read_text()
    assert "results/leaderboards" in capsys.readouterr().err


def test_leaderboard_refuses_to_render_over_a_published_record(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    before = snapshot(root)
    results = user_results(tmp_path / "r", glue_model("mine"))
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(root)]) == 2
    assert main(["compare", "--results-dir", str(results), "--out", str(root / "glue-paper.md")]) == 2
    err = capsys.readouterr().err
    assert "is a published record" in err and "bench publish" in err
    assert snapshot(root) == before


def test_check_names_a_table_no_record_renders(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    (root / "extra.md").write_text("| made | up |\n")
    assert main(["publish", "--check", "--to", str(root)]) == 1
    assert "extra.md: no record renders it" in capsys.readouterr().err
    (root / "extra.md").unlink()
    assert main(["publish", "--check", "--to", str(root)]) == 0


def test_leaderboard_refuses_to_render_inside_a_published_record(tmp_path, capsys):
    root = published(tmp_path, glue_model("bert"))
    before = snapshot(root)
    results = user_results(tmp_path / "r", glue_model("mine"))
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(root / "results")]) == 2
    assert "is inside the published record" in capsys.readouterr().err
    assert snapshot(root) == before
