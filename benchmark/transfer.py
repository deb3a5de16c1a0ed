"""The transfer-learning study: every (model, mode) of the record on GLUE and SQuAD beside the
published references, with what each costs (labelled data, train time, size, speed) and the SST-2
learning curve. Rendered from Result records alone, like every other published table.

The reference numbers were read from the cited papers and READMEs; each keeps its own protocol
(which split, which metric, which training data), stated in its row, because several differ from ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from . import curve
from .leaderboard import cell_text, escape_cell, format_params, seed_sentences
from .results import Result, is_prompted, labelled_examples, one_per_cell, row_mode, train_cost_seconds
from .tasks import TaskSpec

TABLE_FILE = "transfer.md"
CURVE_FILE = "transfer-curve.png"
NOTES_FILE = "transfer.notes"
CURVE_TASK, CURVE_SPLIT, CURVE_TARGET = "sst2", "validation", 80.0
TASK_ORDER = ("sst2", "mnli", "qqp", "squad")
# (task, split, metric, header)
COLUMNS = (("sst2", "validation", "accuracy", "SST-2"), ("mnli", "validation_matched", "accuracy", "MNLI-m"),
           ("mnli", "validation_mismatched", "accuracy", "MNLI-mm"), ("qqp", "validation", "accuracy", "QQP acc"),
           ("qqp", "validation", "f1", "QQP F1"), ("squad", "validation", "exact_match", "SQuAD EM"),
           ("squad", "validation", "f1", "SQuAD F1"))
MODE_ORDER = {"scratch": 0, "zero-shot": 1, "frozen": 2, "finetune": 3}


@dataclass(frozen=True)
class Reference:
    name: str
    scores: str        # as the source reports them
    protocol: str
    source: str


REFERENCES = (
    Reference("BiLSTM, single-task", "SST-2 87.5; MNLI 66.7; QQP 85.3 acc / 82.0 F1",
              "GloVe, trained from scratch on the full train sets; dev; MNLI is the mean of m and mm",
              "Wang et al. 2018, GLUE, Table 6"),
    Reference("BiLSTM + ELMo, single-task", "SST-2 91.5; MNLI 68.6; QQP 88.0 acc / 84.3 F1",
              "ELMo features under a BiLSTM; full train sets; dev", "Wang et al. 2018, GLUE, Table 6"),
    Reference("MiniLM-L6×H384", "SST-2 91.5; MNLI-m 83.3; QQP 90.6",
              "fine-tuned on the full train sets; dev; Microsoft's own MiniLM checkpoint, not the "
              "sentence-transformers one run here (that one was further trained on sentence pairs)",
              "microsoft/unilm, minilm/README.md"),
    Reference("DistilBERT (66M)", "SST-2 91.3; MNLI 82.2; QQP 88.5; SQuAD v1.1 EM 77.7 / F1 85.8",
              "fine-tuned on the full train sets (SQuAD: 87,599 questions); dev",
              "Sanh et al. 2019, DistilBERT, Tables 1 and 2"),
    Reference("BERT-base (110M)", "SST-2 92.7; MNLI 86.7; QQP 89.6; SQuAD v1.1 EM 81.2 / F1 88.5",
              "fine-tuned on the full train sets; dev", "Sanh et al. 2019, DistilBERT, Tables 1 and 2"),
    Reference("Averaged BERT embeddings", "SST 84.40",
              "frozen features + logistic regression (SentEval); SentEval's SST split, not GLUE's",
              "Reimers & Gurevych 2019, SBERT, Table 5"),
    Reference("SBERT-NLI-base", "SST 88.96", "frozen features + logistic regression (SentEval), as above",
              "Reimers & Gurevych 2019, SBERT, Table 5"),
)


@dataclass
class StudyRow:
    model: str
    mode: str
    results: dict[tuple[str, str], Result]

    def score(self, task: str, split: str, metric: str) -> float | None:
        r = self.results.get((task, split))
        return r.metrics.get(metric) if r is not None and r.status == "ok" else None

    def first(self, task: str) -> Result | None:
        return next((r for (t, _s), r in sorted(self.results.items()) if t == task), None)

    def train_seconds(self) -> float | None:
        """Supervised training of every task (frozen: the features plus the probe) and any pre-training once."""
        per_task = [train_cost_seconds(r) for r in map(self.first, TASK_ORDER) if r is not None]
        pretrain = max((r.efficiency.pretrain_seconds or 0.0 for r in self.results.values()), default=0.0)
        total = sum(per_task) + pretrain
        return total or None


def rows(results: Iterable[Result]) -> list[StudyRow]:
    table: dict[tuple[str, str], StudyRow] = {}
    wanted = {(t, s) for t, s, _m, _h in COLUMNS}
    for r in one_per_cell(results):
        if (r.task, r.split) in wanted and r.is_real and not is_prompted(r):
            table.setdefault((r.model, row_mode(r)), StudyRow(r.model, row_mode(r), {})).results[(r.task, r.split)] = r
    return sorted(table.values(), key=lambda row: (row.model, MODE_ORDER.get(row.mode, 9), row.mode))


def _num(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _sizes(row: StudyRow) -> str:
    out = []
    for task in TASK_ORDER:
        r = row.first(task)
        n = labelled_examples(r) if r is not None else None
        out.append(f"{n:,}" if n else "—")
    return " / ".join(out)


def _main_table(study: Sequence[StudyRow]) -> list[str]:
    header = ["Model", "Mode"] + [h for *_x, h in COLUMNS] + [
        "Labelled train examples (SST-2 / MNLI / QQP / SQuAD)", "Train time, all tasks",
        "Params total / trainable (SST-2)", "Latency p50 bs 1 (SST-2, ms)", "Throughput (SST-2, ex/s)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for row in study:
        sst2 = row.results.get(("sst2", "validation"))
        e = sst2.efficiency if sst2 is not None else None
        latency = (e.latency_ms or {}).get("p50") if e is not None else None
        cells = [escape_cell(row.model), escape_cell(row.mode)] + \
                [cell_text(row.results.get((t, s)), m) for t, s, m, _h in COLUMNS] + \
                [_sizes(row), _minutes(row.train_seconds()),
                 f"{format_params(e.num_parameters)} / {format_params(e.trainable_parameters)}" if e else "—",
                 _num(latency), _num(e.throughput_per_s, ",.0f") if e and e.throughput_per_s else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _training_table(study: Sequence[StudyRow]) -> list[str]:
    """The fine-tuning runs' throughput: real tokens per second against the training FLOP floor."""
    body = []
    for row in study:
        for task in TASK_ORDER:
            r = row.first(task)
            block = r.efficiency.training if r is not None else None
            if not block:
                continue
            floor = block.get("floor_fraction")
            body.append("| " + " | ".join([
                escape_cell(row.model), escape_cell(row.mode), task, f"{block['examples']:,}",
                f"{block['real_tokens']:,}", f"{block['padding']:.2f}", f"{block['tokens_per_s']:,.0f}",
                _num(block.get("matrix_gflops")), "—" if floor is None else f"{100 * floor:.0f}%",
                "yes" if block.get("length_grouping") else "no"]) + " |")
    if not body:
        return []
    return ["## Fine-tuning throughput", "",
            "Real tokens are the input tokens before padding, summed over every epoch; padding is the positions "
            "computed per real token. The floor is 6 × non-embedding parameters × real tokens at the fp32 matrix "
            "rate measured right after training, on the same machine.", "",
            "| Model | Mode | Task | Examples seen | Real tokens | Padding | Tokens/s | Matrix GFLOP/s | "
            "Share of the FLOP floor | Length-grouped |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"] + body + [""]


def _curve(results: Sequence[Result]) -> list[curve.Line]:
    return [ln for ln in curve.lines(results, CURVE_TASK, CURVE_SPLIT, "accuracy") if len(ln.points) > 1]


def markdown(results: Iterable[Result], tasks: Mapping[str, TaskSpec], notes: Iterable[str] = ()) -> str:
    results = list(results)
    study = rows(results)
    lines = ["# Transfer learning: from scratch, frozen features, fine-tuned", "",
             "Every row was made by the harness on `../shared/data` and is backed by the Result records in "
             "`results/`. SST-2 train is complete (67,349 sentences); MNLI and QQP train are 10k-pair random "
             "subsets (about 40 times less than the full sets the references used); SQuAD train is the first 11 "
             "articles (3,807 questions). Every dev set is complete. Train time: supervised training of all "
             "tasks, for frozen rows the backbone's one pass over the train split plus the probe, and any "
             "pre-training once.", ""]
    lines += _main_table(study) + [""]
    for note in seed_sentences((f"{escape_cell(row.model)} ({escape_cell(row.mode)}) {escape_cell(r.column)}", r)
                               for row in study for r in row.results.values()):
        lines += [note, ""]
    lines += ["## Published references", "",
              "Each with its own protocol; read them beside ours with the differences in mind.", "",
              "| Model | Reported | Protocol | Source |", "|---|---|---|---|"]
    lines += [f"| {escape_cell(r.name)} | {escape_cell(r.scores)} | {escape_cell(r.protocol)} | "
              f"{escape_cell(r.source)} |" for r in REFERENCES] + [""]
    lines += _training_table(study)
    sst2_curve = _curve(results)
    if CURVE_TASK in tasks and sst2_curve:
        lines.append(curve.markdown(sst2_curve, tasks[CURVE_TASK], CURVE_SPLIT, "accuracy", CURVE_TARGET, CURVE_FILE,
                                    heading="##"))
    notes = list(notes)
    if notes:
        lines += ["## How these numbers were made", ""] + [f"- {escape_cell(n)}" for n in notes] + [""]
    return "\n".join(lines)


def render_files(results: Iterable[Result], tasks: Mapping[str, TaskSpec], notes: Iterable[str] = ()) -> dict[str, bytes]:
    """transfer.md and the SST-2 learning-curve PNG (when the record has a curve), or nothing."""
    results = list(results)
    if not rows(results):
        return {}
    files = {TABLE_FILE: markdown(results, tasks, notes).encode("utf-8")}
    sst2_curve = _curve(results)
    if sst2_curve and CURVE_TASK in tasks:
        files[CURVE_FILE] = curve.figure_png(sst2_curve, tasks[CURVE_TASK], CURVE_SPLIT, "accuracy", CURVE_TARGET)
    return files
