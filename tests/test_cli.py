"""End to end through the command line: runs, resume, fallback, errors, `bench score`, leaderboards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark import sample
from benchmark.cli import main
from benchmark.tasks import discover

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess: exit codes and stderr as a user sees them."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=300)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def majority_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    boards = tmp_path_factory.mktemp("boards")
    assert main(["run", "--model", "majority", "--data", "sample", "--results-dir", str(results), "--quiet"]) == 0
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(boards)]) == 0
    return results, boards


def test_help_is_instant_and_lists_commands():
    start = time.perf_counter()
    out = bench("--help")
    assert out.returncode == 0
    for command in ("run", "tasks", "models", "leaderboard", "score"):
        assert command in out.stdout
    assert time.perf_counter() - start < 30  # sanity bound only; speed is measured in `make perf`


def test_help_imports_no_heavy_libraries():
    code = "import sys; from benchmark.cli import build_parser; build_parser(); " \
           "print(sorted(m for m in ('torch','transformers','datasets','sklearn','pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_tasks_lists_the_builtin_suite(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("sst2", "mnli", "qqp", "squad", "triviaqa"):
        assert re.search(rf"^{name}\s", out, re.M), name
    assert "validation_matched, validation_mismatched" in out


def test_models_lists_adapters_and_known_names(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("majority", "encoder", "text2text", "t5-small", "bert-base-uncased"):
        assert name in out


def test_majority_writes_every_task_and_split(majority_run):
    results, _ = majority_run
    names = sorted(p.name for p in (results / "majority").glob("*.json"))
    assert names == ["mnli-validation_matched.json", "mnli-validation_mismatched.json", "qqp.json",
                     "squad.json", "squad_closed_book.json", "sst2.json", "triviaqa.json"]
    for qa in ("squad", "squad_closed_book", "triviaqa"):
        r = load(results / "majority" / f"{qa}.json")
        assert r["status"] == "unsupported" and r["metrics"] == {} and "does not do" in r["note"]


def test_majority_accuracy_is_the_majority_rate(majority_run):
    results, _ = majority_run
    spec = discover().tasks["sst2"]
    train = sample.generate(spec, "train")
    val = sample.generate(spec, "validation")
    counts = [sum(r["label"] == k for r in train) for k in (0, 1)]
    majority = counts.index(max(counts))
    rate = 100 * sum(r["label"] == majority for r in val) / len(val)
    r = load(results / "majority" / "sst2.json")
    assert r["metrics"]["accuracy"] == pytest.approx(rate, abs=1e-3)
    lo, hi = r["ci95"]["accuracy"]
    assert lo <= r["metrics"]["accuracy"] <= hi


def test_result_has_every_contract_field(majority_run):
    results, _ = majority_run
    r = load(results / "majority" / "qqp.json")
    assert r["schema"] == 1
    for key in ("task", "split", "model", "adapter", "mode", "data", "metrics", "ci95", "efficiency", "provenance"):
        assert key in r
    assert set(r["data"]) == {"source", "location", "fingerprint", "num_examples", "subset"}
    assert set(r["metrics"]) == {"accuracy", "f1"}
    eff = r["efficiency"]
    for key in ("num_parameters", "trainable_parameters", "latency_ms", "throughput_per_s", "batch_size",
                "eval_seconds", "train_seconds", "peak_memory_mb"):
        assert key in eff
    assert set(eff["latency_ms"]) == {"p50", "p95"}
    prov = r["provenance"]
    for key in ("model_revision", "packages", "hardware", "seed", "created", "command", "task_sha256", "settings"):
        assert key in prov
    assert r["data"]["source"] == "sample" and len(r["data"]["fingerprint"]) == 64


def test_leaderboards_written_with_dashes_for_unsupported(majority_run):
    _, boards = majority_run
    glue = (boards / "glue.md").read_text()
    qa = (boards / "qa.md").read_text()
    assert "sample suite" in glue.lower() and "majority" in glue
    row = next(line for line in qa.splitlines() if line.startswith("| majority"))
    assert "—" in row and " 0.0 " not in row


def test_rerun_skips_current_results_and_force_redoes(tmp_path, capsys):
    args = ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path)]
    assert main(args) == 0
    path = tmp_path / "majority" / "sst2.json"
    first = path.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "results are current, skipped" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == first
    assert main(args + ["--force"]) == 0
    assert path.stat().st_mtime_ns != first


def test_changed_data_reruns(tmp_path):
    base = ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path)]
    assert main(base + ["--limit", "50"]) == 0
    limited = load(tmp_path / "majority" / "sst2.json")
    assert main(base) == 0  # another fingerprint: redone, not skipped
    full = load(tmp_path / "majority" / "sst2.json")
    assert limited["data"]["num_examples"] == 50 and full["data"]["num_examples"] > 50
    assert limited["data"]["fingerprint"] != full["data"]["fingerprint"]


def test_changed_train_data_reruns(tmp_path, capsys):
    data = local_data(tmp_path / "data", "sst2")
    args = ["run", "--model", "majority", "--data", str(data), "--tasks", "sst2", "--results-dir", str(tmp_path / "r")]
    assert main(args) == 0
    path = tmp_path / "r" / "majority" / "sst2.json"
    before = load(path)
    train = data / "sst2" / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    train.write_text("".join(json.dumps({**r, "label": 1 - r["label"]}) + "\n" for r in rows))
    capsys.readouterr()
    assert main(args) == 0  # same eval data and settings, another train split: redone, not skipped
    assert "results are current" not in capsys.readouterr().err
    after = load(path)
    assert after["provenance"]["train_data"]["fingerprint"] != before["provenance"]["train_data"]["fingerprint"]
    assert after["metrics"] != before["metrics"]  # the majority class flipped
    capsys.readouterr()
    assert main(args) == 0
    assert "results are current, skipped" in capsys.readouterr().err


def _tiny_classifier(folder: Path, seed: int) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from benchmark.models.hf import train_tokenizer

    task = discover().tasks["sst2"]
    tokenizer = train_tokenizer([t for r in sample.generate(task, "train") for t in task.texts(r)],
                                family="wordpiece", vocab_size=500)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_a_local_checkpoint_saved_again_with_other_weights_reruns(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    _tiny_classifier(folder, seed=0)
    args = ["run", "--model", str(folder), "--mode", "zero-shot", "--data", "sample", "--tasks", "sst2",
            "--results-dir", str(tmp_path / "r"), "--quiet"]
    assert main(args) == 0
    path = next((tmp_path / "r").glob("*/sst2.json"))
    before = load(path)["provenance"]["model_revision"]
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    _tiny_classifier(folder, seed=1)  # same files, same sizes, other weights
    assert {p.name: p.stat().st_size for p in folder.iterdir()} == sizes
    capsys.readouterr()
    assert main(args) == 0
    assert "1 written" in capsys.readouterr().err
    after = load(path)["provenance"]["model_revision"]
    assert before.startswith("sha256:") and after != before
    capsys.readouterr()
    assert main(args) == 0
    assert "0 written, 0 unsupported, 1 already current" in capsys.readouterr().err


def local_data(folder: Path, *tasks: str) -> Path:
    """A --data folder holding the sample suite's rows of `tasks`, reversed (another fingerprint), as JSON
    Lines: real data to the harness."""
    catalog = discover().tasks
    for name in tasks:
        task = catalog[name]
        for split in [task.dataset.train, *(e.split for e in task.dataset.eval)]:
            path = folder / task.dataset.local / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(row) + "\n" for row in sample.generate(task, split)[::-1]))
    return folder


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("!")]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    return lines[-1]


def test_a_sample_suite_run_does_not_replace_a_real_data_result(tmp_path):
    # `make bench` offline falls back to the sample suite and writes where the real-data runs wrote
    data = local_data(tmp_path / "data", "sst2")
    results = tmp_path / "results"
    assert main(["run", "--model", "majority", "--tasks", "sst2", "--data", str(data), "--results-dir",
                 str(results), "--quiet"]) == 0
    path = results / "majority" / "sst2.json"
    real = path.read_bytes()
    out = bench("run", "--model", "majority", "--tasks", "sst2", "--results-dir", str(results), "--quiet")
    line = _one_error_line(out)
    assert "SAMPLE suite" in out.stderr and "holds a result on real data (local" in line and "--force" in line
    assert path.read_bytes() == real
    assert main(["run", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--results-dir",
                 str(results), "--quiet", "--force"]) == 0
    assert load(path)["data"]["source"] == "sample"


def test_a_limit_run_does_not_replace_the_full_result(tmp_path):
    base = ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path),
            "--quiet"]
    assert main(base) == 0
    path = tmp_path / "majority" / "sst2.json"
    full = path.read_bytes()
    line = _one_error_line(bench(*base, "--limit", "5"))
    assert f"{path} holds a result on the SAMPLE suite (" in line and "this one is on the SAMPLE suite (the first 5 examples)" in line
    assert path.read_bytes() == full
    assert main(base + ["--limit", "5", "--force"]) == 0
    assert load(path)["data"]["num_examples"] == 5


def test_a_missing_split_of_a_later_task_stops_the_run_before_the_first_is_done(tmp_path):
    data = local_data(tmp_path / "data", "sst2", "qqp")
    (data / "qqp" / "train.jsonl").unlink()
    out = bench("run", "--model", "majority", "--tasks", "sst2,qqp", "--data", str(data), "--results-dir",
                str(tmp_path / "r"))
    assert "no file for qqp split 'train'" in _one_error_line(out)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.json"))


def test_a_broken_train_split_of_a_later_task_stops_the_run_before_the_first_is_written(tmp_path):
    data = local_data(tmp_path / "data", "sst2", "mnli")
    train = data / "mnli" / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rows[5]["label"] = 3  # MNLI has three labels
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = bench("run", "--model", "majority", "--tasks", "sst2,mnli", "--data", str(data), "--results-dir",
                str(tmp_path / "r"))
    line = _one_error_line(out)
    assert "train.jsonl (mnli/train): example 5: field 'label'" in line
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.json"))


def test_a_run_may_not_write_into_a_published_record(tmp_path):
    from benchmark import publish
    from test_leaderboard import glue_model

    root = tmp_path / "board"
    publish.publish(root, glue_model("bert"))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for folder in (root / publish.RECORD_DIR, root):
        line = _one_error_line(bench("run", "--model", "majority", "--tasks", "sst2", "--data", "sample",
                                     "--results-dir", str(folder)))
        assert f"is inside the published record {root}" in line and "bench publish --to" in line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("args, needle", [
    (["run", "--model", "majority", "--seed", "-1"], "-1 must be at least 0"),
    (["run", "--model", "bilstm", "--epochs", "inf"], "inf must be a finite number above 0"),
    (["run", "--model", "bilstm", "--learning-rate", "nan"], "nan must be a finite number above 0"),
    (["leaderboard", "--out", "{file}"], "exists and is not a folder"),
    (["leaderboard", "--results-dir", "{file}"], "is not a folder"),
    (["compare", "--out", "{dir}"], "is a folder"),
    (["publish", "--to", "{file}", "--results-dir", "{dir}"], "exists and is not a folder"),
    (["publish", "--to", "{file}", "--render"], "exists and is not a folder"),
    (["publish", "--to", "{dir}", "--render"], "not a published record"),
    (["publish", "--to", "{missing}", "--check"], "not a published record"),
    (["score", "--task", "sst2", "--data", "sample", "--predictions", "{dir}"], "Is a directory"),
    (["curve", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--sizes", "10",
      "--out", "{file}"], "exists and is not a folder"),
])
def test_bad_paths_and_numbers_are_one_line_exit_2(tmp_path, args, needle):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    places = {"{file}": str(tmp_path / "file"), "{dir}": str(tmp_path / "dir"), "{missing}": str(tmp_path / "nope")}
    writes = args[0] in ("run", "curve", "score")
    out = bench(*[places.get(a, a) for a in args], *(["--results-dir", str(tmp_path / "res")] if writes else []))
    line = _one_error_line(out)
    assert needle in line and len([x for x in out.stderr.splitlines() if x.strip()]) == 1, out.stderr
    assert not (tmp_path / "res").exists() and not (tmp_path / "nope").exists()


def test_hub_default_falls_back_to_sample_loudly(tmp_path):
    out = bench("run", "--model", "majority", "--tasks", "sst2", "--results-dir", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "SAMPLE suite" in out.stderr and "!!!!" in out.stderr
    assert load(tmp_path / "majority" / "sst2.json")["data"]["source"] == "sample"


@pytest.mark.parametrize("args, needle", [
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--tasks", "sst3"], "unknown task 'sst3'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--mode", "fine-tune"], "unknown mode 'fine-tune'"),
    (["--data", "/no/such/dir"], "no such directory"),
    (["--limit", "0"], "must be at least 1"),
    (["--limit", "-3"], "must be at least 1"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, args, needle):
    out = bench("run", "--results-dir", str(tmp_path), *(["--model", "majority"] if "--model" not in args else []),
                *args)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert needle in lines[0] and "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_unwritable_results_dir_is_a_user_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = bench("run", "--model", "majority", "--data", "sample", "--results-dir", str(target))
    assert out.returncode == 2 and "not a folder" in out.stderr


def test_corrupt_existing_result_is_reported_not_overwritten(tmp_path):
    bad = tmp_path / "majority" / "sst2.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"task": "sst2", ')
    out = bench("run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path))
    assert out.returncode == 2 and "not a valid result file" in out.stderr and "--force" in out.stderr
    assert bad.read_text() == '{"task": "sst2", '


# --- bench score -------------------------------------------------------------------------
def _squad_rows():
    return sample.generate(discover().tasks["squad"], "validation")


def test_score_squad_official_format(tmp_path):
    rows = _squad_rows()
    preds = {r["id"]: (r["answers"]["text"][0] if i % 2 == 0 else "wrong answer") for i, r in enumerate(rows)}
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(preds))
    assert main(["score", "--task", "squad", "--predictions", str(path), "--data", "sample", "--model", "mine",
                 "--results-dir", str(tmp_path / "res")]) == 0
    r = load(tmp_path / "res" / "mine" / "squad.json")
    expected = 100 * sum(1 for i in range(len(rows)) if i % 2 == 0) / len(rows)
    assert r["metrics"]["exact_match"] == pytest.approx(expected, abs=1e-3)
    assert r["adapter"] == "external" and r["efficiency"]["latency_ms"] is None


def test_score_jsonl_classification_with_label_names(tmp_path):
    rows = sample.generate(discover().tasks["sst2"], "validation")
    names = ["negative", "positive"]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps({"idx": r["idx"], "prediction": names[r["label"]].upper()}) + "\n" for r in rows))
    assert main(["score", "--task", "sst2", "--predictions", str(path), "--data", "sample",
                 "--results-dir", str(tmp_path / "res")]) == 0
    assert load(tmp_path / "res" / "external" / "sst2.json")["metrics"]["accuracy"] == 100.0


def test_score_accepts_label_ids_written_as_strings_or_floats(tmp_path):
    rows = sample.generate(discover().tasks["sst2"], "validation")
    forms = [str, float, int]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps({"idx": r["idx"], "prediction": forms[i % 3](r["label"])}) + "\n"
                            for i, r in enumerate(rows)))
    assert main(["score", "--task", "sst2", "--predictions", str(path), "--data", "sample",
                 "--results-dir", str(tmp_path / "res")]) == 0
    assert load(tmp_path / "res" / "external" / "sst2.json")["metrics"]["accuracy"] == 100.0


def test_a_plugin_whose_label_names_are_digits_scores_by_name(tmp_path):
    """Star ratings "1".."5": the data's "5" is the fifth label, for a run and for bench score alike."""
    plugins, data = tmp_path / "plugins", tmp_path / "data"
    (plugins).mkdir()
    (plugins / "stars.yaml").write_text(textwrap.dedent("""\
        name: stars
        version: 1
        kind: classification
        suite: reviews
        dataset: {hub: local/stars, train: train, eval: [validation]}
        inputs: [text]
        label: stars
        labels: ["1", "2", "3", "4", "5"]
        metrics: [accuracy]
        template: "{text}"
        """))
    (data / "stars").mkdir(parents=True)
    for split, stars in (("train", "5551"), ("validation", "5125")):
        (data / "stars" / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": f"review {i}", "stars": s}) + "\n" for i, s in enumerate(stars)))
    common = ["--tasks-dir", str(plugins), "--data", str(data), "--results-dir", str(tmp_path / "res")]
    assert main(["run", "--model", "majority", "--tasks", "stars", *common, "--quiet"]) == 0
    assert load(tmp_path / "res" / "majority" / "stars.json")["metrics"]["accuracy"] == 50.0  # "5" twice of 4
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "prediction": s}) + "\n" for i, s in enumerate("5125")))
    assert main(["score", "--task", "stars", "--predictions", str(preds), *common]) == 0
    assert load(tmp_path / "res" / "external" / "stars.json")["metrics"]["accuracy"] == 100.0


def test_sample_evaluates_a_fixed_random_subset_and_excludes_limit(tmp_path, capsys):
    results = tmp_path / "res"
    base = ["run", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--results-dir", str(results), "--quiet"]
    assert main([*base, "--sample", "20"]) == 0
    r = load(results / "majority" / "sst2.json")
    assert r["data"]["num_examples"] == 20 and r["data"]["subset"] == "random"
    assert main([*base, "--sample", "20"]) == 0  # the same draw: current, not redone
    assert "already current" in capsys.readouterr().err
    assert main([*base, "--limit", "5", "--sample", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass one" in err[0]
    assert load(results / "majority" / "sst2.json")["data"]["subset"] == "random"  # untouched


def test_score_does_not_replace_a_run_of_the_same_name(tmp_path):
    results = tmp_path / "res"
    assert main(["run", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--results-dir", str(results),
                 "--quiet"]) == 0
    path = results / "majority" / "sst2.json"
    run = path.read_bytes()
    rows = sample.generate(discover().tasks["sst2"], "validation")
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"idx": r["idx"], "prediction": 0}) + "\n" for r in rows))
    args = ["score", "--task", "sst2", "--predictions", str(preds), "--data", "sample", "--model", "majority",
            "--results-dir", str(results)]
    line = _one_error_line(bench(*args))
    assert "holds a result of adapter 'majority', and this one is made by 'external'" in line and "--force" in line
    assert path.read_bytes() == run
    assert main(args + ["--force"]) == 0
    assert load(path)["adapter"] == "external"


@pytest.mark.parametrize("mutate, needle", [
    (lambda p: p.popitem(), "missing"),
    (lambda p: p.__setitem__("not-an-id", "x"), "unknown id"),
])
def test_score_rejects_missing_or_extra_ids(tmp_path, mutate, needle):
    preds = {r["id"]: "x" for r in _squad_rows()}
    mutate(preds)
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(preds))
    out = bench("score", "--task", "squad", "--predictions", str(path), "--data", "sample",
                "--results-dir", str(tmp_path / "res"))
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("text, needle", [
    (lambda preds: json.dumps(preds)[:-1] + ', "%s": "again"}' % next(iter(preds)), "appears twice"),
    (lambda preds: json.dumps({k: [v] for k, v in preds.items()}), "the answer must be a string, got list"),
])
def test_score_rejects_an_id_given_twice_or_an_answer_that_is_not_text(tmp_path, text, needle):
    preds = {r["id"]: r["answers"]["text"][0] for r in _squad_rows()}
    path = tmp_path / "preds.json"
    path.write_text(text(preds))
    out = bench("score", "--task", "squad", "--predictions", str(path), "--data", "sample",
                "--results-dir", str(tmp_path / "res"))
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "res").exists()


def test_score_reads_a_file_with_a_byte_order_mark_and_records_its_hash(tmp_path):
    import hashlib

    preds = {r["id"]: r["answers"]["text"][0] for r in _squad_rows()}
    path = tmp_path / "preds.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(preds).encode())
    assert main(["score", "--task", "squad", "--predictions", str(path), "--data", "sample",
                 "--results-dir", str(tmp_path / "res")]) == 0
    r = load(tmp_path / "res" / "external" / "squad.json")
    assert r["metrics"]["exact_match"] == 100.0
    assert r["provenance"]["settings"]["predictions_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


# --- a task plugin written from the README alone ---------------------------------------------
def readme_plugin() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Adding a task", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_readme_plugin_runs_and_becomes_a_leaderboard_column(tmp_path):
    plugins = tmp_path / "my_tasks"
    plugins.mkdir()
    (plugins / "rte.yaml").write_text(readme_plugin())
    res, boards = tmp_path / "res", tmp_path / "boards"
    assert main(["run", "--model", "majority", "--data", "sample", "--tasks", "rte,sst2", "--tasks-dir", str(plugins),
                 "--results-dir", str(res), "--quiet"]) == 0
    assert main(["leaderboard", "--results-dir", str(res), "--out", str(boards), "--tasks-dir", str(plugins)]) == 0
    header = next(line for line in (boards / "glue.md").read_text().splitlines() if line.startswith("| Model"))
    assert "RTE" in header and "SST-2" in header


def test_real_data_majority_sst2_is_444_of_872(tmp_path, shared_data):
    assert main(["run", "--model", "majority", "--data", str(shared_data), "--tasks", "sst2",
                 "--results-dir", str(tmp_path), "--quiet"]) == 0
    r = load(tmp_path / "majority" / "sst2.json")
    assert r["data"]["num_examples"] == 872 and r["data"]["source"] == "local"
    assert r["metrics"]["accuracy"] == pytest.approx(100 * 444 / 872, abs=1e-3)


@pytest.mark.parametrize("command", [["leaderboard"], ["compare"], ["export", "--model", "majority"],
                                     ["publish", "--to", "leaderboards"]])
def test_reading_a_results_dir_that_does_not_exist_is_an_error_that_writes_nothing(tmp_path, capsys, command):
    missing = tmp_path / "typo"
    assert main([*command, "--results-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()


def test_compare_without_glue_results_writes_nothing(tmp_path, capsys, majority_run):
    results, _boards = majority_run  # sample-suite results only
    out = tmp_path / "glue-paper.md"
    assert main(["compare", "--results-dir", str(results), "--out", str(out)]) == 0
    assert "nothing written" in capsys.readouterr().err and not out.exists()


def test_a_random_weights_run_sits_beside_the_pretrained_one(tmp_path):
    folder = tmp_path / "ckpt"
    _tiny_classifier(folder, seed=0)
    args = ["run", "--model", str(folder), "--mode", "zero-shot", "--data", "sample", "--tasks", "sst2",
            "--results-dir", str(tmp_path / "r"), "--quiet"]
    assert main(args) == 0
    assert main(args + ["--weights", "random"]) == 0  # no longer replaces the pretrained result
    found = {p.parent.name.rsplit(".", 1)[-1]: load(p)["weights"] for p in (tmp_path / "r").glob("*/sst2.json")}
    assert sorted(found.values()) == ["pretrained", "random"] and found["random-weights"] == "random"


def test_a_cache_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    import benchmark
    from benchmark.errors import UserError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["run", "--model", "bilstm", "--tasks", "sst2", "--data", "sample", "--epochs", "1",
            "--results-dir", str(tmp_path / "r"), "--cache-dir", str(blocker), "--quiet"]
    assert main(args) == 2
    assert "--cache-dir (or $BENCH_CACHE)" in capsys.readouterr().err and not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="not a folder"):
        benchmark.evaluate(model="bilstm", tasks=["sst2"], data="sample", results_dir=tmp_path / "r",
                           cache_dir=str(blocker), epochs=1, quiet=True)


def test_a_cache_that_cannot_be_written_costs_the_shortcut_not_the_result(tmp_path, capsys):
    from benchmark.distributed import SINGLE
    from benchmark.models import training

    def refuse(path, trained):
        raise PermissionError(13, "Permission denied")

    value, cached = training.cached_fit(tmp_path, {"k": 1}, lambda: 42, refuse, lambda p: None, world=SINGLE)
    assert (value, cached) == (42, False) and "cannot cache the trained weights" in capsys.readouterr().err


def test_seeds_sit_side_by_side_and_one_run_makes_several(tmp_path, capsys):
    args = ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path),
            "--quiet"]
    assert main(args) == 0
    path = tmp_path / "majority" / "sst2.json"
    kept = path.read_bytes()
    assert main(args + ["--seed", "1"]) == 0  # another seed is a sample to keep: its own file
    assert path.read_bytes() == kept and load(tmp_path / "majority" / "sst2-s1.json")["provenance"]["seed"] == 1
    capsys.readouterr()
    assert main(args[:-1] + ["--seed", "0,1,2"]) == 0  # 0 and 1 are current; 2 is new
    err = capsys.readouterr().err
    assert "seed 2 (3 of 3)" in err and "sst2/validation: accuracy " in err and " over seeds 0, 1, 2" in err
    assert sorted(p.name for p in (tmp_path / "majority").iterdir()) == ["sst2-s1.json", "sst2-s2.json", "sst2.json"]
    assert path.read_bytes() == kept
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(args + ["--seed", "1,1"])
    assert stop.value.code == 2 and "repeats a seed" in capsys.readouterr().err


def test_a_result_of_another_seed_in_a_seed_0_file_is_not_silently_replaced(tmp_path, capsys):
    """Results made before seeds had files of their own hold any seed under the plain name."""
    args = ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path),
            "--quiet"]
    assert main(args + ["--seed", "1"]) == 0
    path = tmp_path / "majority" / "sst2.json"
    (tmp_path / "majority" / "sst2-s1.json").rename(path)
    kept = path.read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the result of seed 1, and this one is seed 0" in err[0] and "--force" in err[0]
    assert "rename it to sst2-s1.json" in err[0]
    assert main(args + ["--seed", "1"]) == 2  # seed 1 itself: not trained again beside its old file
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the result of seed 1 under seed 0's name" in err[0] and "sst2-s1.json" in err[0]
    assert path.read_bytes() == kept and not (tmp_path / "majority" / "sst2-s1.json").exists()
    assert main(args + ["--force"]) == 0 and load(path)["provenance"]["seed"] == 0


def test_an_empty_model_name_is_named_as_such(tmp_path, capsys):
    assert main(["run", "--model", " ", "--data", "sample", "--results-dir", str(tmp_path)]) == 2
    assert "--model is empty" in capsys.readouterr().err


def test_any_declared_adapter_option_is_set_with_option(tmp_path, capsys):
    import benchmark
    from benchmark.errors import UserError

    base = ["run", "--model", "bilstm", "--tasks", "sst2", "--data", "sample", "--limit", "20", "--epochs", "1",
            "--max-train-examples", "60", "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main([*base, "--results-dir", str(tmp_path / "a"), "--option", "hidden=16", "--option", "dropout=0.5"]) == 0
    settings = load(tmp_path / "a" / "bilstm" / "sst2-n60.json")["provenance"]["settings"]["model"]
    assert (settings["hidden"], settings["dropout"]) == (16, 0.5)
    (r,) = benchmark.evaluate(model="bilstm", tasks=["sst2"], data="sample", results_dir=tmp_path / "b", limit=20,
                              epochs=1, max_train_examples=60, cache_dir=str(tmp_path / "c"), quiet=True,
                              adapter_options={"hidden": 16, "dropout": 0.5})
    assert r.provenance["settings"]["model"] == settings  # the same run from Python
    capsys.readouterr()
    assert main([*base, "--results-dir", str(tmp_path / "d"), "--option", "hidden=wide"]) == 2
    assert "option hidden='wide' is str, expected int" in capsys.readouterr().err
    assert main([*base, "--results-dir", str(tmp_path / "d"), "--option", "epochs=2"]) == 2
    assert "--option epochs: given twice" in capsys.readouterr().err
    assert main([*base, "--results-dir", str(tmp_path / "d"), "--option", "colour=red"]) == 2
    assert "does not take option 'colour'" in capsys.readouterr().err
    with pytest.raises(UserError, match="does not take option 'colour'"):
        benchmark.evaluate(model="bilstm", tasks=["sst2"], data="sample", results_dir=tmp_path / "d",
                           adapter_options={"colour": "red"})


def test_cache_dir_is_accepted_by_an_adapter_that_keeps_no_cache(tmp_path):
    assert main(["run", "--model", "majority", "--tasks", "sst2", "--data", "sample", "--cache-dir", str(tmp_path / "c"),
                 "--results-dir", str(tmp_path / "r"), "--quiet"]) == 0
