"""`bench compare`: our BiLSTM rows beside the GLUE paper's, with train sizes, time and commands."""

from __future__ import annotations

import dataclasses

from benchmark import results as R
from benchmark.cli import main
from benchmark.compare import GLUE_PAPER_BILSTM, rows_from
from benchmark.results import DataInfo, Efficiency, Result

CPU = {"device": "cpu", "cpu": "Test CPU", "cpu_count": 2}


def glue_result(task: str, split: str, column: str, metrics: dict, *, model="bilstm", mode="scratch",
                train=67349, train_seconds=100.0, pretrain_seconds=None, source="local", weights="trained",
                command="bench run --model bilstm") -> Result:
    return Result(
        task=task, task_version=1, suite="glue", kind="classification", split=split, column=column, model=model,
        adapter=model, mode=mode, weights=weights,
        data=DataInfo(source=source, location="/data", fingerprint="ab" * 32, num_examples=872),
        metrics=metrics, ci95={k: [v - 1, v + 1] for k, v in metrics.items()},
        efficiency=Efficiency(train_seconds=train_seconds, pretrain_seconds=pretrain_seconds, device="cpu"),
        provenance={"train_data": {"num_examples": train}, "command": command, "hardware": CPU},
    )


def suite(**kw) -> list[Result]:
    return [glue_result("sst2", "validation", "SST-2", {"accuracy": 84.0}, **kw),
            glue_result("mnli", "validation_matched", "MNLI-m", {"accuracy": 60.0}, train=10000, **kw),
            glue_result("mnli", "validation_mismatched", "MNLI-mm", {"accuracy": 61.0}, train=10000, **kw),
            glue_result("qqp", "validation", "QQP", {"accuracy": 78.0, "f1": 70.0}, train=10000, **kw)]


def test_rows_average_mnli_and_count_pretraining_once():
    elmo = suite(model="bilstm-elmo", mode="frozen", pretrain_seconds=300.0, command="bench run --model bilstm-elmo")
    rows = {(r.model, r.mode): r for r in rows_from(suite() + elmo)}
    scratch, frozen = rows[("bilstm", "scratch")], rows[("bilstm-elmo", "frozen")]
    assert scratch.scores[("MNLI avg", "accuracy")] == 60.5 and scratch.scores[("QQP", "f1")] == 70.0
    assert scratch.train_sizes == {"sst2": 67349, "mnli": 10000, "qqp": 10000}
    assert sum(frozen.train_seconds.values()) == 300.0 and frozen.pretrain_seconds == 300.0


def test_sample_data_and_random_weights_stay_out():
    fake = suite(source="sample") + suite(model="bert", weights="random")
    assert rows_from(fake) == []


def test_bench_compare_writes_the_table(tmp_path):
    results = tmp_path / "results"
    for r in suite() + suite(model="bilstm-elmo", mode="finetune", pretrain_seconds=600.0,
                             command="bench run --model bilstm-elmo --mode finetune"):
        R.save(r, R.result_path(results, r.model, r.task, r.split, r.task != "mnli", r.mode))
    out = tmp_path / "glue-paper.md"
    assert main(["compare", "--results-dir", str(results), "--out", str(out), "--note", "two runs | at once"]) == 0
    text = out.read_text()
    assert "| BiLSTM, single-task (GLUE paper) | published | 87.5 | — | — | 66.7 | 85.3 | 82.0 |" in text
    assert "| bilstm | scratch | 84.0 | 60.0 | 61.0 | 60.5 | 78.0 | 70.0 | 67,349 / 10,000 / 10,000 | 5.0 min |" in text
    assert "| bilstm-elmo | finetune |" in text and "| 15.0 min |" in text  # 3 tasks x 100 s + 600 s pre-training, once
    assert "SST-2, the fair comparison (published 87.5): bilstm (scratch) 84.0, 3.5 points below; " in text
    assert "`bench run --model bilstm-elmo --mode finetune`" in text and "Test CPU (2 cores)" in text
    assert text.rstrip().endswith("- two runs \\| at once")


def test_the_text_says_what_the_rows_were_trained_and_evaluated_on():
    from benchmark.compare import markdown

    capped = [dataclasses.replace(r, provenance={**r.provenance, "train_data": {
        "num_examples": 67349, "max_examples": 300, "used_examples": 300, "location": "d1"}}) for r in suite()[:1]]
    head = dataclasses.replace(capped[0], data=dataclasses.replace(capped[0].data, subset="first", num_examples=200))
    text = markdown([head])
    assert "| 300 / — / — |" in text  # what it learned from, not the split's size
    assert "trained by the harness on `d1` (SST-2 on at most 300 examples, 224 times fewer than the reference, " \
           "so those columns are learning-curve points, not a match)" in text
    assert "except these cells, scored on part of theirs: bilstm (scratch) SST-2 the first 200." in text
    assert "the fair comparison" not in text  # neither all of SST-2's train split nor all of its dev set
    mixed = markdown(suite() + [dataclasses.replace(r, model="bilstm-small") for r in capped])
    assert "SST-2 on its complete train split in some rows and on 300 examples in others (224 times fewer" in mixed
    whole = markdown(suite())
    assert "(SST-2 on its complete train split; MNLI on at most 10,000 examples, 39 times fewer than the reference" \
           in whole and "Evaluated on the full GLUE dev sets." in whole and "the fair comparison" in whole


def test_reference_is_the_glue_paper_table():
    assert GLUE_PAPER_BILSTM.scores == {("SST-2", "accuracy"): 87.5, ("MNLI avg", "accuracy"): 66.7,
                                        ("QQP", "accuracy"): 85.3, ("QQP", "f1"): 82.0}
    assert dataclasses.is_dataclass(GLUE_PAPER_BILSTM)
