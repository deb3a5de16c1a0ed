"""The encoder adapter on tiny BERT / DistilBERT checkpoints saved in tmp folders (offline)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub

import json
import random
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmark import sample
from benchmark.errors import ModelError, UserError
from benchmark.models import hf
from benchmark.models.encoder import EncoderAdapter, Encoded, QAExample, map_head_labels, parse_label_map
from benchmark.tasks import discover
from helpers import evaluate_rows, predict_in_batches, ready, split_of

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128)
FILLER = ("the river flows past old mills while farmers count sheep and merchants trade salt in the square "
          "before the long winter arrives at the valley").split()
LONG_CONTEXT = " ".join(FILLER * 2) + " Zebra harbours hold amber quokka lanterns. " + " ".join(FILLER * 3)


# ---------------------------------------------------------------------------------------
# fixtures: tasks, one tokenizer, tiny checkpoints on disk
@pytest.fixture(scope="module")
def tasks():
    catalog = discover(entry_points=False)
    return {name: catalog.tasks[name] for name in ("sst2", "qqp", "mnli", "squad")}


@pytest.fixture(scope="module")
def rows(tasks):
    out = {name: sample.generate(spec, spec.dataset.eval[0].split, size=40) for name, spec in tasks.items()}
    out["squad"] += [
        {"id": "long", "title": "t", "question": "What do zebra harbours hold?", "context": LONG_CONTEXT,
         "answers": {"text": ["amber quokka lanterns"], "answer_start": [LONG_CONTEXT.index("amber")]}},
        {"id": "uni", "title": "t", "question": "Who drank café?",
         "context": "Zoë Łukasz — café über naïve 東京.",
         "answers": {"text": ["Zoë Łukasz"], "answer_start": [0]}},
    ]
    return out


@pytest.fixture(scope="module")
def tokenizer(tasks, rows):
    texts = [t for name, spec in tasks.items() for r in rows[name] for t in spec.texts(r)]
    texts += [t for r in sample.generate(tasks["sst2"], "train", size=200) for t in tasks["sst2"].texts(r)]
    return hf.train_tokenizer(texts, family="wordpiece", vocab_size=3000)


@pytest.fixture(scope="module")
def build(tmp_path_factory, tokenizer):
    """build(kind, id2label=None, arch='bert', bias=None) -> folder of a saved tiny checkpoint."""
    from transformers import (BertConfig, BertForQuestionAnswering, BertForSequenceClassification,
                              DistilBertConfig, DistilBertForQuestionAnswering,
                              DistilBertForSequenceClassification)

    classes = {("bert", "cls"): BertForSequenceClassification, ("bert", "qa"): BertForQuestionAnswering,
               ("distilbert", "cls"): DistilBertForSequenceClassification,
               ("distilbert", "qa"): DistilBertForQuestionAnswering}
    cache: dict[str, str] = {}

    def make(kind: str, id2label: dict[int, str] | None = None, arch: str = "bert", bias=None) -> str:
        key = json.dumps([kind, id2label, arch, bias])
        if key in cache:
            return cache[key]
        labels = {} if id2label is None else {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}
        if arch == "bert":
            config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **TINY, **labels)
        else:
            config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                      max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, **labels)
        torch.manual_seed(0)
        model = classes[arch, kind](config).eval()
        if bias is not None:  # one head output always wins
            with torch.no_grad():
                model.classifier.weight.zero_()
                model.classifier.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        folder = tmp_path_factory.mktemp(f"{arch}-{kind}")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        cache[key] = str(folder)
        return cache[key]

    return make


def fitted(folder: str, task, train=None, **options) -> EncoderAdapter:
    return ready(EncoderAdapter(folder, options=options), task, train)


predict_all = predict_in_batches


# ---------------------------------------------------------------------------------------
# classification
def test_single_sentence_classification(build, tasks, rows):
    task = tasks["sst2"]
    adapter = fitted(build("cls"), task)
    items = adapter.encode(task, rows["sst2"])
    preds = adapter.predict(task, items)
    assert len(preds) == len(items) == 40 and all(p in (0, 1) for p in preds)
    assert all(isinstance(p, int) for p in preds)
    assert adapter.fitted_.mode == "zero-shot" and adapter.weights() == "pretrained" and adapter.dtype() == "fp32"
    assert adapter.length(items[0]) == len(items[0].input_ids) > 2
    assert adapter.parameter_counts() == hf.count_parameters(adapter.model_)
    assert adapter.max_length_ == 128  # the tiny model's position limit, below the 512 default
    assert adapter.revision().startswith("sha256:") and len(adapter.revision()) == 19


def test_single_sentences_collate_the_tokenizers_own_inputs(build, tasks, rows):
    """A single sentence's type ids are all 0, so the items carry none and the collated batch gets one
    zero array: every tensor equals what transformers' padded call makes of the same sentences."""
    task = tasks["sst2"]
    adapter = fitted(build("cls"), task)
    items = adapter.encode(task, rows["sst2"])
    assert adapter.use_token_types_ and all(it.token_type_ids is None for it in items)
    batch = adapter._tensors(items)
    want = adapter.tokenizer_([r["sentence"] for r in rows["sst2"]], truncation=True, max_length=adapter.max_length_,
                              padding=True, return_token_type_ids=True, return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    for key, tensor in batch.items():
        assert tensor.dtype == torch.int64 and torch.equal(tensor, want[key]), key


@pytest.mark.parametrize("kind", [list, np.asarray])
def test_padding_rows_of_lists_or_arrays(kind):
    values, mask = hf.padded([kind([5, 6, 7]), kind([8]), kind([])], fill=0)
    assert values.dtype == mask.dtype == np.int64
    assert values.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert hf.padded([kind([]), kind([])], fill=3)[0].shape == (2, 0)


def test_sentence_pair_classification_bert_uses_segments(build, tasks, rows):
    task = tasks["qqp"]
    adapter = fitted(build("cls", {0: "Not Duplicate", 1: "DUPLICATE"}), task)
    items = adapter.encode(task, rows["qqp"])
    assert adapter.use_token_types_ and set(items[0].token_type_ids) == {0, 1}
    assert all(p in (0, 1) for p in adapter.predict(task, items))


def test_sentence_pair_classification_distilbert(build, tasks, rows):
    task = tasks["qqp"]
    folder = build("cls", {0: "not_duplicate", 1: "duplicate"}, arch="distilbert", bias=[0.0, 5.0])
    adapter = fitted(folder, task)
    items = adapter.encode(task, rows["qqp"])
    assert not adapter.use_token_types_ and items[0].token_type_ids is None
    assert adapter.predict(task, items) == [1] * len(items)


@pytest.mark.parametrize("bias, expected", [([0.0, 0.0, 5.0], "entailment"), ([5.0, 0.0, 0.0], "contradiction"),
                                            ([0.0, 5.0, 0.0], "neutral")])
def test_labels_are_mapped_by_name_not_position(build, tasks, rows, bias, expected):
    task = tasks["mnli"]  # entailment, neutral, contradiction
    folder = build("cls", {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, bias=bias)
    adapter = fitted(folder, task)
    assert adapter.label_ids_ == [2, 1, 0]
    preds = adapter.predict(task, adapter.encode(task, rows["mnli"][:8]))
    assert preds == [task.labels.index(expected)] * 8


def test_generic_label_names_fall_back_to_position(build, tasks, rows):
    task = tasks["sst2"]
    adapter = fitted(build("cls", {0: "LABEL_0", 1: "LABEL_1"}, bias=[0.0, 5.0]), task)
    assert adapter.predict(task, adapter.encode(task, rows["sst2"][:5])) == [1] * 5


def test_unmatched_head_labels_are_a_user_error(build, tasks):
    with pytest.raises(UserError, match="--label-map") as err:
        fitted(build("cls", {0: "neg", 1: "pos"}), tasks["sst2"])
    assert "neg, pos" in str(err.value) and "negative, positive" in str(err.value)
    with pytest.raises(UserError, match="--label-map"):  # generic, but the wrong size
        fitted(build("cls", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}), tasks["sst2"])


@pytest.mark.parametrize("label_map, expected", [({"neg": "negative", "pos": "positive"}, 1),
                                                 ("NEG=negative, pos=Positive", 1),
                                                 ({"0": "positive", "1": "negative"}, 0)])
def test_label_map_option_overrides(build, tasks, rows, label_map, expected):
    task = tasks["sst2"]
    adapter = fitted(build("cls", {0: "neg", 1: "pos"}, bias=[0.0, 5.0]), task, label_map=label_map)
    assert adapter.predict(task, adapter.encode(task, rows["sst2"][:4])) == [expected] * 4


def test_label_map_merging_head_outputs(build, tasks, rows):
    """A 3-way NLI head scored on a 2-way task: the best mapped output decides."""
    task = tasks["qqp"]
    folder = build("cls", {0: "entailment", 1: "neutral", 2: "contradiction"}, bias=[0.0, 1.0, 5.0])
    adapter = fitted(folder, task, label_map="entailment=duplicate,neutral=not_duplicate,contradiction=not_duplicate")
    assert adapter.predict(task, adapter.encode(task, rows["qqp"][:3])) == [0, 0, 0]


def test_map_head_labels_rules():
    labels = ("entailment", "neutral", "contradiction")
    assert map_head_labels({0: "CONTRADICTION", 1: "neutral", 2: "Entailment"}, labels) == [2, 1, 0]
    assert map_head_labels({"1": "Not Duplicate", "0": "duplicate"}, ("not_duplicate", "duplicate")) == [1, 0]
    assert map_head_labels({0: "LABEL_0", 1: "LABEL_1"}, ("a", "b")) == [0, 1]
    assert map_head_labels({0: "a", 1: "b", 2: "other"}, ("b", "a")) == [1, 0, -1]  # extra output ignored
    with pytest.raises(UserError, match="no head label 'x'"):
        map_head_labels({0: "a", 1: "b"}, ("a", "b"), {"x": "a"})
    with pytest.raises(UserError, match="not a task label"):
        map_head_labels({0: "a", 1: "b"}, ("a", "b"), {"a": "zzz"})
    with pytest.raises(UserError):
        parse_label_map("a:b")


def test_qa_training_reads_the_inputs_evaluation_reads(build, tasks, rows, tmp_path, monkeypatch):
    """Training windows are evaluation windows: the question is every non-context input, clipped to the
    question budget, in both. (Training once took the first input unclipped: it learned from other text.)"""
    from benchmark.models import training

    task = tasks["squad"]
    long_question = "which of these " + " ".join(FILLER * 4) + " ?"  # far over the 64-token question budget
    train_rows = [dict(r, question=long_question) if i % 2 else r for i, r in enumerate(rows["squad"])]
    seen: dict = {}

    def capture(model, features, collator, budget, **kwargs):
        seen["features"] = features
        return training.TrainStats(seconds=0.0, examples=0, real_tokens=0, padded_tokens=0, flops=None,
                                   matrix_tflops=1.0, budget=budget)

    monkeypatch.setattr(training, "train", capture)
    adapter = EncoderAdapter(build("qa"), mode="finetune", options={"cache_dir": str(tmp_path), "doc_stride": 32})
    adapter.fit(task, split_of(task, train_rows))
    windows = [w for example in adapter.encode(task, train_rows) for w in example.windows]
    assert [list(f["input_ids"]) for f in seen["features"]] == [w.input_ids.tolist() for w in windows]
    assert [list(f["token_type_ids"]) for f in seen["features"]] == [w.token_type_ids.tolist() for w in windows]
    assert max(len(w.input_ids) for w in windows) <= adapter.max_length_


def test_qa_fine_tune_from_a_three_label_classifier_gets_a_start_and_end_head(build, tasks, rows, tmp_path):
    """A hub NLI head (3 labels) fine-tuned on SQuAD: the new QA head has two outputs, not the old three."""
    task = tasks["squad"]
    nli = build("cls", id2label={0: "entailment", 1: "neutral", 2: "contradiction"})
    adapter = EncoderAdapter(nli, mode="finetune", options={"cache_dir": str(tmp_path), "epochs": 1,
                                                            "max_train_examples": 8})
    adapter.fit(task, split_of(task, rows["squad"]))
    assert adapter.model_.qa_outputs.out_features == 2
    preds = predict_all(adapter, task, adapter.encode(task, rows["squad"][:4]), 4)
    assert all(isinstance(p, str) for p in preds)


@pytest.fixture(scope="module")
def gpt2_classifier(tmp_path_factory, tasks, rows):
    """A decoder-only classifier whose tokenizer has no pad token, as GPT-2's has none."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    words = sorted({w for r in sample.generate(tasks["sst2"], "train") for w in r["sentence"].lower().split()})
    vocab = {"<|endoftext|>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", unk_token="<unk>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    folder = tmp_path_factory.mktemp("gpt2-cls")
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert tokenizer.pad_token is None and config.pad_token_id is None
    return str(folder)


def test_a_decoder_only_classifier_runs_batched_and_pools_its_last_token(gpt2_classifier, tasks, rows, tmp_path):
    task = tasks["sst2"]
    adapter = fitted(gpt2_classifier, task)
    items = adapter.encode(task, rows["sst2"])
    assert predict_all(adapter, task, items, 16) == predict_all(adapter, task, items, 1)  # no padding leaks in
    frozen = EncoderAdapter(gpt2_classifier, mode="frozen")
    frozen.fit(task, split_of(task, sample.generate(task, "train", size=40)))
    assert frozen.pooling_ == "last"  # the first token of a causal model has seen nothing after it
    tuned = EncoderAdapter(gpt2_classifier, mode="finetune", options={"cache_dir": str(tmp_path), "epochs": 1,
                                                                      "max_train_examples": 16})
    tuned.fit(task, split_of(task, sample.generate(task, "train", size=40)))
    assert len(predict_all(tuned, task, tuned.encode(task, rows["sst2"]), 8)) == len(rows["sst2"])


def test_xlnet_runs_frozen_only_since_its_head_needs_left_padding(tmp_path, tokenizer, tasks):
    from transformers import XLNetConfig, XLNetForSequenceClassification

    config = XLNetConfig(vocab_size=len(tokenizer), d_model=32, n_layer=1, n_head=2, d_inner=64,
                         id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    XLNetForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="padded on the left.*--mode frozen"):
        fitted(str(tmp_path), tasks["sst2"])
    frozen = EncoderAdapter(str(tmp_path), mode="frozen")
    frozen.fit(tasks["sst2"], split_of(tasks["sst2"], sample.generate(tasks["sst2"], "train", size=40)))
    assert frozen.pooling_ == "last"


def test_head_less_checkpoint_is_refused(tmp_path, tokenizer, tasks):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=len(tokenizer), **TINY)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(UserError, match="no trained classification head"):
        fitted(str(tmp_path), tasks["sst2"])


def test_a_folder_without_its_tokenizer_is_refused_not_run_on_an_empty_one(tmp_path, tokenizer, tasks):
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(BertConfig(vocab_size=len(tokenizer), **TINY)).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="holds no tokenizer.*save_pretrained"):
        fitted(str(tmp_path), tasks["sst2"])
    small = hf.train_tokenizer(["a few words only"], family="wordpiece", vocab_size=50)
    small.save_pretrained(tmp_path)  # a tokenizer, but not this model's: most of its words would be unknown
    with pytest.raises(UserError, match=f"tokenizer has {len(small)} tokens for a model of {len(tokenizer):,}"):
        fitted(str(tmp_path), tasks["sst2"])


# ---------------------------------------------------------------------------------------
# extractive QA
def test_qa_answers_are_context_substrings_over_several_windows(build, tasks, rows):
    task = tasks["squad"]
    adapter = fitted(build("qa"), task, max_length=64, doc_stride=16)
    items = adapter.encode(task, rows["squad"])
    assert all(isinstance(it, QAExample) for it in items)
    long_item = items[-2]
    assert len(long_item.windows) >= 3 and max(len(w.input_ids) for w in long_item.windows) <= 64
    assert adapter.length(long_item) == sum(len(w.input_ids) for w in long_item.windows)
    preds = adapter.predict(task, items)
    for pred, row in zip(preds, rows["squad"]):
        assert isinstance(pred, str) and pred and pred in row["context"]
        assert len(pred.split()) <= 30


def test_qa_train_targets_without_offsets_are_found_by_the_answer_text(tokenizer, tasks, rows):
    """Data that gives answers as plain strings (no answer_start) trains on the same spans, not on
    'no answer' in every window."""
    from dataclasses import replace

    from benchmark.models.features import qa_features

    task = tasks["squad"]
    plain = replace(task, answers="answer_texts")
    plain_rows = [{**r, "answer_texts": r["answers"]["text"]} for r in rows["squad"]]
    options = dict(max_length=64, doc_stride=16, question_tokens=20, token_types=True)
    with_offsets = qa_features(tokenizer, task, rows["squad"], **options)
    without = qa_features(tokenizer, plain, plain_rows, **options)
    targets = [(f["start_positions"], f["end_positions"]) for f in with_offsets]
    assert [(f["start_positions"], f["end_positions"]) for f in without] == targets
    assert sum(1 for t in targets if t != (0, 0)) >= len(rows["squad"])  # every row has its answer somewhere
    # the weight cache of a fine-tune on such data is keyed anew (a cached one learned 'no answer');
    # SQuAD-style data keeps its key, so its cached fine-tunes stay valid
    from benchmark.models.encoder import _span_key

    assert _span_key(task, split_of(task, rows["squad"])) == {}
    assert _span_key(plain, split_of(plain, plain_rows)) == {"answer_spans": "by-text"}
    nowhere = [{**r, "answer_texts": ["xyzzy plugh"]} for r in plain_rows]
    with pytest.raises(UserError, match="no train example has its answer in its context"):
        qa_features(tokenizer, plain, nowhere, **options)


def test_qa_offsets_cover_only_the_context(build, tasks, rows):
    task = tasks["squad"]
    adapter = fitted(build("qa"), task, max_length=64, doc_stride=16)
    row = rows["squad"][-1]  # unicode context
    (item,) = adapter.encode(task, [row])
    offsets = item.offsets[0]
    context_tokens = offsets[offsets[:, 0] >= 0]
    assert context_tokens[0][0] == 0 and context_tokens[-1][1] == len(row["context"])
    q_len = adapter.tokenizer_(row["question"], add_special_tokens=False)["input_ids"]
    assert (offsets[: len(q_len) + 2] == -1).all()  # [CLS] + question + [SEP]
    assert row["context"][slice(*context_tokens[0])] == "Zoë"


class KeywordQA(torch.nn.Module):
    """A fake QA head: the answer starts at token `start_id` and ends at `end_id`, wherever they are."""

    def __init__(self, start_id: int, end_id: int):
        super().__init__()
        self.start_id, self.end_id = start_id, end_id

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return SimpleNamespace(start_logits=(input_ids == self.start_id).float() * 10,
                               end_logits=(input_ids == self.end_id).float() * 10)


def test_qa_decoding_through_windows_with_a_keyword_head(build, tasks, rows):
    task = tasks["squad"]
    adapter = fitted(build("qa"), task, max_length=40, doc_stride=8)
    tok = adapter.tokenizer_
    zebra, quokka = tok.convert_tokens_to_ids(["zebra", "quokka"])
    assert tok.unk_token_id not in (zebra, quokka)
    adapter.model_ = KeywordQA(zebra, quokka)
    row = dict(rows["squad"][-2], question="zebra quokka zebra?")  # the keywords in the question too
    (item,) = adapter.encode(task, [row])
    assert len(item.windows) >= 4
    first = next(i for i, offs in enumerate(item.offsets) if (offs[:, 0] == LONG_CONTEXT.index("Zebra")).any())
    assert first >= 1  # the answer lies beyond the first window
    assert adapter.predict(task, [item]) == ["Zebra harbours hold amber quokka"]  # cased, from the original


def test_doc_stride_too_large_is_a_user_error(build, tasks, rows):
    task = tasks["squad"]
    with pytest.raises(UserError, match=r"doc_stride 40 .*options=\{'doc_stride': 14\}"):
        fitted(build("qa"), task, max_length=32, doc_stride=40)
    lazy = fitted(build("qa"), task, None, weights="random", max_length=32, doc_stride=40)
    with pytest.raises(UserError, match="doc_stride 40"):  # its tokenizer comes with the first split
        lazy.encode(task, rows["squad"][:2])


def test_the_default_doc_stride_leaves_the_question_room_in_a_short_window(build, tasks, rows):
    """A 128-position model (the default stride is 128 tokens): half the window, not an error."""
    task = tasks["squad"]
    adapter = fitted(build("qa"), task, max_length=128)
    assert adapter._doc_stride() == 62 and adapter._question_budget() == 62
    assert fitted(build("qa"), task, max_length=128, doc_stride=16)._doc_stride() == 16  # one given is kept
    preds = predict_all(adapter, task, adapter.encode(task, rows["squad"]), 4)
    assert all(p in row["context"] for p, row in zip(preds, rows["squad"]))


# ---------------------------------------------------------------------------------------
# independence from batch size and order
@pytest.mark.parametrize("name, kind, options", [("sst2", "cls", {}), ("qqp", "cls", {}),
                                                 ("squad", "qa", {"max_length": 64, "doc_stride": 16})])
def test_predictions_do_not_depend_on_batch_size_or_order(build, tasks, rows, name, kind, options):
    task = tasks[name]
    label_names = {"qqp": {0: "not_duplicate", 1: "duplicate"}}.get(name)
    adapter = fitted(build(kind, label_names), task, **options)
    items = adapter.encode(task, rows[name])
    one = predict_all(adapter, task, items, 1)
    shuffled = list(range(len(items)))
    random.Random(0).shuffle(shuffled)
    assert predict_all(adapter, task, items, 32) == one
    assert predict_all(adapter, task, items, 7, order=shuffled) == one
    by_length = sorted(range(len(items)), key=lambda i: (adapter.length(items[i]), i))
    assert predict_all(adapter, task, items, 16, order=by_length) == one
    # the scores behind them, too
    alone = [adapter.logits(task, [it])[0] for it in items]
    together = adapter.logits(task, [items[i] for i in shuffled])
    for i, got in zip(shuffled, together):
        if kind == "qa":
            for (s1, e1), (s2, e2) in zip(alone[i], got):
                np.testing.assert_allclose(s1, s2, atol=1e-5)
                np.testing.assert_allclose(e1, e2, atol=1e-5)
        else:
            np.testing.assert_allclose(alone[i], got, atol=1e-5)


@pytest.mark.parametrize("name, kind", [("qqp", "cls"), ("squad", "qa")])
def test_prefetched_collation_gives_the_same_predictions(build, tasks, rows, name, kind):
    """The evaluator's look-ahead (on by default on CUDA) collates on a helper thread: same answers."""
    task = tasks[name]
    options = {"max_length": 64, "doc_stride": 16} if kind == "qa" else {}
    adapter = fitted(build(kind, {"qqp": {0: "not_duplicate", 1: "duplicate"}}.get(name)), task, **options)
    plain = evaluate_rows(adapter, task, rows[name], batch_size=4, prefetch=False)
    assert evaluate_rows(adapter, task, rows[name], batch_size=4, prefetch=True) == plain
    assert plain == predict_all(adapter, task, adapter.encode(task, rows[name]), 1)
    assert adapter.predict(task, []) == []


def test_encode_is_one_batched_tokenizer_call(build, tasks, rows, monkeypatch):
    """One call of the Rust backend for the whole split, and the wrapper only for the rows checked."""
    from benchmark.models.features import CHECK_ROWS

    task = tasks["sst2"]
    adapter = fitted(build("cls"), task)
    calls = []
    real = adapter.tokenizer_

    class Backend:
        def __getattr__(self, name):
            return getattr(real.backend_tokenizer, name)

        def encode_batch_fast(self, inputs, **kwargs):
            calls.append(("backend", len(inputs)))
            return real.backend_tokenizer.encode_batch_fast(inputs, **kwargs)

    class Counting:
        backend_tokenizer = Backend()

        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, *args, **kwargs):
            calls.append(("wrapper", len(args[0])))
            return real(*args, **kwargs)

    adapter.tokenizer_ = Counting()
    adapter.encode(task, rows["sst2"])
    assert calls == [("backend", 40), ("wrapper", CHECK_ROWS)]


# ---------------------------------------------------------------------------------------
# random weights, modes, failures, recorded facts
def test_random_weights_on_a_local_config(build, tasks, rows):
    task = tasks["sst2"]
    folder = build("cls")
    train = split_of(task, sample.generate(task, "train", size=60))
    adapter = fitted(folder, task, train, weights="random")
    assert adapter.weights() == "random" and adapter.fitted_.mode == "zero-shot"
    assert adapter.model_.config.id2label == {0: "negative", 1: "positive"} and adapter.label_ids_ == [0, 1]
    preds = adapter.predict(task, adapter.encode(task, rows["sst2"]))
    assert len(preds) == 40 and set(preds) <= {0, 1}
    # weights files do not matter for a random run: the revision hashes config.json only
    assert adapter.revision() == hf_fingerprint_of_config(folder)
    # no train split: the tokenizer is learnt from the first split encoded
    lazy = fitted(folder, task, None, weights="random")
    assert lazy.tokenizer_ is None
    assert len(lazy.predict(task, lazy.encode(task, rows["sst2"]))) == 40


def hf_fingerprint_of_config(folder: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256((Path(folder) / "config.json").read_bytes()).hexdigest()[:12]


def test_random_weights_for_qa(build, tasks, rows):
    task = tasks["squad"]
    adapter = fitted(build("qa"), task, split_of(task, rows["squad"]), weights="random", max_length=64,
                     doc_stride=16)
    preds = adapter.predict(task, adapter.encode(task, rows["squad"][:6]))
    assert all(p in r["context"] for p, r in zip(preds, rows["squad"]))


def bert_parameters(c, num_labels: int) -> int:
    """BERT for sequence classification, counted from its config."""
    h, i = c.hidden_size, c.intermediate_size
    embeddings = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    return embeddings + c.num_hidden_layers * layer + (h * h + h) + (h * num_labels + num_labels)


def test_bert_tiny_random_weights_from_the_shipped_config(tasks):
    task = tasks["sst2"]
    train = split_of(task, sample.generate(task, "train", size=50))
    adapter = fitted("prajjwal1/bert-tiny", task, train, weights="random")
    total, trainable = adapter.parameter_counts()
    assert total == trainable == bert_parameters(adapter.model_.config, 2)
    assert 4.38e6 < total < 4.40e6
    assert adapter.revision().startswith("sha256:")


def test_unknown_hub_name_offline_fails_fast(tasks):
    began = time.perf_counter()
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        fitted("no-such-org/no-such-encoder-model", tasks["sst2"])
    assert time.perf_counter() - began < 5


@pytest.mark.parametrize("mode", ["finetune", "frozen"])
def test_training_modes_need_a_train_split(build, tasks, mode):
    with pytest.raises(UserError, match="no train split"):
        EncoderAdapter(build("cls"), mode=mode).fit(tasks["sst2"], None)


def test_unsupported_task_kind(tasks):
    from dataclasses import replace

    adapter = EncoderAdapter("x")
    assert adapter.unsupported_reason(tasks["sst2"]) is None
    assert "closed book qa" in adapter.unsupported_reason(replace(tasks["squad"], kind="closed_book_qa"))


@pytest.mark.parametrize("options, error", [({"weights": "imagined"}, ModelError), ({"dtype": "fp8"}, ModelError),
                                            ({"doc_stride": -1}, UserError), ({"max_answer_length": 0}, UserError),
                                            ({"max_length": "long"}, UserError)])
def test_bad_options_fail_at_construction(options, error):
    with pytest.raises(error):
        EncoderAdapter("anything", options=options)


def test_max_length_above_the_model_limit(build, tasks):
    with pytest.raises(UserError, match="at most 128"):
        fitted(build("cls"), tasks["sst2"], max_length=256)


def test_settings_record_resolved_defaults():
    settings = EncoderAdapter("m", options={"doc_stride": 64, "label_map": "a=b"}).settings()
    assert settings == {"mode": "auto", "seed": 0, "weights": "pretrained", "label_map": {"a": "b"},
                        "trust_remote_code": False, "dtype": "fp32", "doc_stride": 64, "max_answer_length": 30,
                        "n_best": 20, "compile": False, "max_length": {"classification": 512, "extractive_qa": 384},
                        "epochs": None, "learning_rate": None, "max_train_examples": None, "train_batch_size": None}
    assert EncoderAdapter("m", options={"max_length": 256}).settings()["max_length"] == 256


def test_revision_changes_with_the_weights(build, tasks, tmp_path):
    folder = build("cls")
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    first = fitted(str(copy), tasks["sst2"]).revision()
    with (copy / "extra.bin").open("wb") as fh:
        fh.write(b"0" * 10)
    assert fitted(str(copy), tasks["sst2"]).revision() != first


def test_encoded_items_are_plain_data():
    item = Encoded([1, 2, 3])
    assert item.token_type_ids is None
    assert EncoderAdapter("m").length(item) == 3


@pytest.mark.slow
def test_compiled_forward_gives_the_eager_predictions(build, tasks, rows):
    """--compile (torch.compile, dynamic shapes, CPU freezing) changes speed, not answers."""
    task = tasks["sst2"]
    eager = fitted(build("cls"), task)
    compiled = fitted(build("cls"), task, compile=True)
    assert compiled.compiled_ is not None and eager.compiled_ is None and compiled.settings()["compile"] is True
    items = eager.encode(task, rows["sst2"])
    by_length = sorted(range(len(items)), key=lambda i: (eager.length(items[i]), i))
    want = predict_all(eager, task, items, 16, order=by_length)
    assert predict_all(compiled, task, items, 16, order=by_length) == want
    for it in items[:3]:
        np.testing.assert_allclose(compiled.logits(task, [it])[0], eager.logits(task, [it])[0], atol=1e-4)


# ---------------------------------------------------------------------------------------
# scoring inputs straight from the Rust backend (features.encode_ids)
@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("max_length", [8, 512])
def test_backend_ids_equal_the_tokenizer_call(tokenizer, tasks, rows, pair, max_length):
    """Same ids and type ids as transformers' call (truncation of long pairs included), and the
    backend's truncation and padding settings are put back as they were."""
    from benchmark.models.features import encode_ids, input_columns

    task = tasks["qqp" if pair else "sst2"]
    columns = input_columns(task, rows[task.name])
    columns = [[c + " " + LONG_CONTEXT if i % 3 == 0 else c for i, c in enumerate(col)] for col in columns]
    tokenizer.backend_tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=7)
    tokenizer.backend_tokenizer.enable_truncation(5, stride=1)
    before = (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding)
    try:
        ids, types = encode_ids(tokenizer, columns, max_length=max_length, token_types=True)
        assert (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding) == before
    finally:
        tokenizer.backend_tokenizer.no_padding()
        tokenizer.backend_tokenizer.no_truncation()
    want = tokenizer(*columns, truncation=True, max_length=max_length, padding=False, return_token_type_ids=True)
    assert ids == want["input_ids"]
    if pair:
        assert types == want["token_type_ids"] and any(map(any, types))
    else:  # a single text's type ids are all 0: None, and the collator makes the zeros
        assert types is None and not any(map(any, want["token_type_ids"]))
    lengths = [len(i) for i in ids]  # long rows are cut at 8, and run past 64 when 512 is allowed
    assert max(lengths) == 8 if max_length == 8 else 64 < max(lengths) <= max_length
    assert encode_ids(tokenizer, columns, max_length=max_length, token_types=False)[1] is None
    assert encode_ids(tokenizer, [[]], max_length=max_length, token_types=True) == ([], None)


def test_a_wrapper_that_differs_from_its_backend_is_kept(tokenizer, tasks, rows):
    """A tokenizer class that changes ids in Python (a hook the backend does not know) keeps its own
    call: the first rows are compared, and the wrapper wins."""
    from benchmark.models.features import encode_ids, input_columns

    class Shifted:
        backend_tokenizer = tokenizer.backend_tokenizer
        truncation_side = "right"

        def __call__(self, *columns, **kwargs):
            enc = tokenizer(*columns, **kwargs)
            return {**enc, "input_ids": [[i + 1 for i in row] for row in enc["input_ids"]]}

    columns = input_columns(tasks["sst2"], rows["sst2"])
    ids, _ = encode_ids(Shifted(), columns, max_length=64, token_types=False)
    assert ids == [[i + 1 for i in row] for row in tokenizer(*columns, truncation=True, max_length=64)["input_ids"]]


def test_half_precision_asked_of_a_cpu_is_an_error_as_for_the_other_adapters(build):
    with pytest.raises(UserError, match="dtype bf16 needs a CUDA device"):
        EncoderAdapter(build("cls"), options={"dtype": "bf16"})
    assert EncoderAdapter(build("cls"), options={"dtype": "fp32"}).dtype() == "fp32"


def test_zero_shot_marks_a_task_its_head_cannot_do_unsupported_and_goes_on(build, tmp_path):
    from benchmark.cli import main

    qa = build("qa")
    assert main(["run", "--model", qa, "--mode", "zero-shot", "--tasks", "squad,sst2", "--data", "sample",
                 "--limit", "10", "--results-dir", str(tmp_path), "--quiet"]) == 0
    by_task = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*/*.json")}
    assert by_task["squad"]["status"] == "ok"
    assert by_task["sst2"]["status"] == "unsupported" and "answers questions; it cannot classify" in by_task["sst2"]["note"]
