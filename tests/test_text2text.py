"""The text-to-text adapter on a tiny random T5 saved locally: generation, ranking, QA, invariance."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before any Hugging Face import: these tests never touch the network

import dataclasses
import json
import random
import time
from pathlib import Path

import pytest

from benchmark.data import load_split
from benchmark.errors import ModelError, UserError
from benchmark.models.hf import local_revision
from benchmark.models.text2text import Text2TextAdapter, match_label, training_texts
from benchmark.tasks import discover
from helpers import evaluate_rows, predict_in_batches, ready

TASKS = ("sst2", "mnli", "qqp", "squad", "triviaqa")
EVAL_ROWS = 24
TINY = dict(d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)


@pytest.fixture(scope="module")
def specs():
    catalog = discover(entry_points=False)
    return {name: catalog.tasks[name] for name in TASKS}


@pytest.fixture(scope="module")
def trains(specs):
    return {name: load_split(spec, spec.dataset.train, "sample", limit=200) for name, spec in specs.items()}


@pytest.fixture(scope="module")
def evals(specs):
    return {name: load_split(spec, spec.dataset.eval[0].split, "sample", limit=EVAL_ROWS).rows
            for name, spec in specs.items()}


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, specs, trains) -> str:
    """A 2-layer, d_model-32 T5 with a tokenizer trained on every task's sample text, saved like a checkpoint."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from benchmark.models.hf import train_tokenizer

    texts = [t for name, spec in specs.items() for t in training_texts(spec, trains[name].rows)]
    tokenizer = train_tokenizer(texts, family="unigram", vocab_size=600)
    torch.manual_seed(0)
    # Untied and a 3x initial scale: at T5's defaults a random decoder echoes its start token (pad),
    # or one word whatever the input, and the invariance tests below would prove little.
    config = T5Config(vocab_size=len(tokenizer), tie_word_embeddings=False, initializer_factor=3.0, **TINY)
    model = T5ForConditionalGeneration(config)
    folder = tmp_path_factory.mktemp("tiny-t5")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def fitted(path: str, spec, train, **options) -> Text2TextAdapter:
    return ready(Text2TextAdapter(path, options=options), spec, train)


def run_batches(adapter: Text2TextAdapter, spec, rows, batch_size: int, order: list[int] | None = None) -> list:
    """Predict like the evaluator does: encode once, batch in `order`, put predictions back in place."""
    return predict_in_batches(adapter, spec, adapter.encode(spec, rows), batch_size, order)


# ---------------------------------------------------------------------------------------
# label mapping
def test_match_label_is_exact_case_insensitive_and_unknown_is_minus_one():
    labels = ("negative", "positive")
    assert match_label("positive", labels) == 1
    assert match_label("  Negative \n", labels) == 0
    assert match_label("POSITIVE", labels) == 1
    assert match_label("positive.", labels) == -1
    assert match_label("pos", labels) == -1
    assert match_label("", labels) == -1
    assert match_label("not_duplicate", ("not_duplicate", "duplicate")) == 0


# ---------------------------------------------------------------------------------------
# the four ways of predicting
def test_classification_by_generate_gives_label_indices(tiny_t5, specs, trains, evals):
    adapter = fitted(tiny_t5, specs["sst2"], trains["sst2"])
    assert adapter.fitted_.mode == "zero-shot" and adapter.weights() == "pretrained"
    items = adapter.encode(specs["sst2"], evals["sst2"])
    assert len(items) == EVAL_ROWS and all(adapter.length(it) == len(it) > 0 for it in items)
    preds = adapter.predict(specs["sst2"], items)
    assert len(preds) == EVAL_ROWS and all(p in (-1, 0, 1) for p in preds)


def test_generate_output_decodes_without_start_or_special_tokens(tiny_t5, specs, trains, evals):
    adapter = fitted(tiny_t5, specs["squad"], trains["squad"])
    texts = adapter.generate(adapter.encode(specs["squad"], evals["squad"][:4]), max_new_tokens=6)
    assert all(isinstance(t, str) and t == t.strip() for t in texts)
    assert not any(s in t for t in texts for s in ("<pad>", "</s>", "<extra_id"))
    assert any(texts), "the tiny model should say something, or the invariance tests prove little"


def test_generated_label_names_map_to_their_index(tiny_t5, specs, trains, evals, monkeypatch):
    adapter = fitted(tiny_t5, specs["mnli"], trains["mnli"])
    canned = ["neutral", "Contradiction", "maybe", "entailment"]
    monkeypatch.setattr(adapter, "_generate", lambda ids, mask, n: canned[:ids.shape[0]])
    items = adapter.encode(specs["mnli"], evals["mnli"][:4])
    assert adapter.predict(specs["mnli"], items) == [1, 2, -1, 0]


def test_classification_by_rank_never_abstains(tiny_t5, specs, trains, evals):
    adapter = fitted(tiny_t5, specs["mnli"], trains["mnli"], scoring="rank")
    preds = adapter.predict(specs["mnli"], adapter.encode(specs["mnli"], evals["mnli"]))
    assert len(preds) == EVAL_ROWS and all(p in (0, 1, 2) for p in preds)


@pytest.mark.parametrize("task", ["squad", "triviaqa"])
def test_qa_predicts_strings(tiny_t5, specs, trains, evals, task):
    adapter = fitted(tiny_t5, specs[task], trains[task])
    preds = adapter.predict(specs[task], adapter.encode(specs[task], evals[task]))
    assert len(preds) == EVAL_ROWS and all(isinstance(p, str) for p in preds)


# ---------------------------------------------------------------------------------------
# ranking is the likelihood of each label string
def test_rank_scores_match_brute_force_per_label(tiny_t5, specs, trains, evals):
    import torch

    # Labels of different token lengths, so the -100 padding of the shorter one is exercised.
    spec = dataclasses.replace(specs["qqp"], labels=("not_duplicate", "a duplicate, surely"))
    adapter = fitted(tiny_t5, spec, trains["qqp"], scoring="rank")
    items = adapter.encode(spec, evals["qqp"][:6])
    fast = adapter.label_log_likelihoods(spec, items)
    tok, model = adapter.tokenizer_, adapter.model_
    label_ids = [tok(name)["input_ids"] for name in spec.labels]
    assert len(set(map(len, label_ids))) > 1, "labels should differ in length for this test to bite"
    with torch.inference_mode():
        for i, item in enumerate(items):
            for j, ids in enumerate(label_ids):
                assert ids[-1] == tok.eos_token_id
                out = model(input_ids=torch.tensor([item]), labels=torch.tensor([ids]))
                brute = -out.loss.item() * len(ids)  # mean token NLL -> summed log-prob
                assert fast[i][j] == pytest.approx(brute, rel=1e-5, abs=1e-4)
    preds = adapter.predict(spec, items)
    assert preds == [max(range(2), key=lambda j: (row[j], -j)) for row in fast]


def test_rank_follows_the_model_when_it_is_made_to_prefer_a_label(tiny_t5, specs, trains, evals):
    import torch

    spec = specs["sst2"]
    adapter = fitted(tiny_t5, spec, trains["sst2"], scoring="rank")
    items = adapter.encode(spec, evals["sst2"])
    model, tok = adapter.model_, adapter.tokenizer_
    for target in (0, 1):
        head = torch.nn.Linear(model.config.d_model, model.config.vocab_size, bias=True)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        with torch.no_grad():
            head.bias[tok(spec.labels[target])["input_ids"]] = 10.0  # the label's pieces and eos
        model.lm_head = head
        assert adapter.predict(spec, items) == [target] * len(items)


# ---------------------------------------------------------------------------------------
# predictions do not depend on batch size or order
@pytest.mark.parametrize("task,scoring", [("sst2", "generate"), ("mnli", "rank"), ("squad", "generate")])
def test_predictions_independent_of_batch_size_and_order(tiny_t5, specs, trains, evals, task, scoring):
    spec, rows = dataclasses.replace(specs[task], max_new_tokens=4), evals[task][:10]  # generate is ~40 ms a step
    adapter = fitted(tiny_t5, spec, trains[task], scoring=scoring)
    one = run_batches(adapter, spec, rows, batch_size=1)
    if spec.kind != "classification":
        assert len(set(one)) > 1, "answers that ignore the input would make this test vacuous"
    order = list(range(len(rows)))
    random.Random(3).shuffle(order)
    assert run_batches(adapter, spec, rows, batch_size=32) == one
    assert run_batches(adapter, spec, rows, batch_size=5, order=order) == one


@pytest.mark.parametrize("task,scoring", [("mnli", "rank"), ("sst2", "generate")])
def test_prefetched_collation_gives_the_same_predictions(tiny_t5, specs, trains, evals, task, scoring):
    spec, rows = dataclasses.replace(specs[task], max_new_tokens=4), evals[task][:12]
    adapter = fitted(tiny_t5, spec, trains[task], scoring=scoring)
    plain = evaluate_rows(adapter, spec, rows, batch_size=5, prefetch=False)
    assert evaluate_rows(adapter, spec, rows, batch_size=5, prefetch=True) == plain == run_batches(adapter, spec, rows, 1)
    assert adapter.predict(spec, []) == []


def test_rank_scores_independent_of_batch_size(tiny_t5, specs, trains, evals):
    spec, rows = specs["mnli"], evals["mnli"]
    adapter = fitted(tiny_t5, spec, trains["mnli"], scoring="rank")
    items = adapter.encode(spec, rows)
    whole = adapter.label_log_likelihoods(spec, items)
    assert len({round(row[0], 3) for row in whole}) > 1, "scores that ignore the input prove little"
    for item, want in zip(items, whole):
        assert adapter.label_log_likelihoods(spec, [item])[0] == pytest.approx(want, rel=1e-4)  # fp32 drift only


def test_encode_truncates_at_max_length(tiny_t5, specs, trains, evals):
    adapter = fitted(tiny_t5, specs["squad"], trains["squad"], max_length=16)
    items = adapter.encode(specs["squad"], evals["squad"])
    assert max(map(len, items)) == 16
    assert all(it[-1] == adapter.tokenizer_.eos_token_id for it in items)
    # the Rust backend's ids (features.encode_ids) are the wrapper's, row for row, past its check rows too
    want = adapter.tokenizer_([specs["squad"].render(r) for r in evals["squad"]], truncation=True, max_length=16)
    assert items == want["input_ids"] and len(items) > 16


# ---------------------------------------------------------------------------------------
# random weights, options, facts
def test_random_weights_from_a_local_config_folder(tmp_path, specs, trains, evals):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=400, **TINY)
    config.save_pretrained(tmp_path)
    adapter = fitted(str(tmp_path), specs["sst2"], trains["sst2"], weights="random")
    expected = sum(p.numel() for p in T5ForConditionalGeneration(config).parameters())
    assert adapter.parameter_counts() == (expected, expected)
    assert adapter.weights() == "random" and adapter.fitted_.mode == "zero-shot"
    assert len(adapter.tokenizer_) <= 400
    preds = adapter.predict(specs["sst2"], adapter.encode(specs["sst2"], evals["sst2"]))
    assert len(preds) == EVAL_ROWS and all(p in (-1, 0, 1) for p in preds)
    again = fitted(str(tmp_path), specs["sst2"], trains["sst2"], weights="random")
    assert again.predict(specs["sst2"], again.encode(specs["sst2"], evals["sst2"])) == preds  # seeded


def test_random_weights_with_too_small_a_vocabulary_fail_clearly(tmp_path, specs, trains):
    from transformers import T5Config

    T5Config(vocab_size=64, **TINY).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="vocab_size 64 is too small"):
        fitted(str(tmp_path), specs["sst2"], trains["sst2"], weights="random")


def test_random_weights_need_a_train_split(tmp_path, specs):
    from transformers import T5Config

    T5Config(vocab_size=400, **TINY).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="train split"):
        fitted(str(tmp_path), specs["sst2"], None, weights="random")


@pytest.mark.slow
def test_t5_small_architecture_has_its_published_size(specs, trains):
    adapter = fitted("t5-small", specs["sst2"], trains["sst2"], weights="random")
    assert adapter.parameter_counts() == (60_506_624, 60_506_624)
    assert adapter.revision().startswith("sha256:")


def test_frozen_mode_is_refused_for_text_to_text(tiny_t5, specs, trains):
    with pytest.raises(UserError, match="no separate head"):
        Text2TextAdapter(tiny_t5, mode="frozen").fit(specs["sst2"], trains["sst2"])


@pytest.mark.parametrize("options,match", [
    ({"scoring": "beam"}, "scoring"), ({"weights": "trained"}, "weights"), ({"max_length": 0}, "max_length"),
    ({"dtype": "bf16"}, "CUDA"), ({"scorng": "rank"}, "did you mean 'scoring'"),
    ({"trust_remote_code": "yes"}, "trust_remote_code"),
])
def test_bad_options_fail_before_loading(options, match):
    with pytest.raises(UserError, match=match):
        Text2TextAdapter("t5-small", options=options)


def test_settings_record_resolved_options(tiny_t5):
    adapter = Text2TextAdapter(tiny_t5, options={"scoring": "rank"})
    assert adapter.settings() == {"mode": "auto", "seed": 0, "weights": "pretrained", "trust_remote_code": False,
                                  "dtype": "fp32", "scoring": "rank", "max_length": 512, "revision": None,
                                  "epochs": None, "learning_rate": None, "max_train_examples": None,
                                  "train_batch_size": None}
    assert adapter.dtype() == "fp32"


def test_revision_of_a_local_folder_hashes_the_content_of_its_files(tiny_t5, tmp_path):
    rev = Text2TextAdapter(tiny_t5).revision()
    assert rev == local_revision(tiny_t5) and rev.startswith("sha256:") and len(rev) == 7 + 12
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in Path(tiny_t5).iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert local_revision(copy) == rev
    config = json.loads((copy / "config.json").read_text())
    config["d_ff"] = 128
    (copy / "config.json").write_text(json.dumps(config))
    assert local_revision(copy) != rev
    other = local_revision(copy)
    tokenizer = json.loads((copy / "tokenizer.json").read_text())
    tokenizer["added_tokens"] = tokenizer["added_tokens"][:-1]
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer))  # another tokenizer is another model
    assert local_revision(copy) != other
    without = local_revision(copy, with_weights=False)  # --weights random: only the config matters
    (copy / "model.safetensors").write_bytes(b"x" * (copy / "model.safetensors").stat().st_size)
    assert local_revision(copy, with_weights=False) == without and local_revision(copy) != other


def test_predict_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="fit"):
        Text2TextAdapter("t5-small").predict(None, [[1]])


def test_encoder_only_checkpoint_is_refused(tmp_path, specs, trains):
    from transformers import BertConfig

    BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="not an encoder-decoder"):
        fitted(str(tmp_path), specs["sst2"], trains["sst2"])


def test_checkpoint_without_decoder_start_token_is_refused(tmp_path, tiny_t5, specs):
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    config = T5Config(vocab_size=len(tokenizer), **{k: v for k, v in TINY.items() if k != "decoder_start_token_id"})
    T5ForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="decoder_start_token_id"):
        fitted(str(tmp_path), specs["sst2"], None)


def test_cached_hub_checkpoint_loads_offline_and_records_its_commit(tmp_path, tiny_t5, specs, evals, monkeypatch):
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someone--tiny-t5"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in Path(tiny_t5).iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    adapter = fitted("someone/tiny-t5", specs["sst2"], None)
    assert adapter.revision() == commit and adapter.weights() == "pretrained"
    local = fitted(tiny_t5, specs["sst2"], None)
    rows = evals["sst2"][:6]
    assert adapter.predict(specs["sst2"], adapter.encode(specs["sst2"], rows)) == \
        local.predict(specs["sst2"], local.encode(specs["sst2"], rows))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_cuda_bf16_agrees_with_cpu_fp32(tiny_t5, specs, trains, evals):
    spec, rows = specs["mnli"], evals["mnli"]
    cpu = fitted(tiny_t5, spec, trains["mnli"], scoring="rank")
    gpu = ready(Text2TextAdapter(tiny_t5, device="cuda", options={"scoring": "rank"}), spec, trains["mnli"])
    assert gpu.dtype() == "bf16"
    want = cpu.label_log_likelihoods(spec, cpu.encode(spec, rows))
    got = gpu.label_log_likelihoods(spec, gpu.encode(spec, rows))
    assert got == pytest.approx(want, abs=0.1, rel=0.05)
    assert run_batches(gpu, spec, rows, batch_size=1) == run_batches(gpu, spec, rows, batch_size=32)
    assert all(isinstance(t, str) for t in gpu.generate(gpu.encode(spec, rows), 4))


def test_unknown_hub_model_fails_fast_offline(specs, trains):
    start = time.perf_counter()
    with pytest.raises(ModelError, match="not a local folder"):
        fitted("nobody/no-such-t5-model", specs["sst2"], trains["sst2"])
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------------------------
# the generation budget holds a whole label, however the tokenizer spells it
@pytest.fixture(scope="module")
def tiny_byt5(tmp_path_factory) -> str:
    """The tiny T5 with ByT5's byte tokenizer: 'positive' is 8 tokens, past SST-2's 3."""
    import torch
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-byt5")
    T5ForConditionalGeneration(T5Config(vocab_size=384, tie_word_embeddings=False, **TINY)).save_pretrained(folder)
    ByT5Tokenizer().save_pretrained(folder)
    return str(folder)


def _writes(adapter: Text2TextAdapter, label: str, monkeypatch) -> list[int]:
    """Make the model a perfect writer of `label`, cut at max_new_tokens as generate() cuts it: a forced
    bos first, a forced eos in the last slot; returns the budgets generate() was given."""
    import torch

    config = adapter.model_.generation_config
    first, last = config.forced_bos_token_id, config.forced_eos_token_id
    answer = ([] if first is None else [first]) + adapter.tokenizer_(label, add_special_tokens=False)["input_ids"]
    budgets: list[int] = []

    def generate(input_ids, max_new_tokens, **kwargs):
        budgets.append(max_new_tokens)
        out = (answer + [adapter.tokenizer_.eos_token_id])[:max_new_tokens]
        if last is not None and len(out) == max_new_tokens:
            out[-1] = last
        return torch.tensor([[0] + out] * input_ids.shape[0])

    monkeypatch.setattr(adapter.model_, "generate", generate)
    return budgets


@pytest.mark.parametrize("task", ["sst2", "mnli", "qqp"])
def test_a_byte_tokenizer_can_generate_every_whole_label(tiny_byt5, specs, trains, evals, task, monkeypatch):
    spec = specs[task]
    adapter = fitted(tiny_byt5, spec, trains[task])
    items = adapter.encode(spec, evals[task][:3])
    for index, label in enumerate(spec.labels):
        budgets = _writes(adapter, label, monkeypatch)
        assert adapter.predict(spec, items) == [index] * 3, f"{label!r} cut at {budgets}"
    longest = max(len(label.encode()) for label in spec.labels)
    assert adapter.generation_budget(spec) == max(spec.max_new_tokens, longest)


@pytest.mark.parametrize("forced,budget", [({"forced_bos_token_id": 2}, 9), ({"forced_eos_token_id": 1}, 9),
                                           ({"forced_bos_token_id": 2, "forced_eos_token_id": 1}, 10)])
def test_forced_bos_and_eos_take_their_slots_of_the_budget(tiny_byt5, specs, trains, evals, monkeypatch, forced,
                                                          budget):
    """BART's generate forces bos as its first new token and eos into the last slot (forced_eos_token_id
    overwrites whatever the model wrote there): the label needs room for both."""
    spec = specs["sst2"]
    adapter = fitted(tiny_byt5, spec, trains["sst2"])
    for key, value in forced.items():
        setattr(adapter.model_.generation_config, key, value)
    _writes(adapter, "negative", monkeypatch)
    assert adapter.predict(spec, adapter.encode(spec, evals["sst2"][:2])) == [0, 0]
    assert adapter.generation_budget(spec) == budget


def test_the_budget_stays_the_tasks_where_the_labels_fit_and_for_free_text(tiny_t5, specs, trains):
    """T5's vocabulary writes each label within the task's count: the numbers there do not move."""
    for name in TASKS:
        adapter = fitted(tiny_t5, specs[name], trains[name])
        if specs[name].kind == "classification":
            longest = max(len(adapter.tokenizer_(label, add_special_tokens=False)["input_ids"])
                          for label in specs[name].labels)
            assert longest <= specs[name].max_new_tokens
        assert adapter.generation_budget(specs[name]) == specs[name].max_new_tokens


# ---------------------------------------------------------------------------------------
# inputs within a model's learned positions
@pytest.fixture(scope="module")
def tiny_bart_pos32(tiny_t5, tmp_path_factory) -> str:
    """A 1-layer BART with 32 learned positions (the tiny T5's tokenizer): a longer input, or a 33rd
    decoder step, is an IndexError in the embedding lookup."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    torch.manual_seed(0)
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=32, pad_token_id=0, eos_token_id=1, bos_token_id=1,
                        decoder_start_token_id=1, forced_eos_token_id=1, dropout=0.0)
    folder = tmp_path_factory.mktemp("tiny-bart-pos32")
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("task,options", [("sst2", {}), ("squad", {}), ("squad", {"max_length": 24})])
def test_inputs_and_generation_fit_the_models_positions(tiny_bart_pos32, specs, trains, evals, task, options):
    spec = specs[task]
    adapter = fitted(tiny_bart_pos32, spec, trains[task], **options)
    whole = adapter.tokenizer_([spec.render(r) for r in evals[task]])["input_ids"]
    assert max(map(len, whole)) > 32, "inputs within the positions prove nothing"
    items = adapter.encode(spec, evals[task])
    assert max(map(len, items)) == options.get("max_length", 32)
    assert adapter.generation_budget(spec) <= 31  # the decoder start token takes a position too
    assert len(adapter.predict(spec, items)) == EVAL_ROWS  # was an IndexError in the position embedding
    assert adapter.settings()["max_length"] == options.get("max_length", 512)  # the option, as given


def test_finetune_fits_the_models_positions(tiny_bart_pos32, specs, trains, tmp_path):
    """Long inputs, and answers longer than the decoder's positions (the whole passage), still train."""
    from helpers import split_of

    spec = specs["squad"]
    rows = [{**r, "answers": {"text": [r["context"]], "answer_start": [0]}} for r in trains["squad"].rows[:16]]
    adapter = Text2TextAdapter(tiny_bart_pos32, mode="finetune", options={"epochs": 1, "cache_dir": str(tmp_path)})
    assert adapter.fit(spec, split_of(spec, rows)).weights == "trained"  # was an IndexError
    assert max(len(ids) for ids in adapter.tokenizer_([r["context"] for r in rows])["input_ids"]) > 32


def test_a_max_length_past_the_models_positions_is_refused(tiny_bart_pos32, specs, trains):
    with pytest.raises(UserError, match="--max-length 100: .* takes at most 32 tokens; use --max-length 32 or less"):
        fitted(tiny_bart_pos32, specs["sst2"], trains["sst2"], max_length=100)
