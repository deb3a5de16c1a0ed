"""The QA-modes page is rendered from records alone: per (model, row mode) SQuAD with the passage
beside the same questions closed-book and TriviaQA, the passage's F1 gain only where both ran on the
same questions, each prompt format (K-shot, no chat template) its own row, GLUE prompting for
generative models only, and it is part of the published record."""

from __future__ import annotations

import dataclasses

from benchmark import publish, qa_modes
from benchmark.tasks import discover
from test_leaderboard import glue_model, make, split_row

TASKS = discover(entry_points=False).tasks
LM = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _lm(column: str, metrics: dict, *, variant: str = "", n: int = 1000, task: str | None = None,
        seconds: float = 100.0):
    r = make(column, metrics, model=LM, mode="zero-shot", task=task, n=n, weights="pretrained")
    eff = dataclasses.replace(r.efficiency, eval_seconds=seconds)
    return dataclasses.replace(r, adapter="causal", variant=variant, efficiency=eff,
                               kind="closed_book_qa" if r.suite == "qa" and column != "SQuAD" else r.kind)


def _record():
    out = []
    for variant, (ctx, closed, trivia) in {"": (18.0, 3.0, 6.0), "1-shot, no chat template": (30.0, 5.0, 7.5)}.items():
        out += [_lm("SQuAD", {"exact_match": ctx - 5, "f1": ctx}, variant=variant, seconds=1000.0),
                _lm("SQuAD closed-book", {"exact_match": 0.0, "f1": closed}, variant=variant, task="squad_closed_book"),
                _lm("TriviaQA", {"exact_match": 1.0, "f1": trivia}, variant=variant, task="triviaqa")]
    lm_glue = [dataclasses.replace(r, model=LM, adapter="causal", mode="zero-shot", weights="pretrained")
               for r in glue_model()]
    reader = make("SQuAD", {"exact_match": 47.8, "f1": 60.3}, model="minilm", n=10570)
    return out + lm_glue + [reader] + glue_model("minilm")  # the encoder's GLUE rows stay out of this page


def _rows(text: str, section: str) -> dict[tuple[str, str], list[str]]:
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    return {tuple(split_row(line)[:2]): split_row(line) for line in body.splitlines()
            if line.startswith("| ") and not line.startswith("| Model")}


def test_qa_rows_gap_and_prompt_formats():
    files = qa_modes.render_files(_record(), ["made on a test machine"])
    assert set(files) == {"qa-modes.md", "qa-modes.png"} and files["qa-modes.png"][:4] == b"\x89PNG"
    text = files["qa-modes.md"].decode()
    qa = _rows(text, "## Question answering")
    zero, shot = qa[(LM, "zero-shot")], qa[(LM, "1-shot, no chat template")]
    assert zero[2:5] == ["13.0 / 18.0", "0.0 / 3.0", "1.0 / 6.0"]
    assert zero[5].startswith("+15.0 (17.0–19.0) vs (2.0–4.0)") and shot[5].startswith("+25.0")
    assert zero[6] == "1,000 / 1,000 / 1,000" and zero[7] == "1.00 / 0.10 / 0.10"
    reader = qa[("minilm", "finetune")]
    assert reader[2] == "47.8 / 60.3" and reader[3:6] == ["—", "—", "—"]  # an extractive reader needs a passage
    glue = _rows(text, "## The same prompts on GLUE")
    assert set(glue) == {(LM, "zero-shot")}  # fine-tuned encoders live in transfer.md
    assert glue[(LM, "zero-shot")][2] == "90.0 (89.0–91.0)"
    assert "- made on a test machine" in text


def test_no_gap_between_different_question_sets():
    rows = qa_modes.qa_rows([_lm("SQuAD", {"exact_match": 10.0, "f1": 20.0}, n=1000),
                             _lm("SQuAD closed-book", {"exact_match": 0.0, "f1": 3.0}, n=500, task="squad_closed_book")])
    assert qa_modes.gap(rows[0]) is None


def test_nothing_to_render_without_a_generative_or_closed_book_row():
    assert qa_modes.render_files([make("SQuAD", {"exact_match": 47.8, "f1": 60.3}, model="minilm")]) == {}


def test_qa_modes_and_its_notes_are_part_of_the_record(tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    (root / qa_modes.NOTES_FILE).write_text("one note\n")
    publish.publish(root, _record(), tasks=TASKS)
    assert "- one note" in (root / "qa-modes.md").read_text() and (root / "qa-modes.png").exists()
    # each prompt format is its own published record file, never a replacement of another
    folders = sorted(p.name for p in (root / "results").iterdir() if p.name.startswith("HuggingFaceTB"))
    assert folders == ["HuggingFaceTB--SmolLM2-135M-Instruct.zero-shot",
                       "HuggingFaceTB--SmolLM2-135M-Instruct.zero-shot.1-shot-no-chat-template"]
    assert publish.check(root, tasks=TASKS) == []
    (root / qa_modes.NOTES_FILE).write_text("changed\n")
    assert publish.check(root, tasks=TASKS) == ["qa-modes.md"]


def test_prompted_rows_stay_off_the_training_comparisons():
    """glue-paper.md and transfer.md compare ways of training; a prompted generative model is on qa-modes.md."""
    from benchmark import compare, transfer

    record = _record()
    assert all(row.model != LM for row in compare.rows_from(record))
    assert all(row.model != LM for row in transfer.rows(record))
    assert any(row.model == "minilm" for row in transfer.rows(record))


def test_a_mean_over_seeds_shows_its_spread_where_one_run_shows_its_interval():
    def seeded(r, seed, shift):
        return dataclasses.replace(r, metrics={k: v + shift for k, v in r.metrics.items()}, ci95={},
                                   provenance={"seed": seed, "settings": {"seed": seed}})

    squad = _lm("SQuAD", {"exact_match": 10.0, "f1": 20.0})
    closed = _lm("SQuAD closed-book", {"exact_match": 0.0, "f1": 4.0}, task="squad_closed_book")
    runs = [seeded(r, seed, 2.0 * seed) for r in (squad, closed) for seed in (0, 1, 2)]
    text = qa_modes.markdown(runs)
    row = _rows(text, "## Question answering")[(LM, "zero-shot")]
    assert row[2] == "12.0 ± 2.0 / 22.0 ± 2.0" and row[5] == "+16.0 (± 2.0 over seeds) vs (± 2.0 over seeds)"
    assert "**Seeds**: a cell with ± is the mean" in text and "SQuAD seeds 0, 1, 2" in text
    assert qa_modes.figure_png(qa_modes.qa_rows(runs)).startswith(b"\x89PNG")
