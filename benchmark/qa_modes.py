"""Context-based against closed-book QA on the same questions, and a decoder-only model's prompt
formats (zero-shot, few-shot, chat template or not) on GLUE. Rendered from Result records alone.

The QA table puts SQuAD with its passage beside the same SQuAD questions without it
(`squad_closed_book`) and beside closed-book TriviaQA, per (model, row mode); the gap between the
first two is what the passage is worth to that model. Extractive readers (fine-tuned encoders, the
BiLSTM span reader) can only answer with a passage, so their closed-book cells stay empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from .leaderboard import _png_bytes, escape_cell, seed_sentences
from .results import PROMPTED, Result, one_per_cell, row_mode, seed_summary

TABLE_FILE = "qa-modes.md"
PLOT_FILE = "qa-modes.png"
NOTES_FILE = "qa-modes.notes"
# (task, split, header)
QA_COLUMNS = (("squad", "validation", "SQuAD, with the passage"),
              ("squad_closed_book", "validation", "SQuAD, closed-book"),
              ("triviaqa", "validation", "TriviaQA, closed-book"))
# (task, split, metric, header)
GLUE_COLUMNS = (("sst2", "validation", "accuracy", "SST-2"), ("mnli", "validation_matched", "accuracy", "MNLI-m"),
                ("mnli", "validation_mismatched", "accuracy", "MNLI-mm"), ("qqp", "validation", "accuracy", "QQP acc"),
                ("qqp", "validation", "f1", "QQP F1"))


@dataclass(frozen=True)
class Reference:
    model: str
    reported: str
    protocol: str
    source: str


# Read from the model cards' "Evaluation" sections. Neither card reports SQuAD or GLUE, and only the
# base model's reports TriviaQA; the lighteval task definitions (huggingface/smollm, text/evaluation/
# tasks.py) score TriviaQA rc.nocontext by quasi-exact match and multiple choice by normalised likelihood.
REFERENCES: tuple["Reference", ...] = (
    Reference("SmolLM2-135M (base)", "TriviaQA 4.1",
              "zero-shot, lighteval; the base model, not the instruct one run here; bf16 weights, not Q4_1",
              "HuggingFaceTB/SmolLM2-135M model card, Evaluation"),
    Reference("SmolLM2-135M-Instruct", "HellaSwag 40.9; ARC (average) 37.3; PIQA 66.3; MMLU (cloze) 29.3; "
              "IFEval 29.9; BBH (3-shot) 28.2; GSM8K (5-shot) 1.4",
              "zero-shot unless stated, lighteval; no QA or GLUE task is reported; bf16 weights, not Q4_1",
              "HuggingFaceTB/SmolLM2-135M-Instruct model card, Evaluation"),
)


@dataclass
class Row:
    model: str
    mode: str
    results: dict[tuple[str, str], Result]

    def get(self, task: str, split: str) -> Result | None:
        r = self.results.get((task, split))
        return r if r is not None and r.status == "ok" else None

    def metric(self, task: str, split: str, metric: str) -> float | None:
        r = self.get(task, split)
        return r.metrics.get(metric) if r is not None else None


def _rows(results: Iterable[Result], wanted: set[tuple[str, str]], keep) -> list[Row]:
    table: dict[tuple[str, str], Row] = {}
    for r in one_per_cell(results):
        if (r.task, r.split) in wanted and r.is_real and keep(r):
            key = (r.model, row_mode(r))
            table.setdefault(key, Row(*key, {})).results[(r.task, r.split)] = r
    return sorted(table.values(), key=lambda row: (row.model, row.mode))


def qa_rows(results: Iterable[Result]) -> list[Row]:
    """Every real row with a result on one of the QA columns."""
    return _rows(results, {(t, s) for t, s, _h in QA_COLUMNS}, lambda r: True)


def glue_rows(results: Iterable[Result]) -> list[Row]:
    """Generative models on GLUE (zero- and few-shot prompting; fine-tuned encoders are in transfer.md)."""
    return _rows(results, {(t, s) for t, s, _m, _h in GLUE_COLUMNS}, lambda r: r.adapter in PROMPTED)


def _pair(row: Row, task: str, split: str) -> str:
    r = row.get(task, split)
    if r is None:
        return "—"
    return " / ".join(f"{r.metrics.get(m, float('nan')):.1f}{_sd(r, m)}" for m in ("exact_match", "f1"))


def _sd(r: Result, metric: str) -> str:
    """' ± 1.2' for a mean over seeds, whose spread stands where one run's interval would."""
    summary = seed_summary(r)
    return f" ± {summary.sd[metric]:.1f}" if summary and metric in summary.sd else ""


def _ci(r: Result | None, metric: str) -> str:
    if r is None or metric not in r.ci95:
        return f" ({_sd(r, metric).strip()} over seeds)" if r is not None and _sd(r, metric) else ""
    lo, hi = r.ci95[metric]
    return f" ({lo:.1f}–{hi:.1f})"


def _seed_cells(rows: Sequence[Row]) -> list[tuple[str, Result]]:
    return [(f"{escape_cell(row.model)} ({escape_cell(row.mode)}) {escape_cell(r.column)}", r) for row in rows
            for r in row.results.values()]


def gap(row: Row) -> float | None:
    """F1 with the passage minus F1 without it, on the same questions (None unless both ran on one set)."""
    with_ctx, without = row.get("squad", "validation"), row.get("squad_closed_book", "validation")
    if with_ctx is None or without is None or with_ctx.data.num_examples != without.data.num_examples:
        return None
    return with_ctx.metrics["f1"] - without.metrics["f1"]


def _counts(row: Row, splits: Iterable[tuple[str, str]]) -> str:
    """Examples scored per (task, split), in order: '1,000 / 1,000 / —'."""
    counts = []
    for task, split in splits:
        r = row.get(task, split)
        counts.append(f"{r.data.num_examples:,}" if r is not None else "—")
    return " / ".join(counts)


def _seconds_per_question(row: Row) -> str:
    out = []
    for task, split, _h in QA_COLUMNS:
        r = row.get(task, split)
        e = r.efficiency if r is not None else None
        out.append(f"{e.eval_seconds / max(r.data.num_examples, 1):.2f}" if e and e.eval_seconds else "—")
    return " / ".join(out)


def _averaged(rows: Sequence[Row]) -> bool:
    return any((summary := seed_summary(r)) and len(summary.seeds) > 1 for row in rows for r in row.results.values())


def _qa_table(rows: Sequence[Row]) -> list[str]:
    spread = ", or ± sd of a mean over seeds" if _averaged(rows) else ""
    header = ["Model", "Mode"] + [f"{h} EM / F1" for *_x, h in QA_COLUMNS] + [
        f"F1 gain from the passage (95% CI of each F1{spread})", "Questions (SQuAD / closed-book / TriviaQA)",
        "Seconds per question (same order)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for row in rows:
        g = gap(row)
        cis = _ci(row.get("squad", "validation"), "f1") + " vs" + _ci(row.get("squad_closed_book", "validation"), "f1")
        cells = [escape_cell(row.model), escape_cell(row.mode)] + [_pair(row, t, s) for t, s, _h in QA_COLUMNS] + \
                [f"{g:+.1f}{cis}" if g is not None else "—", _counts(row, ((t, s) for t, s, _h in QA_COLUMNS)),
                 _seconds_per_question(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _glue_table(rows: Sequence[Row]) -> list[str]:
    header = ["Model", "Mode"] + [h for *_x, h in GLUE_COLUMNS] + ["Examples (SST-2 / MNLI-m / MNLI-mm / QQP)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for row in rows:
        scores = []
        for task, split, metric, _h in GLUE_COLUMNS:
            value = row.metric(task, split, metric)
            scores.append("—" if value is None else f"{value:.1f}{_ci(row.get(task, split), metric)}")
        counts = _counts(row, dict.fromkeys((t, s) for t, s, _m, _h in GLUE_COLUMNS))
        lines.append("| " + " | ".join([escape_cell(row.model), escape_cell(row.mode)] + scores + [counts]) + " |")
    return lines


def markdown(results: Iterable[Result], notes: Iterable[str] = (), references: Sequence[Reference] = REFERENCES) -> str:
    results = list(results)
    lines = ["# Context-based against closed-book QA", "",
             "Every number was made by the harness on `../shared/data` and is backed by the Result records in "
             "`results/`. EM and F1 are SQuAD's official normalisation, the best over every reference answer "
             "(TriviaQA: every alias). A mode's suffix is the prompt format: `K-shot` puts K solved train "
             "examples before each question, `no chat template` sends plain text instead of the instruct model's "
             "chat turns. The SQuAD with-passage and closed-book cells of one row are the same questions.", ""]
    rows = qa_rows(results)
    if rows:
        lines += ["## Question answering", ""] + _qa_table(rows) + ["", f"![F1 by QA setting]({PLOT_FILE})", ""]
    grows = glue_rows(results)
    if grows:
        lines += ["## The same prompts on GLUE (label ranking)", "",
                  "Classification by the log-likelihood of each label's words after the prompt (lm-eval's GLUE "
                  "prompts), 95% bootstrap CIs in brackets. Chance is 50 on SST-2 and QQP and 33 on MNLI.", ""]
        lines += _glue_table(grows) + [""]
    for note in seed_sentences(dict(_seed_cells(rows) + _seed_cells(grows)).items()):
        lines += [note, ""]
    if references:
        lines += ["## Published references", "", "Each with its own protocol; none is one of our tasks as we run it.",
                  "", "| Model | Reported | Protocol | Source |", "|---|---|---|---|"]
        lines += [f"| {escape_cell(r.model)} | {escape_cell(r.reported)} | {escape_cell(r.protocol)} | "
                  f"{escape_cell(r.source)} |" for r in references] + [""]
    notes = list(notes)
    if notes:
        lines += ["## How these numbers were made", ""] + [f"- {escape_cell(n)}" for n in notes] + [""]
    return "\n".join(lines)


def figure_png(rows: Sequence[Row]) -> bytes:
    """F1 per QA setting, one group of bars per row that ran a generative setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [row for row in rows if any(row.get(t, s) for t, s, _h in QA_COLUMNS[1:])]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(shown) + 2), 4.2), dpi=110)
    width = 0.8 / len(QA_COLUMNS)
    for k, (task, split, header) in enumerate(QA_COLUMNS):
        xs, ys, errs = [], [], [[], []]
        for i, row in enumerate(shown):
            r = row.get(task, split)
            if r is None:
                continue
            f1 = r.metrics["f1"]
            summary = seed_summary(r)
            sd = summary.sd.get("f1", 0.0) if summary else 0.0
            lo, hi = r.ci95.get("f1", [f1 - sd, f1 + sd])  # a mean over seeds: ± their sd
            xs.append(i + (k - 1) * width)
            ys.append(f1)
            errs[0].append(f1 - lo)
            errs[1].append(hi - f1)
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=header)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([f"{row.model.split('/')[-1]}\n{row.mode}" for row in shown], fontsize=8)
    ax.set_ylabel("F1 (95% CI; ± sd for a mean over seeds)" if _averaged(shown) else "F1 (95% CI)")
    ax.set_title("The same questions with and without the passage")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    png = _png_bytes(fig, dpi=fig.dpi)
    plt.close(fig)
    return png


def render_files(results: Iterable[Result], notes: Iterable[str] = (),
                 references: Sequence[Reference] = REFERENCES) -> dict[str, bytes]:
    """qa-modes.md and its plot, when the record holds a generative or closed-book QA result; else nothing."""
    results = list(results)
    rows = qa_rows(results)
    if not any(r.adapter in PROMPTED or r.task == "squad_closed_book" for row in rows for r in row.results.values()):
        return {}
    return {TABLE_FILE: markdown(results, notes, references).encode("utf-8"), PLOT_FILE: figure_png(rows)}
