"""The transfer-learning study is rendered from records alone: one row per (model, mode) with its
scores, labelled data, train time (frozen: features + probe), size and speed; the fine-tuning
throughput table; the SST-2 learning curve with its reach line; and it is part of the record."""

from __future__ import annotations

import dataclasses

from benchmark import publish, transfer
from benchmark.tasks import discover
from test_leaderboard import glue_model, make, split_row

TASKS = discover(entry_points=False).tasks
TRAINING = {"examples": 4000, "real_tokens": 53609, "padded_tokens": 58560, "padding": 1.0924,
            "tokens_per_s": 905.81, "flops": 3.47e12, "matrix_gflops": 164.22, "floor_fraction": 0.3573,
            "length_grouping": True}


def _trained(r, *, train_n: int, cap: int | None = None, train_s: float = 60.0, feature_s: float = 6.0,
             training: dict | None = None, **metrics):
    prov = {"train_data": {"source": "local", "location": "x", "fingerprint": "f" * 64, "num_examples": train_n,
                           "max_examples": cap, "used_examples": min(cap, train_n) if cap else train_n}}
    eff = dataclasses.replace(r.efficiency, train_seconds=train_s, feature_seconds=feature_s, training=training,
                              trainable_parameters=385)
    return dataclasses.replace(r, provenance=prov, efficiency=eff, metrics=metrics or r.metrics)


def _study():
    frozen = [_trained(r, train_n=67349 if r.task == "sst2" else 9999) for r in glue_model("minilm", mode="frozen")]
    tuned = [_trained(r, train_n=67349 if r.task == "sst2" else 9999, train_s=600.0, training=TRAINING)
             for r in glue_model("minilm", mode="finetune")]
    tuned.append(_trained(make("SQuAD", {"exact_match": 50.0, "f1": 62.5}, model="minilm"), train_n=3807))
    curve = [_trained(tuned[0], train_n=67349, cap=n, accuracy=acc) for n, acc in ((100, 60.0), (1000, 78.0),
                                                                                   (10000, 86.0))]
    return frozen + tuned + curve


def test_study_rows_costs_and_curve():
    files = transfer.render_files(_study(), TASKS, ["made on a test machine"])
    assert set(files) == {"transfer.md", "transfer-curve.png"} and files["transfer-curve.png"][:4] == b"\x89PNG"
    text = files["transfer.md"].decode()
    main_table = text.split("## Published references")[0]
    rows = {tuple(split_row(line)[:2]): split_row(line) for line in main_table.splitlines()
            if line.startswith("| minilm |")}
    tuned, frozen = rows[("minilm", "finetune")], rows[("minilm", "frozen")]
    # SST-2 .. SQuAD F1: the full-data run, never the curve's smaller points
    assert tuned[2:9] == ["90.0", "60.0", "70.0", "80.0", "70.0", "50.0", "62.5"]
    assert tuned[9] == "67,349 / 9,999 / 9,999 / 3,807"
    assert tuned[10] == "31.4 min"   # (600 + 6) s for each of sst2, mnli (one split), qqp; (60 + 6) s squad
    assert frozen[10] == "3.3 min" and frozen[8] == "—"   # (60 + 6) s x 3 tasks: features + probe
    assert frozen[11] == "110M / 385"
    assert "| minilm | finetune | sst2 | 4,000 | 53,609 | 1.09 | 906 | 164.2 | 36% | yes |" in text
    assert "Labelled examples to reach 80 acc: minilm (finetune) about 1,778" in text
    assert "![learning curve](transfer-curve.png)" in text and "- made on a test machine" in text
    for reference in ("Wang et al. 2018, GLUE, Table 6", "Sanh et al. 2019, DistilBERT, Tables 1 and 2",
                      "microsoft/unilm, minilm/README.md", "SBERT, Table 5"):
        assert reference in text


def test_the_study_and_its_notes_are_part_of_the_record(tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    (root / transfer.NOTES_FILE).write_text("first note\n\nsecond note\n")
    publish.publish(root, _study(), tasks=TASKS)
    text = (root / "transfer.md").read_text()
    assert "- first note\n- second note" in text
    assert (root / "transfer-curve.png").exists() and publish.check(root, tasks=TASKS) == []
    (root / transfer.NOTES_FILE).write_text("changed\n")
    assert publish.check(root, tasks=TASKS) == ["transfer.md"]
