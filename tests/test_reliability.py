"""Reliability: bad input gets one clear line (exit 2) and writes nothing; SIGKILL at random moments
loses nothing; concurrent writers lose no row; Ctrl-C and a full disk leave finished work intact."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmark import sample
from benchmark.cli import main
from benchmark.tasks import discover

ROOT = Path(__file__).resolve().parents[1]
TASKS = discover().tasks

GOOD_TASK = {
    "name": "toy", "version": 1, "kind": "classification", "suite": "glue", "display": "TOY",
    "dataset": {"hub": "none/toy", "train": "train", "eval": ["validation"]},
    "inputs": ["text"], "label": "label", "labels": ["no", "yes"], "id": "idx", "metrics": ["accuracy"],
    "template": "toy: {text}",
}


def _yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _plugin(tmp: Path, text: str) -> list[str]:
    d = tmp / "plugins"
    d.mkdir(exist_ok=True)
    (d / "toy.yaml").write_text(text, encoding="utf-8")
    return ["run", "--model", "majority", "--data", "sample", "--tasks", "toy", "--tasks-dir", str(d)]


def _bad_task(**changes) -> callable:
    def make(tmp: Path) -> list[str]:
        data = json.loads(json.dumps(GOOD_TASK))
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return _plugin(tmp, _yaml(data))
    return make


def _sst2_dir(tmp: Path, validation_lines: list[str] | bytes, name: str = "validation.jsonl") -> list[str]:
    """A local data folder whose sst2 train split is fine and whose validation split is given."""
    folder = tmp / "data" / "sst2"
    folder.mkdir(parents=True, exist_ok=True)
    train = sample.generate(TASKS["sst2"], "train", size=20)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    path = folder / name
    if isinstance(validation_lines, bytes):
        path.write_bytes(validation_lines)
    else:
        path.write_text("".join(line + "\n" for line in validation_lines), encoding="utf-8")
    return ["run", "--model", "majority", "--data", str(tmp / "data"), "--tasks", "sst2"]


def _row(**kw) -> str:
    return json.dumps({"sentence": "a fine film", "label": 1, "idx": 0, **kw})


def _squad_dir(tmp: Path) -> list[str]:
    folder = tmp / "data" / "squad"
    folder.mkdir(parents=True)
    row = {"id": "q1", "title": "T", "context": "Paris is the capital of France.", "question": "Capital?",
           "answers": {"text": ["Paris"], "answer_start": [3]}}
    (folder / "validation.jsonl").write_text(json.dumps(row) + "\n")
    return ["score", "--task", "squad", "--predictions", str(_write(tmp / "p.json", '{"q1": "Paris"}')),
            "--data", str(tmp / "data")]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _predictions(tmp: Path, mutate) -> list[str]:
    rows = sample.generate(TASKS["sst2"], "validation")
    preds = {str(r["idx"]): r["label"] for r in rows}
    mutate(preds)
    return ["score", "--task", "sst2", "--data", "sample", "--predictions",
            str(_write(tmp / "preds.json", json.dumps(preds)))]


def _corrupt_result(tmp: Path) -> list[str]:
    path = tmp / "results" / "majority" / "sst2.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    return ["run", "--model", "majority", "--data", "sample", "--tasks", "sst2"]


CASES = {
    # malformed plugin files
    "plugin yaml syntax": (lambda t: _plugin(t, "name: toy\nkind: [classification\n"), "YAML syntax error at line"),
    "plugin not a mapping": (lambda t: _plugin(t, "- name: toy\n"), "expected a mapping"),
    "plugin unknown key": (_bad_task(lables=["a", "b"]), "field 'lables': unknown key"),
    "plugin unknown kind": (_bad_task(kind="clasification"), "did you mean 'classification'"),
    "plugin missing metrics": (_bad_task(metrics=None), "field 'metrics': missing"),
    "plugin version mistyped": (_bad_task(version="one"), "field 'version'"),
    "plugin unknown metric": (_bad_task(metrics=["acc"]), "field 'metrics'"),
    "plugin template missing field": (_bad_task(template="toy: {txt}"), "{txt} is not an input"),
    "plugin template attribute": (_bad_task(template="{text.__class__}"), "only plain field names"),
    "plugin template index": (_bad_task(template="{text[0]}"), "only plain field names"),
    "plugin template conversion": (_bad_task(template="{text!r}"), "conversion or format spec"),
    "plugin one label": (_bad_task(labels=["only"]), "at least two label names"),
    "plugin positive label": (_bad_task(positive_label="maybe"), "field 'positive_label'"),
    "plugin qa with labels": (_bad_task(kind="closed_book_qa", answers="answer", metrics=["exact_match"]),
                              "only for classification tasks"),
    "plugin eval split twice": (_bad_task(dataset={"hub": "x", "train": "train", "eval": ["v", "v"]}),
                                "listed twice"),
    "plugin python tag": (lambda t: _plugin(t, "name: !!python/object/apply:os.system ['touch pwned']\n"),
                          "YAML syntax error"),
    # data problems
    "data empty split": (lambda t: _sst2_dir(t, []), "the split is empty"),
    "data missing column": (lambda t: _sst2_dir(t, [json.dumps({"text": "x", "label": 1, "idx": 0})]),
                            "field 'sentence' is missing"),
    "data null text": (lambda t: _sst2_dir(t, [_row(sentence=None)]), "field 'sentence' is NoneType"),
    "data label out of range": (lambda t: _sst2_dir(t, [_row(label=2)]), "outside 0..1"),
    "data unknown label name": (lambda t: _sst2_dir(t, [_row(label="meh")]), "not one of negative, positive"),
    "data non-utf8": (lambda t: _sst2_dir(t, b'{"sentence": "caf\xe9", "label": 1, "idx": 0}\n'), "not valid UTF-8"),
    "data huge example": (lambda t: _sst2_dir(t, [_row(sentence="x" * 100_000)]), "100,000 characters"),
    "data duplicate ids": (lambda t: _sst2_dir(t, [_row(), _row()]), "repeats id '0'"),
    "data invalid json": (lambda t: _sst2_dir(t, [_row(), "{oops"]), "line 2: invalid JSON"),
    "data not an object": (lambda t: _sst2_dir(t, ["[1, 2]"]), "expected a JSON object"),
    "data missing split": (lambda t: _sst2_dir(t, [_row()], name="dev.jsonl"), "no file for sst2 split 'validation'"),
    "data truncated gzip": (lambda t: _sst2_dir(t, gzip.compress(_row().encode())[:20], name="validation.jsonl.gz"),
                            "cannot read"),
    "data squad offset": (lambda t: _squad_dir(t), "does not point at answer 'Paris'"),
    "data dir missing": (lambda t: ["run", "--model", "majority", "--data", str(t / "nope")], "no such directory"),
    # run problems
    "run unknown model": (lambda t: ["run", "--model", "gpt-7"], "unknown model 'gpt-7'"),
    "run unknown task": (lambda t: ["run", "--model", "majority", "--tasks", "colaa"], "unknown task 'colaa'"),
    "run unknown device": (lambda t: ["run", "--model", "majority", "--device", "tpu"], "unknown device 'tpu'"),
    "run unknown mode": (lambda t: ["run", "--model", "majority", "--mode", "fewshot"], "unknown mode 'fewshot'"),
    "run both batch flags": (lambda t: ["run", "--model", "majority", "--batch-size", "8", "--batch-tokens", "512"],
                             "pass one of them"),
    "run zero batch tokens": (lambda t: ["run", "--model", "majority", "--batch-tokens", "0"], "--batch-tokens"),
    "run zero limit": (lambda t: ["run", "--model", "majority", "--limit", "0"], "must be at least 1"),
    "run negative limit": (lambda t: ["run", "--model", "majority", "--limit", "-5"], "must be at least 1"),
    "run bad label map": (lambda t: ["run", "--model", "majority", "--label-map", "LABEL_0"], "HEAD=TASK_LABEL"),
    "run corrupt result": (_corrupt_result, "not a valid result file"),
    "score missing ids": (lambda t: _predictions(t, lambda p: p.pop("0")), "id(s) missing"),
    "score extra ids": (lambda t: _predictions(t, lambda p: p.__setitem__("x9", 1)), "unknown id(s)"),
    "score not json": (lambda t: ["score", "--task", "sst2", "--data", "sample", "--predictions",
                                  str(_write(t / "p.json", "{broken"))], "invalid JSON"),
    "score missing file": (lambda t: ["score", "--task", "sst2", "--data", "sample", "--predictions",
                                      str(t / "absent.json")], "no such file"),
    "score wrong split": (lambda t: ["score", "--task", "mnli", "--split", "test", "--data", "sample",
                                     "--predictions", str(_write(t / "p.json", "{}"))], "not an evaluation split"),
}


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 30


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} \
        if folder.exists() else {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a YAML exploit would create files here
    make, needle = CASES[name]
    argv = make(tmp_path)
    results = tmp_path / "results"
    if "--results-dir" not in argv and argv[0] in ("run", "score"):
        argv += ["--results-dir", str(results)]
    before = _snapshot(results)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: skipped broken")]
    assert code == 2, err
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert lines[0].startswith("error: ")
    assert _snapshot(results) == before  # nothing new, nothing half-written
    assert not (tmp_path / "pwned").exists()


# --- SIGKILL at random moments ---------------------------------------------------------------
RUN = [sys.executable, "-m", "benchmark", "run", "--model", "majority", "--data", "sample", "--quiet",
       "--batch-size", "8"]
RESULTS = 7  # every eval split of the built-in tasks (MNLI has two)


def _comparable(folder: Path) -> dict[str, dict]:
    """Everything in the results except timing, memory and the moment they were made."""
    out = {}
    for path in sorted(folder.glob("*/*.json")):
        data = json.loads(path.read_text())
        data.pop("efficiency")
        for key in ("created", "command", "hardware"):
            data["provenance"].pop(key)
        out[str(path.relative_to(folder))] = data
    return out


def _run_watching_first_write(args: list[str], folder: Path, env: dict) -> tuple[float, float]:
    """Run to completion; (seconds until the first result file appeared, seconds in all)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args + ["--results-dir", str(folder)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        if first is None and any(folder.glob("*/*.json")):
            first = time.perf_counter() - start
        time.sleep(0.005)
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed with exit code {proc.returncode}")
    total = time.perf_counter() - start
    return (first if first is not None else total), total


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    """Half the kills land anywhere in the run (mostly start-up), half inside the phase that writes
    results, so both 'nothing yet' and 'some finished' states are exercised."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    reference = tmp_path / "reference"
    first, full = _run_watching_first_write(RUN, reference, env)
    expected = _comparable(reference)
    assert len(expected) == RESULTS
    write_phase = max(full - first, 0.05)

    def trial(n: int) -> tuple[int, int]:
        rng = random.Random(n)
        folder = tmp_path / f"trial{n}"
        proc = subprocess.Popen(RUN + ["--results-dir", str(folder)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if n % 2 == 0:
            time.sleep(rng.uniform(0.1, full))
        else:
            while proc.poll() is None and not any(folder.glob("*/*.json")):
                time.sleep(0.002)
            time.sleep(rng.uniform(0, write_phase))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        survivors = {p: p.read_bytes() for p in folder.glob("*/*.json")}
        for data in survivors.values():  # every file that exists is a complete, valid result
            json.loads(data)
        subprocess.run(RUN + ["--results-dir", str(folder)], check=True, env=env, cwd=ROOT, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for path, data in survivors.items():  # re-running finished only what was missing
            assert path.read_bytes() == data, f"{path} was redone"
        assert _comparable(folder) == expected  # and the end state equals an uninterrupted run
        return len(survivors), RESULTS - len(survivors)

    started = time.perf_counter()
    trials = 20
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(trial, range(trials)))
    assert time.perf_counter() - started < 900  # bounded
    assert len(outcomes) == trials
    assert any(0 < kept < RESULTS for kept, _ in outcomes), outcomes  # some kills landed between results
    print(f"SIGKILL trials: {trials}; results kept/missing per trial: {outcomes}; rows lost: 0")


def test_ctrl_c_ends_cleanly_with_a_note(tmp_path):
    # bilstm trains each task for seconds, so the interrupt lands mid-run; after majority's first result
    # the rest (its splits loaded while the run is planned) could finish before the signal arrived
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    results = tmp_path / "results"
    run = [sys.executable, "-m", "benchmark", "run", "--model", "bilstm", "--data", "sample", "--quiet",
           "--tasks", "sst2,qqp", "--epochs", "1", "--cache-dir", str(tmp_path / "cache")]  # empty: each trains
    proc = subprocess.Popen(run + ["--results-dir", str(results)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(results.glob("*/*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "re-run the same command" in err and "Traceback" not in err
    for path in results.glob("*/*.json"):
        json.loads(path.read_text())


# --- concurrent writers --------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import json, sys
    from benchmark.cli import main
    name, preds, results, boards = sys.argv[1:5]
    assert main(["score", "--task", "sst2", "--data", "sample", "--predictions", preds, "--model", name,
                 "--results-dir", results]) == 0
    assert main(["leaderboard", "--results-dir", results, "--out", boards]) == 0
""")


def test_eight_concurrent_writers_lose_no_row(tmp_path):
    rows = sample.generate(TASKS["sst2"], "validation")
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({str(r["idx"]): r["label"] for r in rows}))
    results, boards = tmp_path / "results", tmp_path / "boards"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, f"model{i}", str(preds), str(results), str(boards)],
                              env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True) for i in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    table = (boards / "glue.md").read_text().split("<details>")[0]  # the main table, not the CI table
    assert sorted(line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| model")) == \
        [f"model{i}" for i in range(8)]
    for path in results.glob("*/*.json"):
        assert json.loads(path.read_text())["metrics"]["accuracy"] == 100.0
    assert not [p for p in results.rglob("*.tmp")] and not [p for p in boards.rglob("*.tmp")]


# --- a failed write leaves earlier results intact -------------------------------------------------
def test_full_disk_keeps_earlier_results(tmp_path, capsys, monkeypatch):
    args = ["run", "--model", "majority", "--data", "sample", "--results-dir", str(tmp_path), "--quiet"]
    assert main(args + ["--tasks", "sst2"]) == 0
    before = (tmp_path / "majority" / "sst2.json").read_bytes()

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    assert main(args + ["--tasks", "sst2,qqp", "--force"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "earlier results are intact" in err
    assert (tmp_path / "majority" / "sst2.json").read_bytes() == before
    assert not (tmp_path / "majority" / "qqp.json").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_out_of_memory_is_noted_in_the_result(tmp_path):
    from benchmark.evaluator import RunConfig, run
    from benchmark.models.majority import MajorityAdapter

    class Tight(MajorityAdapter):
        def predict(self, task, batch):
            if len(batch) > 16:
                raise MemoryError("simulated")
            return super().predict(task, batch)

    cfg = RunConfig(model="tight", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None, batch_size=64)
    run(Tight("tight"), [TASKS["sst2"]], cfg)
    result = json.loads((tmp_path / "tight" / "sst2.json").read_text())
    assert result["efficiency"]["batch_size"] == 16
    assert "out of memory at batch size 64" in result["note"]


def test_a_cache_folder_that_fails_to_be_replaced_keeps_the_old_one(tmp_path, monkeypatch):
    from benchmark import storage

    folder = tmp_path / "weights"
    storage.write_folder_atomic(folder, lambda tmp: (tmp / "model.bin").write_text("old"))
    real_replace = os.replace

    def failing_swap(src, dst):
        if Path(src).name.startswith(".weights.") and ".old." not in Path(src).name and Path(dst) == folder:
            raise OSError(28, "No space left on device")  # the new folder cannot take the old one's place
        return real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", failing_swap)
    with pytest.raises(OSError):
        storage.write_folder_atomic(folder, lambda tmp: (tmp / "model.bin").write_text("new"))
    monkeypatch.setattr(storage.os, "replace", real_replace)
    assert (folder / "model.bin").read_text() == "old"
    write_folder_atomic = storage.write_folder_atomic
    write_folder_atomic(folder, lambda tmp: (tmp / "model.bin").write_text("new"))
    assert (folder / "model.bin").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]  # no temporary or set-aside folder left
