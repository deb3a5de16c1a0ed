"""The BiLSTM baseline and ELMo-style transfer, on the built-in sample suite with tiny budgets."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import pytest  # noqa: E402

torch = pytest.importorskip("torch")

from benchmark.cli import main  # noqa: E402
from benchmark.data import load_split  # noqa: E402
from benchmark.errors import UserError  # noqa: E402
from benchmark.evaluator import corpus, references  # noqa: E402
from benchmark.metrics import score  # noqa: E402
from benchmark.models.elmo import ElmoAdapter  # noqa: E402
from benchmark.models.lstm import BiLSTMAdapter  # noqa: E402
from benchmark.models.lstm_modules import BiLSTM, reverse_padded  # noqa: E402
from benchmark.models.lstm_text import tokenize  # noqa: E402
from benchmark.models.lstm_training import align_answer  # noqa: E402
from benchmark.tasks import discover  # noqa: E402
from helpers import predict_in_batches, ready  # noqa: E402

# Small enough to train in seconds on one CPU thread, big enough to learn the sample patterns.
TINY = {"hidden": 48, "word_dim": 48, "char_filters": [[1, 16], [2, 16], [3, 32]], "mlp_hidden": 64,
        "dropout": 0.1, "train_batch_size": 16, "learning_rate": 0.004}
TINY_LM = {"lm_dim": 32, "lm_cell": 64, "lm_char_filters": [[1, 16], [2, 16], [3, 32]], "lm_batch_size": 32,
           "lm_epochs": 1}


@pytest.fixture(scope="module")
def tasks():
    return discover().tasks


def splits(task):
    return (load_split(task, task.dataset.train, "sample"), load_split(task, task.dataset.eval[0].split, "sample"))


def evaluate(adapter, task, rows, batch_size=64, order=None):
    return predict_in_batches(adapter, task, adapter.encode(task, rows), batch_size, order)


def metric(task, preds, rows, name):
    return score(task.kind, [name], preds, references(task, rows), positive=task.positive_index,
                 normalizer=task.normalizer)[name]


def majority_accuracy(task, train, rows):
    counts = Counter(task.label_index(r) for r in train.rows)
    label = min(counts, key=lambda k: (-counts[k], k))
    return metric(task, [label] * len(rows), rows, "accuracy")


def trained(task, train, cache, **options):
    return ready(BiLSTMAdapter("bilstm", seed=0, quiet=True, options={**TINY, "cache_dir": str(cache), **options}),
                 task, train)


@pytest.fixture(scope="module")
def sst2(tasks, tmp_path_factory):
    task = tasks["sst2"]
    train, valid = splits(task)
    cache = tmp_path_factory.mktemp("bilstm_cache")
    start = time.perf_counter()
    adapter = trained(task, train, cache, epochs=3)
    seconds = time.perf_counter() - start
    return dict(task=task, train=train, valid=valid, cache=cache, adapter=adapter, seconds=seconds,
                preds=evaluate(adapter, task, valid.rows))


@pytest.fixture(scope="module")
def squad(tasks, tmp_path_factory):
    task = tasks["squad"]
    train, valid = splits(task)
    adapter = trained(task, train, tmp_path_factory.mktemp("squad_cache"), epochs=3, max_train_examples=400)
    return dict(task=task, valid=valid, adapter=adapter, preds=evaluate(adapter, task, valid.rows))


# ---------------------------------------------------------------------------------------
# building blocks
def test_tokenizer_keeps_character_offsets():
    text = "It's 28,730 people -- Zoë's \"Île-Vaud\" does n't"
    tokens = tokenize(text)
    assert all(text[a:b] == t for t, a, b in tokens)
    assert [t for t, _, _ in tokens][:3] == ["It's", "28,730", "people"]
    assert "n't" in [t for t, _, _ in tokens]


def test_answers_align_to_token_spans():
    import numpy as np

    offsets = np.array([(a, b) for _, a, b in tokenize("Born in 1649 in Bandmark.")])
    assert align_answer(offsets, 8, 12) == (2, 2)
    assert align_answer(offsets, 8, 24) == (2, 4)
    assert align_answer(offsets, 7, 8) is None  # only whitespace


def test_bilstm_padding_cannot_change_results():
    torch.manual_seed(0)
    lstm = BiLSTM(5, 4, 2, 0.0).eval()
    a, b = torch.randn(1, 3, 5), torch.randn(1, 6, 5)
    padded = torch.cat([torch.cat([a, torch.randn(1, 3, 5)], 1), b])  # garbage in the padding
    with torch.no_grad():
        both = lstm(padded, torch.tensor([3, 6]))
        alone = lstm(a, torch.tensor([3]))
    assert torch.allclose(both[0, :3], alone[0], atol=1e-6)
    assert torch.all(both[0, 3:] == 0)
    x = torch.arange(8.0).view(2, 4, 1)
    assert reverse_padded(x, torch.tensor([2, 4]))[:, :, 0].tolist() == [[1, 0, 2, 3], [7, 6, 5, 4]]


# ---------------------------------------------------------------------------------------
# bilstm
def test_sst2_trains_fast_and_beats_majority(sst2):
    task, valid = sst2["task"], sst2["valid"]
    accuracy = metric(task, sst2["preds"], valid.rows, "accuracy")
    assert accuracy >= majority_accuracy(task, sst2["train"], valid.rows) + 20
    assert sst2["seconds"] < 60
    adapter = sst2["adapter"]
    assert adapter.fitted_.mode == "scratch" and adapter.weights() == "trained" and adapter.train_seconds_ > 0
    assert adapter.heldout_score_ is not None and "heldout_score" not in json.dumps(adapter.settings())
    total, trainable = adapter.parameter_counts()
    assert total == trainable == sum(p.numel() for p in adapter.net_.parameters()) > 10_000


def test_predictions_do_not_depend_on_batch_size_or_order(sst2, squad):
    for run in (sst2, squad):
        task, adapter, rows = run["task"], run["adapter"], run["valid"].rows
        assert evaluate(adapter, task, rows[:80], batch_size=1) == run["preds"][:80]
        order = list(range(len(rows)))
        random.Random(1).shuffle(order)
        assert evaluate(adapter, task, rows, batch_size=37, order=order) == run["preds"]


def test_same_seed_same_model(sst2, tmp_path):
    """Bit-identical weights, with two threads too (parallel CPU kernels must not reorder float sums)."""
    task, train, rows = sst2["task"], sst2["train"], sst2["valid"].rows[:100]
    torch.set_num_threads(2)
    try:
        one, two = (trained(task, train, tmp_path / name, epochs=2, max_train_examples=300) for name in "ab")
    finally:
        torch.set_num_threads(1)
    assert not one.loaded_from_cache_ and not two.loaded_from_cache_
    first, second = one.net_.state_dict(), two.net_.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert evaluate(one, task, rows) == evaluate(two, task, rows)
    other = ready(BiLSTMAdapter("bilstm", seed=1, quiet=True, options={**TINY, "cache_dir": str(tmp_path / "c"),
                                                                       "epochs": 2, "max_train_examples": 300}),
                  task, train)
    assert not torch.equal(other.net_.state_dict()["mlp.1.weight"], first["mlp.1.weight"])


def test_second_fit_loads_the_cached_weights(sst2):
    start = time.perf_counter()
    again = trained(sst2["task"], sst2["train"], sst2["cache"], epochs=3)
    assert again.loaded_from_cache_ and time.perf_counter() - start < 5
    assert again.train_seconds_ == sst2["adapter"].train_seconds_
    assert again.heldout_score_ == sst2["adapter"].heldout_score_
    assert evaluate(again, sst2["task"], sst2["valid"].rows) == sst2["preds"]
    assert list((sst2["cache"] / "bilstm").glob(".*.tmp")) == []
    other = trained(sst2["task"], sst2["train"], sst2["cache"], epochs=1, max_train_examples=100)  # other key
    assert not other.loaded_from_cache_ and len(list((sst2["cache"] / "bilstm").glob("*.pt"))) == 2


@pytest.mark.slow
def test_pair_task_beats_majority(tasks, tmp_path):
    task = tasks["qqp"]
    train, valid = splits(task)
    adapter = trained(task, train, tmp_path, epochs=4)
    preds = evaluate(adapter, task, valid.rows)
    assert metric(task, preds, valid.rows, "accuracy") >= majority_accuracy(task, train, valid.rows) + 15


def test_squad_spans_come_from_the_context(squad):
    task, rows, preds = squad["task"], squad["valid"].rows, squad["preds"]
    assert all(isinstance(p, str) and p in row["context"] for p, row in zip(preds, rows))
    assert metric(task, preds, rows, "exact_match") >= 10
    assert max(len(tokenize(p)) for p in preds) <= squad["adapter"].model_cfg.max_answer_tokens


def test_closed_book_and_bad_settings_are_refused(tasks):
    adapter = BiLSTMAdapter("bilstm")
    reason = adapter.unsupported_reason(tasks["triviaqa"])
    assert reason and "closed-book" in reason and "no generator" in reason
    assert adapter.unsupported_reason(tasks["sst2"]) is None
    for mode in ("finetune", "frozen", "zero-shot"):
        with pytest.raises(UserError, match="--mode"):
            BiLSTMAdapter("bilstm", mode=mode)
    with pytest.raises(UserError, match="epochs"):
        BiLSTMAdapter("bilstm", options={"epochs": 0})
    with pytest.raises(UserError, match="train split"):
        adapter.fit(tasks["sst2"], None)


# ---------------------------------------------------------------------------------------
# bilstm-elmo
@pytest.fixture(scope="module")
def elmo(tasks, tmp_path_factory):
    """One biLM pre-trained on the sample corpus, then a frozen and a fine-tuned task model on SST-2."""
    task = tasks["sst2"]
    train, valid = splits(task)
    texts, fingerprint = corpus([task], "sample")
    cache = tmp_path_factory.mktemp("elmo_cache")
    runs = {}
    for mode in ("frozen", "finetune"):
        adapter = ElmoAdapter("bilstm-elmo", mode=mode, quiet=True,
                              options={**TINY, **TINY_LM, "cache_dir": str(cache), "epochs": 3})
        adapter.pretrain(texts, fingerprint)
        pristine = {k: v.clone() for k, v in adapter.bilm_.state_dict().items()}
        adapter.fit(task, train)
        runs[mode] = dict(adapter=adapter, pristine=pristine, preds=evaluate(adapter, task, valid.rows))
    return dict(task=task, train=train, valid=valid, runs=runs, fingerprint=fingerprint)


def bilm_changed(run) -> bool:
    after = run["adapter"].elmo_module().bilm.state_dict()
    return any(not torch.equal(run["pristine"][k], after[k]) for k in run["pristine"])


def test_elmo_pretrains_once_and_caches(elmo):
    frozen, finetune = elmo["runs"]["frozen"]["adapter"], elmo["runs"]["finetune"]["adapter"]
    assert not frozen.lm_loaded_from_cache_ and finetune.lm_loaded_from_cache_
    assert frozen.lm_loss_ < 8 and frozen.pretrain_seconds_ > 0
    assert frozen.settings()["corpus"] == elmo["fingerprint"] and "lm_dim" in frozen.settings()["bilm"]


def test_elmo_frozen_keeps_the_bilm_bit_identical(elmo):
    run = elmo["runs"]["frozen"]
    assert run["adapter"].fitted_.mode == "frozen" and not bilm_changed(run)
    mix = run["adapter"].elmo_module().mix
    assert mix.weights.requires_grad and not torch.equal(mix.weights.detach(), torch.zeros_like(mix.weights))


def test_elmo_finetune_trains_the_bilm_and_more_parameters(elmo):
    frozen, finetune = elmo["runs"]["frozen"], elmo["runs"]["finetune"]
    assert finetune["adapter"].fitted_.mode == "finetune" and bilm_changed(finetune)
    f_total, f_trainable = frozen["adapter"].parameter_counts()
    t_total, t_trainable = finetune["adapter"].parameter_counts()
    bilm = sum(p.numel() for p in frozen["adapter"].bilm_.parameters())
    assert f_total == t_total and t_trainable == t_total and f_trainable == f_total - bilm


def test_elmo_modes_beat_majority_whatever_the_batch(elmo):
    task, valid = elmo["task"], elmo["valid"]
    floor = majority_accuracy(task, elmo["train"], valid.rows)
    for mode, run in elmo["runs"].items():
        assert metric(task, run["preds"], valid.rows, "accuracy") >= floor + 15, mode
        assert evaluate(run["adapter"], task, valid.rows[:40], batch_size=1) == run["preds"][:40], mode


def test_elmo_refuses_zero_shot_and_fit_without_pretrain(tasks):
    with pytest.raises(UserError, match="zero-shot"):
        ElmoAdapter("bilstm-elmo", mode="zero-shot")
    assert ElmoAdapter.needs_corpus
    with pytest.raises(UserError, match="pretrain"):
        ElmoAdapter("bilstm-elmo").fit(tasks["sst2"], splits(tasks["sst2"])[0])


# ---------------------------------------------------------------------------------------
# end to end
def test_bench_run_end_to_end(tmp_path):
    results = tmp_path / "results"
    code = main(["run", "--model", "bilstm", "--data", "sample", "--tasks", "sst2,squad,triviaqa",
                 "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache"), "--epochs", "2",
                 "--max-train-examples", "40", "--limit", "100", "--quiet"])
    assert code == 0
    # --max-train-examples 40: results sit beside a full run's, named -n40 (a learning-curve point)
    found = {p.stem.removesuffix("-n40"): json.loads(p.read_text()) for p in results.rglob("*-n40.json")}
    assert {"sst2", "squad", "triviaqa"} <= set(found)
    assert found["triviaqa"]["status"] == "unsupported" and "closed-book" in found["triviaqa"]["note"]
    for name in ("sst2", "squad"):
        assert found[name]["status"] == "ok" and found[name]["mode"] == "scratch"
        assert found[name]["efficiency"]["train_seconds"] > 0
    assert len(list((tmp_path / "cache" / "bilstm").glob("*.pt"))) == 2


@pytest.mark.slow
def test_bench_run_elmo_end_to_end(tmp_path):
    results = tmp_path / "results"
    code = main(["run", "--model", "bilstm-elmo", "--data", "sample", "--tasks", "sst2", "--results-dir", str(results),
                 "--cache-dir", str(tmp_path / "cache"), "--epochs", "1", "--max-train-examples", "40",
                 "--limit", "50", "--quiet"])
    assert code == 0
    result = json.loads(next(results.rglob("sst2-n40.json")).read_text())
    assert result["status"] == "ok" and result["mode"] == "frozen" and result["weights"] == "trained"
    assert result["provenance"]["settings"]["corpus"]
    eff = result["efficiency"]
    assert 0 < eff["trainable_parameters"] < eff["num_parameters"]
    assert len(list((tmp_path / "cache" / "elmo").glob("*.pt"))) == 1
    # fine-tuned beside frozen: its own result folder, the same pre-trained biLM, both rows on the leaderboard
    assert main(["run", "--model", "bilstm-elmo", "--mode", "finetune", "--data", "sample", "--tasks", "sst2",
                 "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache"), "--epochs", "1",
                 "--max-train-examples", "40", "--limit", "50", "--quiet"]) == 0
    modes = {p.parent.name: json.loads(p.read_text())["mode"] for p in results.rglob("sst2-n40.json")}
    assert modes == {"bilstm-elmo": "frozen", "bilstm-elmo.finetune": "finetune"}
    assert len(list((tmp_path / "cache" / "elmo").glob("*.pt"))) == 1
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(tmp_path / "boards")]) == 0
    board = (tmp_path / "boards" / "glue.md").read_text()
    assert all(re.search(rf"\| bilstm-elmo \| {mode} +\|", board) for mode in ("frozen", "finetune"))
    assert main(["run", "--model", "bilstm-elmo", "--mode", "zero-shot", "--data", "sample", "--tasks", "sst2",
                 "--results-dir", str(results), "--quiet"]) == 2


@pytest.mark.parametrize("adapter, option", [(BiLSTMAdapter, "char_filters"), (ElmoAdapter, "lm_char_filters")])
def test_char_filters_wider_than_a_word_are_refused(adapter, option):
    with pytest.raises(UserError, match=f"{option}: filter width 20 exceeds max_word_chars=16"):
        adapter("x", options={option: [[20, 8]]})
