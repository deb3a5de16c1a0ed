"""`bench export`: results -> Hub model-card `model-index` YAML, read back with huggingface_hub itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from benchmark.cli import main
from benchmark.results import Result, result_path, save
from test_leaderboard import glue_model, make, qa_model

ROOT = Path(__file__).resolve().parents[1]
# What the built-in task catalog says (tasks/*.yaml), written out independently of the exporter.
DATASETS = {"sst2": ("nyu-mll/glue", "sst2", "GLUE SST-2", "SST-2", "text-classification"),
            "qqp": ("nyu-mll/glue", "qqp", "GLUE QQP", "QQP", "text-classification"),
            "mnli": ("nyu-mll/glue", "mnli", "GLUE MNLI", "MNLI", "text-classification"),
            "squad": ("rajpurkar/squad", "plain_text", "SQuAD", "SQuAD", "question-answering"),
            "triviaqa": ("mandarjoshi/trivia_qa", "unfiltered.nocontext", "TriviaQA", "TriviaQA",
                         "question-answering")}
METRIC_NAMES = {"accuracy": "accuracy", "f1": "F1", "exact_match": "exact match"}


def write(results_dir: Path, results: list[Result]) -> None:
    for r in results:
        save(r, result_path(results_dir, r.model, r.task, r.split, r.task != "mnli", r.mode))


def export(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def parse(text: str) -> tuple[str, list]:
    """The printed block as the Hub reads it: YAML, then huggingface_hub's own model-index parser."""
    data = yaml.safe_load(text)
    assert list(data) == ["model-index"]
    name, evals = model_index_to_eval_results(data["model-index"])
    card = ModelCardData(**data)  # the model-card class accepts it as is and writes it back unchanged
    assert card.to_yaml() == text.strip()
    return name, evals


def rows(evals) -> set[tuple]:
    return {(e.task_type, e.task_name, e.dataset_type, e.dataset_name, e.dataset_config, e.dataset_split,
             e.dataset_revision, e.metric_type, e.metric_value, e.metric_name) for e in evals}


def expected(results: list[Result], revision: str | None = None) -> set[tuple]:
    out = set()
    for r in results:
        hub, config, name, display, task_type = DATASETS[r.task]
        for metric, value in r.metrics.items():
            out.add((task_type, display, hub, name, config, r.split, revision, metric, value,
                     f"{r.column} {METRIC_NAMES[metric]}"))
    return out


def test_export_writes_every_metric_of_every_real_result(tmp_path, capsys):
    real = glue_model("bert") + qa_model("bert")
    left_out = [make("SST-2", model="bert", mode="frozen", source="sample", location="builtin"),
                make("QQP", {"accuracy": 50.0, "f1": 10.0}, model="bert", mode="scratch", weights="random"),
                make("SQuAD", model="bert", mode="frozen", status="unsupported")]
    write(tmp_path, real + left_out + glue_model("roberta"))
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path))
    assert code == 0, err
    name, evals = parse(out)
    assert name == "bert"
    assert rows(evals) == expected(real)
    assert len(evals) == 1 + 2 + 1 + 1 + 2 + 2  # SST-2, QQP acc+F1, MNLI-m, MNLI-mm, SQuAD EM+F1, TriviaQA EM+F1
    lines = err.splitlines()
    assert lines[-1].startswith("warning: results made on local data (") and "unchanged" in lines[-1]
    lines = lines[:-1]
    assert len(lines) == 3 and all(line.startswith("warning: left out 1 result(s) of 'bert' with ") for line in lines)
    assert any("sample data" in line and "SST-2" in line for line in lines)
    assert any("random weights" in line and "QQP" in line for line in lines)
    assert any("status 'unsupported'" in line and "SQuAD" in line for line in lines)


def test_mnli_splits_stay_apart_and_values_are_as_recorded(tmp_path, capsys):
    write(tmp_path, glue_model("bert"))
    code, out, _ = export(capsys, "--model", "bert", "--results-dir", str(tmp_path))
    assert code == 0
    _, evals = parse(out)
    mnli = {e.dataset_split: e for e in evals if e.dataset_config == "mnli"}
    assert mnli["validation_matched"].metric_value == 60.0 and mnli["validation_matched"].metric_name == "MNLI-m accuracy"
    assert mnli["validation_mismatched"].metric_value == 70.0
    model_index = yaml.safe_load(out)["model-index"]
    assert len(model_index[0]["results"]) == 4  # one entry per (task, dataset, split); QQP holds two metrics


def test_plugin_task_dataset_revision_and_unknown_task_fallback(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    text = (ROOT / "tasks" / "sst2.yaml").read_text()
    text = (text.replace("name: sst2", "name: mysent").replace("display: SST-2", "display: MySent")
            .replace("suite: glue", "suite: sentiment").replace("hub: nyu-mll/glue", "hub: someone/mysent\n  revision: abc123")
            .replace("config: sst2", "config: default"))
    (plugins / "mysent.yaml").write_text(text)
    results = tmp_path / "results"
    write(results, [make("MySent", {"accuracy": 77.5}, task="mysent", model="m"),
                    make("Gone", {"accuracy": 12.5}, task="gone", model="m")])
    code, out, err = export(capsys, "--model", "m", "--results-dir", str(results), "--tasks-dir", str(plugins))
    assert code == 0, err
    _, evals = parse(out)
    assert rows(evals) == {
        ("text-classification", "MySent", "someone/mysent", "MySent", "default", "validation", "abc123",
         "accuracy", 77.5, "MySent accuracy"),
        ("text-classification", "Gone", "gone", "GLUE Gone", None, "validation", None,
         "accuracy", 12.5, "Gone accuracy"),
    }
    assert err.count("\n") == 2 and "task 'gone' is not in the task catalog" in err and "local data" in err
    # a local-only plugin (hub: null) is named by its task in the card
    (plugins / "mysent.yaml").write_text(text.replace("hub: someone/mysent", "hub: null"))
    code, out, err = export(capsys, "--model", "m", "--results-dir", str(results), "--tasks-dir", str(plugins))
    assert code == 0 and ("MySent", "mysent") in {(r[1], r[2]) for r in rows(parse(out)[1])}
    # without --tasks-dir the plugin task falls back too (and says so), rather than failing
    code, out, err = export(capsys, "--model", "m", "--results-dir", str(results))
    assert code == 0 and err.count("not in the task catalog") == 2


def test_subsets_are_left_out_and_two_results_for_one_split_are_refused(tmp_path, capsys):
    from dataclasses import replace

    whole = make("SST-2", {"accuracy": 80.0}, model="m")
    part = replace(make("QQP", {"accuracy": 70.0, "f1": 60.0}, model="m"),
                   data=replace(whole.data, subset="first", num_examples=50))
    write(tmp_path / "a", [whole, part])
    code, out, err = export(capsys, "--model", "m", "--results-dir", str(tmp_path / "a"))
    assert code == 0 and {e.dataset_config for e in parse(out)[1]} == {"sst2"}
    assert "left out 1 result(s) of 'm' with part of the split" in err and "QQP" in err
    other = replace(whole, data=replace(whole.data, fingerprint="c" * 64))  # the same split, other data
    save(whole, tmp_path / "b" / "m" / "sst2.json")
    save(other, tmp_path / "b" / "m.finetune" / "sst2.json")
    code, out, err = export(capsys, "--model", "m", "--results-dir", str(tmp_path / "b"))
    assert code == 2 and out == "" and "two results for sst2/validation, on different data" in err


def test_several_modes_need_mode(tmp_path, capsys):
    write(tmp_path, glue_model("bert", mode="finetune") + [make("SST-2", {"accuracy": 80.0}, mode="frozen")])
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "several modes (finetune, frozen)" in err and "--mode" in err
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path), "--mode", "frozen")
    assert code == 0, err
    _, evals = parse(out)
    assert [(e.dataset_config, e.metric_value) for e in evals] == [("sst2", 80.0)]
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path), "--mode", "frozn")
    assert code == 2 and out == "" and "did you mean 'frozen'" in err


def test_unknown_model_is_one_line_naming_the_models_there(tmp_path, capsys):
    write(tmp_path, glue_model("bert") + qa_model("t5"))
    code, out, err = export(capsys, "--model", "bret", "--results-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("error: no results for model 'bret'")
    assert "bert, t5" in err and "did you mean 'bert'" in err


def test_sample_or_random_only_is_an_error(tmp_path, capsys):
    write(tmp_path, glue_model("bert", source="sample", location="builtin")
          + [make("SQuAD", {"exact_match": 1.0, "f1": 2.0}, model="bert", weights="random", mode="scratch")])
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "nothing to export for model 'bert'" in err
    assert "4 with sample data" in err and "1 with random weights" in err


def test_corrupt_file_missing_folder_and_bad_format(tmp_path, capsys):
    write(tmp_path, glue_model("bert"))
    (tmp_path / "bert.finetune" / "broken.json").write_text("{not json")
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path))
    assert (code, out) == (2, "") and err.count("\n") == 1 and "broken.json: not a valid result file" in err
    code, out, err = export(capsys, "--model", "bert", "--results-dir", str(tmp_path / "nope"))
    assert (code, out) == (2, "") and err.count("\n") == 1 and "no such folder" in err
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--model", "bert", "--results-dir", str(tmp_path), "--format", "yaml"])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and err.count("\n") == 1 and "invalid choice: 'yaml'" in err


def test_real_entry_point_keeps_stdout_for_the_yaml(tmp_path):
    write(tmp_path, glue_model("bert") + [make("SST-2", model="bert", mode="frozen", source="sample")])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmark", "export", "--model", "bert", "--results-dir",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert parse(proc.stdout)[0] == "bert"  # warnings went to stderr only
    assert proc.stderr.startswith("warning: left out 1 result(s)")
