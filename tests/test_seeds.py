"""Several seeds of one run: files side by side, one table cell holding their mean ± sd, nothing else mixed in."""

from __future__ import annotations

import dataclasses
import statistics

from test_leaderboard import glue_model, main_table, make, only_section

from benchmark import leaderboard, publish
from benchmark.page import page_html
from benchmark.results import combine_seeds, headline, seed_summary

SETTINGS = {"mode": "finetune", "epochs": 3, "learning_rate": 2e-5}


def seeded(r, seed: int, accuracy: float, *, cap: int | None = None, used: int = 1000, **settings):
    """`r` as made by `seed`, trained on `used` examples (under --max-train-examples `cap`)."""
    return dataclasses.replace(r, metrics={"accuracy": accuracy}, ci95={"accuracy": [accuracy - 2, accuracy + 2]},
                               provenance={"seed": seed, "settings": {**SETTINGS, **settings, "seed": seed},
                                           "model_revision": "rev1",
                                           "train_data": {"fingerprint": "t" * 64, "num_examples": 67349,
                                                          "max_examples": cap, "used_examples": used}})


def sst2(seed: int, accuracy: float, **kw):
    return seeded(make("SST-2"), seed, accuracy, **kw)


def test_seeds_of_one_run_become_their_mean_with_the_spread_kept():
    runs = [sst2(2, 91.0), sst2(0, 90.0), sst2(1, 86.0)]
    (cell,) = headline(runs)
    assert cell.metrics == {"accuracy": statistics.fmean([90.0, 86.0, 91.0])} and cell.ci95 == {}
    summary = seed_summary(cell)
    assert summary.seeds == (0, 1, 2) and summary.values == {"accuracy": (90.0, 86.0, 91.0)}
    assert summary.sd["accuracy"] == statistics.stdev([90.0, 86.0, 91.0]) and summary.left_out == ()
    assert cell.provenance["seed"] == 0  # efficiency and provenance: the lowest seed's run
    assert all(seed_summary(r) is None for r in runs)  # the runs themselves are untouched


def test_one_run_is_itself_and_unsupported_markers_are_not_averaged():
    run = sst2(0, 90.0)
    assert combine_seeds([run]) is run
    marker = dataclasses.replace(make("SST-2", status="unsupported"), provenance={"seed": 1})
    assert combine_seeds([run, marker]) is run


def test_runs_that_differ_in_more_than_the_seed_are_not_averaged():
    runs = [sst2(0, 90.0), sst2(1, 88.0), sst2(2, 70.0, learning_rate=1e-3)]
    (cell,) = headline(runs)
    summary = seed_summary(cell)
    assert summary.seeds == (0, 1) and cell.metrics["accuracy"] == 89.0
    assert summary.left_out == (2,)
    other_revision = dataclasses.replace(sst2(1, 50.0), provenance={**sst2(1, 50.0).provenance, "model_revision": "r2"})
    (cell,) = headline([sst2(0, 90.0), other_revision])
    assert cell.metrics == {"accuracy": 90.0} and seed_summary(cell).left_out == (1,)


def test_the_mean_is_over_the_runs_on_the_most_data_only():
    full = [sst2(0, 90.0, used=67349), sst2(1, 92.0, used=67349)]
    points = [sst2(0, 60.0, cap=1000), sst2(1, 70.0, cap=1000), sst2(2, 80.0, cap=1000)]
    (cell,) = headline(points + full)
    assert cell.metrics == {"accuracy": 91.0} and seed_summary(cell).seeds == (0, 1)


def test_the_table_shows_mean_and_sd_and_says_what_it_is():
    others = [r for r in glue_model() if r.column != "SST-2"]
    text = leaderboard.suite_markdown("glue", headline([sst2(0, 90.0), sst2(1, 86.0), sst2(2, 91.0)] + others))
    _headers, (row,) = main_table(only_section(text, "## GLUE"))
    assert row["SST-2"] == "89.0 ± 2.6"  # mean 89.0, sample sd 2.65
    assert "**Seeds**: a cell with ± is the mean ± sample standard deviation" in text
    assert "bert (finetune) SST-2 seeds 0, 1, 2" in text
    assert "mean of seeds 0, 1, 2: 90.0, 86.0, 91.0" in text  # the provenance table lists each seed
    assert row["GLUE avg"] == "76.3"  # over the mean: (89 + 75 + 65) / 3


def test_a_single_run_table_has_no_seed_note_and_no_spread():
    text = leaderboard.suite_markdown("glue", headline(glue_model()))
    assert "±" not in text and "**Seeds" not in text


def test_left_out_seeds_are_named_under_the_table():
    text = leaderboard.suite_markdown("glue", headline([sst2(0, 90.0), sst2(1, 20.0, epochs=1)]))
    assert "**Seeds left out**" in text and "bert (finetune) SST-2 seed 1" in text
    _headers, (row,) = main_table(only_section(text, "## GLUE"))
    assert row["SST-2"] == "90.0"


def test_the_page_shows_the_spread_and_the_seeds():
    page = page_html(headline([sst2(0, 90.0), sst2(1, 86.0)]), {})
    assert "88.0 ± 2.8" in page and "mean of seeds 0, 1: 90.0, 86.0" in page and "seeds: 0, 1" in page


def test_each_seed_is_its_own_published_record(tmp_path):
    root = tmp_path / "board"
    publish.publish(root, [sst2(0, 90.0)])
    publish.publish(root, [sst2(1, 86.0)])  # beside seed 0, not in its place
    records = sorted(r.provenance["seed"] for _p, r in publish.read_record(root))
    assert records == [0, 1]
    assert "88.0 ± 2.8" in (root / "glue.md").read_text() and publish.check(root) == []
    publish.publish(root, [sst2(1, 87.0)])  # the same seed again replaces that seed's record
    assert sorted(r.metrics["accuracy"] for _p, r in publish.read_record(root)) == [87.0, 90.0]


def test_the_model_card_says_a_value_is_a_mean_over_seeds(tmp_path, capsys):
    import yaml

    from benchmark.cli import main
    from benchmark.results import result_path, save

    for r in (sst2(0, 90.0), sst2(1, 86.0)):
        save(r, result_path(tmp_path, r.model, r.task, r.split, True, r.mode, seed=r.provenance["seed"]))
    assert main(["export", "--results-dir", str(tmp_path), "--model", "bert"]) == 0
    (entry,) = yaml.safe_load(capsys.readouterr().out)["model-index"][0]["results"]
    (metric,) = entry["metrics"]
    assert metric["value"] == 88.0 and metric["name"] == "SST-2 accuracy (mean of 2 seeds)"


def test_seeds_read_from_another_path_to_the_same_train_data_still_average():
    moved = sst2(1, 86.0)
    moved.provenance["train_data"]["location"] = "/elsewhere/data"  # same fingerprint: the same data
    assert seed_summary(headline([sst2(0, 90.0), moved])[0]).seeds == (0, 1)


def test_the_comparison_pages_show_the_spread_of_a_mean_over_seeds():
    from benchmark import compare, transfer
    from benchmark.tasks import discover

    bilstm = [dataclasses.replace(r, model="bilstm", mode="scratch") for r in (sst2(0, 80.0), sst2(1, 84.0))]
    text = compare.markdown(bilstm)
    assert "| bilstm | scratch | 82.0 ± 2.8 |" in text and "**Seeds**: a cell with ± is the mean" in text
    text = transfer.markdown(bilstm, discover(entry_points=False).tasks)
    assert "82.0 ± 2.8" in text and "bilstm (scratch) SST-2 seeds 0, 1." in text


def test_make_bench_passes_seed_through():
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["make", "-n", "bench", "SEED=0,1,2", "MODEL=majority", "DATA=sample"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    assert '--seed "0,1,2"' in next(line for line in out.splitlines() if " run --model " in line)


def test_evaluate_takes_a_list_of_seeds(tmp_path):
    import benchmark

    results = benchmark.evaluate("majority", "sst2", data="sample", results_dir=tmp_path, seed=[0, 1], quiet=True)
    assert sorted(r.provenance["seed"] for r in results) == [0, 1]


def made(r, created: str):
    return dataclasses.replace(r, provenance={**r.provenance, "created": created})


def test_a_rerun_with_new_settings_supersedes_the_old_seeds():
    old = [made(sst2(1, 50.0), "2026-01-01T00:00:00+00:00"), made(sst2(2, 52.0), "2026-01-01T00:00:00+00:00")]
    new = made(sst2(0, 80.0, epochs=5), "2026-02-01T00:00:00+00:00")
    (cell,) = headline(old + [new])
    assert cell.metrics == {"accuracy": 80.0}
    assert seed_summary(cell).left_out == (1, 2)


def test_seeds_average_when_only_fields_the_resume_check_ignores_differ():
    """Records made by an older harness lack fields of train_data (subset) and ask for mode 'auto'."""
    old = sst2(0, 90.0)
    old.provenance["train_data"].pop("subset", None)
    old.provenance["settings"]["mode"] = "auto"
    new = sst2(1, 86.0)
    new.provenance["train_data"]["subset"] = ""
    assert seed_summary(headline([old, new])[0]).seeds == (0, 1)


def test_runs_of_another_adapter_release_or_task_definition_are_not_averaged():
    for field, value in (("adapter_provider", "plugin 2.0"), ("task_sha256", "other")):
        other = sst2(1, 50.0)
        other.provenance[field] = value
        assert seed_summary(headline([sst2(0, 90.0), other])[0]).left_out


def test_the_comparison_keeps_the_cell_on_the_whole_split_with_its_own_spread():
    from benchmark import compare

    whole = [dataclasses.replace(r, model="bilstm", mode="scratch") for r in (sst2(0, 50.0), sst2(1, 52.0))]
    smoke = dataclasses.replace(sst2(3, 90.0), model="bilstm", mode="scratch")
    smoke = dataclasses.replace(smoke, data=dataclasses.replace(smoke.data, num_examples=20, subset="first",
                                                                fingerprint="s" * 64))
    for order in (whole + [smoke], [smoke] + whole):
        assert "| bilstm | scratch | 51.0 ± 1.4 |" in compare.markdown(order)


SAMPLE_RUN = ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--quiet"]


def test_every_seed_is_planned_before_the_first_trains(tmp_path, capsys):
    from benchmark.cli import main

    assert main(SAMPLE_RUN + ["--results-dir", str(tmp_path), "--seed", "2"]) == 0
    capsys.readouterr()
    assert main(SAMPLE_RUN + ["--results-dir", str(tmp_path), "--seed", "0,1,2", "--limit", "20"]) == 2
    assert "holds a result on" in capsys.readouterr().err  # seed 2's whole split outweighs a --limit run
    assert sorted(p.name for p in (tmp_path / "majority").iterdir()) == ["sst2-s2.json"]  # seeds 0, 1 not run


def test_each_seed_is_released_before_the_next_trains_and_records_its_own_command(tmp_path, monkeypatch):
    import gc
    import json
    import weakref

    from benchmark import evaluator
    from benchmark.cli import main

    done, real = [], evaluator._execute

    def spy(adapter, *rest):
        gc.collect()
        assert all(ref() is None for ref in done), "an earlier seed's adapter is still alive"
        done.append(weakref.ref(adapter))
        real(adapter, *rest)

    monkeypatch.setattr(evaluator, "_execute", spy)
    argv = SAMPLE_RUN + ["--results-dir", str(tmp_path), "--seed", "0,1,2"]
    monkeypatch.setattr("sys.argv", ["bench", *argv])  # what provenance records as the command
    assert main(argv) == 0 and len(done) == 3
    command = json.loads((tmp_path / "majority" / "sst2-s1.json").read_text())["provenance"]["command"]
    assert "--seed 1 " in command + " " and "0,1,2" not in command


def test_publishing_never_overwrites_another_seed_kept_under_the_plain_name(tmp_path):
    import pytest

    from benchmark.errors import UserError
    from benchmark.results import save

    root = tmp_path / "board"
    publish.publish(root, [sst2(3, 70.0)])
    legacy = publish.record_path(root, sst2(0, 0.0))
    publish.record_path(root, sst2(3, 70.0)).rename(legacy)  # as a record made before seeds had names
    kept = legacy.read_bytes()
    with pytest.raises(UserError, match=r"holds seed 3 of this row, under the name of seed 0; rename it to "
                                        r"sst2-validation-s3\.json"):
        publish.publish(root, [sst2(0, 90.0)], force=True)
    assert legacy.read_bytes() == kept
    save(sst2(3, 70.0), legacy.with_name("sst2-validation-s3.json"))
    legacy.unlink()
    publish.publish(root, [sst2(0, 90.0)])
    assert sorted(r.provenance["seed"] for _p, r in publish.read_record(root)) == [0, 3]


def test_a_record_older_than_adapter_provider_averages_with_builtin_runs():
    new = sst2(1, 86.0)
    new.provenance["adapter_provider"] = "builtin"
    assert seed_summary(headline([sst2(0, 90.0), new])[0]).seeds == (0, 1)


def test_the_page_keeps_a_single_runs_interval_beside_the_seeds_it_left_out():
    page = page_html(headline([sst2(0, 90.0), sst2(1, 20.0, epochs=1)]), {})
    assert "90.0, 95% CI [88.0, 92.0] (seed 0; left out: seed 1)" in page


def test_every_comparison_page_keeps_the_whole_split_over_a_smoke_test_of_another_seed():
    from benchmark import qa_modes, transfer
    from benchmark.tasks import discover

    whole = [dataclasses.replace(r, model="bilstm", mode="scratch") for r in (sst2(0, 50.0), sst2(1, 52.0))]
    smoke = dataclasses.replace(sst2(3, 90.0), model="bilstm", mode="scratch")
    smoke = dataclasses.replace(smoke, data=dataclasses.replace(smoke.data, num_examples=20, subset="first",
                                                                fingerprint="s" * 64))
    tasks = discover(entry_points=False).tasks
    for order in (whole + [smoke], [smoke] + whole):
        assert "| bilstm | scratch | 51.0 ± 1.4 |" in transfer.markdown(order, tasks)
    lm = [dataclasses.replace(r, adapter="causal", mode="zero-shot", weights="pretrained") for r in whole + [smoke]]
    for order in (lm, lm[::-1]):
        assert "51.0 (± 1.4 over seeds)" in qa_modes.markdown(order) and "90.0" not in qa_modes.markdown(order)


def test_the_command_of_one_seed_rewrites_any_spelling_of_the_flag():
    from benchmark.cli import one_seed

    assert one_seed("bench run --model m --seed 0,1,2 --limit 5", 1) == "bench run --model m --seed 1 --limit 5"
    assert one_seed("bench run --seed=0,1 --sample 3", 1) == "bench run --seed=1 --sample 3"
    assert one_seed("bench run --se 0,1", 0) == "bench run --se 0"
    assert one_seed("bench run --sample 0,1 --seed 2,3", 3) == "bench run --sample 0,1 --seed 3"


def test_curve_seeds_asked_for_in_another_mode_are_one_line():
    from benchmark import curve

    old = sst2(0, 60.0, cap=100, used=100, mode="auto")  # made when the mode was left to the adapter
    new = [sst2(1, 70.0, cap=100, used=100), sst2(0, 80.0, cap=300, used=300)]
    (line,) = curve.lines([old] + new, "sst2", "validation", "accuracy")
    assert line.points == [(100, 65.0), (300, 80.0)]


def test_plot_labels_keep_the_folder_where_the_last_part_of_two_names_is_alike():
    from benchmark.leaderboard import Row, plot_labels

    a, b = "/home/user/checkpoints/experiment-2024-01-15/model", "/home/user/checkpoints/experiment-2024-01-16/model"
    labels = plot_labels([Row(a, "finetune", {}), Row(b, "finetune", {})])
    assert labels[0] != labels[1] and "15" in labels[0] and "16" in labels[1] and "#" not in "".join(labels)


def test_a_curve_plans_every_size_and_seed_before_the_first_trains(tmp_path, capsys):
    from benchmark.cli import main

    base = ["--model", "majority", "--data", "sample", "--tasks", "sst2", "--quiet", "--results-dir", str(tmp_path)]
    assert main(["run", *base, "--max-train-examples", "100", "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["curve", *base, "--sizes", "50,100", "--seed", "0,1", "--limit", "20"]) == 2
    assert "holds a result on" in capsys.readouterr().err  # size 100, seed 1: a whole split against --limit 20
    assert sorted(p.name for p in (tmp_path / "majority").iterdir()) == ["sst2-n100-s1.json"]  # nothing trained
    assert main(["curve", *[a for a in base if a != "--quiet"], "--sizes", "50,100", "--seed", "0,1"]) == 0
    err = capsys.readouterr().err
    assert "curve: majority on 50 train examples, seed 1" in err
    assert "sst2/validation (50 train examples): accuracy" in err and "over seeds 0, 1" in err
