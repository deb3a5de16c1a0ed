"""One feature builder per task kind, shared by training and evaluation.

A model must be trained on the inputs it is evaluated on, so the text a model reads is built in
one place: the question of an extractive-QA example is every input except the context, joined
and clipped to the question budget, whether the window is for training or for scoring. The
`*_features` functions add the training targets to exactly those inputs.

Tokenizers are duck-typed (Hugging Face fast tokenizers); nothing heavy is imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from ..tasks import TaskSpec

Rows = Sequence[Mapping[str, Any]]


# ---------------------------------------------------------------------------------------
# the text a model reads, by task kind
def question_and_context(task: "TaskSpec", row: Mapping[str, Any]) -> tuple[str, str]:
    """Extractive QA: (every input but the context, joined by spaces; the context)."""
    texts = task.texts(row)
    where = task.inputs.index("context")
    return " ".join(x for i, x in enumerate(texts) if i != where), texts[where]


def clip_questions(tokenizer: Any, questions: list[str], budget: int) -> list[str]:
    """Cut questions to `budget` tokens, so every window keeps room for context (BERT's SQuAD recipe)."""
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [q if len(offs) <= budget else q[:offs[budget - 1][1]] for q, offs in zip(questions, enc["offset_mapping"])]


def text_inputs(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int, token_types: bool | None) -> Any:
    """Classification: one text or a pair per row, truncated, unpadded."""
    columns = [list(col) for col in zip(*(task.texts(r) for r in rows))]
    return tokenizer(*columns, truncation=True, max_length=max_length, padding=False,
                     return_token_type_ids=token_types)


def text_columns(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int,
                 token_types: bool | None) -> list[Any]:
    """Classification, feature-based: each input text tokenised on its own, one encoding per input."""
    columns = [list(col) for col in zip(*(task.texts(r) for r in rows))]
    return [tokenizer(col, truncation=True, max_length=max_length, padding=False, return_token_type_ids=token_types)
            for col in columns]


def qa_windows(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int, doc_stride: int,
               question_tokens: int, token_types: bool | None) -> tuple[Any, list[str]]:
    """Extractive QA: (clipped question + context windows overlapping by `doc_stride`, the contexts)."""
    pairs = [question_and_context(task, r) for r in rows]
    questions = clip_questions(tokenizer, [q for q, _ in pairs], question_tokens)
    contexts = [c for _, c in pairs]
    enc = tokenizer(questions, contexts, truncation="only_second", max_length=max_length, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=False,
                    return_token_type_ids=token_types)
    return enc, contexts


def seq2seq_inputs(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int) -> Any:
    """Text-to-text: the task template filled per row, truncated."""
    return tokenizer([task.render(r) for r in rows], truncation=True, max_length=max_length)


# ---------------------------------------------------------------------------------------
# training features: the same inputs plus targets
def _model_inputs(enc: Any, i: int) -> dict[str, Any]:
    return {k: enc[k][i] for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc}


def classification_features(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int,
                            token_types: bool | None) -> list[dict[str, Any]]:
    enc = text_inputs(tokenizer, task, rows, max_length=max_length, token_types=token_types)
    return [{**_model_inputs(enc, i), "labels": task.label_index(r)} for i, r in enumerate(rows)]


def qa_features(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int, doc_stride: int,
                question_tokens: int, token_types: bool | None) -> list[dict[str, Any]]:
    """SQuAD-style windows; a window that does not hold the (first) answer points at token 0."""
    enc, _ = qa_windows(tokenizer, task, rows, max_length=max_length, doc_stride=doc_stride,
                        question_tokens=question_tokens, token_types=token_types)
    features = []
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        row = rows[sample]
        answers = task.answer_list(row)
        starts = task.answer_starts(row) or []
        start_pos = end_pos = 0
        if answers and starts:
            char_start, char_end = starts[0], starts[0] + len(answers[0])
            seq = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            tokens = [t for t, s in enumerate(seq) if s == 1]
            if tokens and offsets[tokens[0]][0] <= char_start and offsets[tokens[-1]][1] >= char_end:
                start_pos = next(t for t in tokens if offsets[t][1] > char_start)
                end_pos = next(t for t in reversed(tokens) if offsets[t][0] < char_end)
        features.append({**_model_inputs(enc, i), "start_positions": start_pos, "end_positions": end_pos})
    return features


def seq2seq_features(tokenizer: Any, task: "TaskSpec", rows: Rows, *, max_length: int) -> list[dict[str, Any]]:
    """Text-to-text targets: the label name for classification, the first answer for QA."""
    if task.kind == "classification":
        targets = [task.labels[task.label_index(r)] for r in rows]
    else:
        targets = [task.answer_list(r)[0] for r in rows]
    enc = seq2seq_inputs(tokenizer, task, rows, max_length=max_length)
    labels = tokenizer(text_target=targets, truncation=True, max_length=max(task.max_new_tokens, 2) * 4)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "labels": labels["input_ids"][i]} for i in range(len(rows))]
