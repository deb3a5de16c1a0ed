"""One feature builder per task kind, shared by training and evaluation.

A model must be trained on the inputs it is evaluated on, so the text a model reads is built in
one place: the question of an extractive-QA example is every input except the context, joined
and clipped to the question budget, whether the window is for training or for scoring. The
`*_features` functions add the training targets to exactly those inputs.

Tokenizers are duck-typed (Hugging Face fast tokenizers); nothing heavy is imported here.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ..errors import UserError

if TYPE_CHECKING:
    from ..tasks import TaskSpec

Rows = Sequence[Mapping[str, Any]]
CHECK_ROWS = 16  # rows encoded both ways before the backend's own call is trusted (`encode_ids`)


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
    return _wrapper_call(tokenizer, input_columns(task, rows), max_length, token_types)


def _wrapper_call(tokenizer: Any, columns: Sequence[Sequence[str]], max_length: int, token_types: bool | None) -> Any:
    """transformers' own call: the reference that `encode_ids` must equal."""
    return tokenizer(*[list(c) for c in columns], truncation=True, max_length=max_length, padding=False,
                     return_token_type_ids=token_types)


def input_columns(task: "TaskSpec", rows: Rows) -> list[list[str]]:
    """The task's input texts as columns: one list per input, one entry per row."""
    return [list(col) for col in zip(*(task.texts(r) for r in rows))]


def encode_ids(tokenizer: Any, columns: Sequence[Sequence[str]], *, max_length: int,
               token_types: bool) -> tuple[list[list[int]], list[list[int]] | None]:
    """Token ids (and type ids) of one text or a pair per row, truncated, unpadded: what
    `tokenizer(*columns, truncation=True, max_length=...)` gives, made faster for scoring.

    The fast tokenizer's Rust backend encodes the batch in one call without offsets, and the ids come
    straight off its encodings: transformers' wrapper turns each encoding into Python dicts, which took
    as long as the encoding itself (10,000 SST-2 sentences, one thread). The first CHECK_ROWS rows are
    encoded both ways; a tokenizer whose wrapper does more than its backend keeps the wrapper.

    Type ids come back as None when not asked for, and also when every one of them is 0 (single texts
    with BERT-style templates): the collator then makes one zero array per batch instead of padding a
    list per row, a single-threaded cost that parallel tokenisation does not shrink."""
    if not columns or not columns[0]:
        return [], None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast") and len(columns) <= 2:
        pairs = columns[0] if len(columns) == 1 else list(zip(*columns))
        with _plain_backend(tokenizer, backend, max_length):  # the wrapper's call below sets it again
            encodings = backend.encode_batch_fast(list(pairs), add_special_tokens=True)
            ref = _wrapper_call(tokenizer, [c[:CHECK_ROWS] for c in columns], max_length, token_types)
        ids = [e.ids for e in encodings]
        types = [e.type_ids for e in encodings] if token_types else None
        if ref["input_ids"] == ids[:CHECK_ROWS] and (types is None or ref["token_type_ids"] == types[:CHECK_ROWS]):
            return ids, _unless_all_zero(types)
    enc = _wrapper_call(tokenizer, columns, max_length, token_types)
    return enc["input_ids"], _unless_all_zero(enc["token_type_ids"]) if token_types else None


def _unless_all_zero(types: list[list[int]] | None) -> list[list[int]] | None:
    return types if types is not None and any(map(any, types)) else None


@contextlib.contextmanager
def _plain_backend(tokenizer: Any, backend: Any, max_length: int) -> Iterator[None]:
    """The backend set as transformers sets it for `truncation=True, padding=False`, then put back."""
    truncation, padding = backend.truncation, backend.padding
    backend.enable_truncation(max_length, stride=0, strategy="longest_first",
                              direction=getattr(tokenizer, "truncation_side", "right"))
    backend.no_padding()
    try:
        yield
    finally:
        if truncation is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)


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
    """SQuAD-style windows; a window that does not hold the answer (`task.answer_span`) points at token 0."""
    enc, _ = qa_windows(tokenizer, task, rows, max_length=max_length, doc_stride=doc_stride,
                        question_tokens=question_tokens, token_types=token_types)
    features = []
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        row = rows[sample]
        span = task.answer_span(row)
        start_pos = end_pos = 0
        if span:
            char_start, char_end = span
            seq = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            tokens = [t for t, s in enumerate(seq) if s == 1]
            if tokens and offsets[tokens[0]][0] <= char_start and offsets[tokens[-1]][1] >= char_end:
                start_pos = next(t for t in tokens if offsets[t][1] > char_start)
                end_pos = next(t for t in reversed(tokens) if offsets[t][0] < char_end)
        features.append({**_model_inputs(enc, i), "start_positions": start_pos, "end_positions": end_pos})
    if not any(f["start_positions"] for f in features):  # training on "no answer" alone would say nothing
        raise UserError(f"{task.name}: no train example has its answer in its context (found at "
                        f"{task.answers.rpartition('.')[0] or 'answers'}.answer_start, else by the answer text); "
                        "check the train split's answers")
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
