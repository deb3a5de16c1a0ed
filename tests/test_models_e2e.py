"""Tiny BERT, DistilBERT and T5 checkpoints built here, evaluated through `bench run --model <dir>`
on the sample suite: every task kind yields a Result and a leaderboard row."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from benchmark import sample  # noqa: E402
from benchmark.cli import main  # noqa: E402
from benchmark.models.hf import train_tokenizer  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

TASKS = discover().tasks


def _texts(*names: str) -> list[str]:
    return [t for n in names for r in sample.generate(TASKS[n], "train") for t in TASKS[n].texts(r)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Saved like hub checkpoints: BERT and DistilBERT bodies without task heads, a T5 with its LM head."""
    import torch
    from transformers import (BertConfig, BertForPreTraining, DistilBertConfig, DistilBertForMaskedLM, T5Config,
                              T5ForConditionalGeneration)

    from benchmark.models.text2text import training_texts

    root = tmp_path_factory.mktemp("ckpt")
    wordpiece = train_tokenizer(_texts("sst2", "qqp", "squad"), family="wordpiece", vocab_size=3000)
    torch.manual_seed(0)
    bert = BertForPreTraining(BertConfig(vocab_size=len(wordpiece), hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=256))
    distil = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(wordpiece), dim=32, n_layers=1, n_heads=2,
                                                    hidden_dim=64, max_position_embeddings=256))
    t5_texts = [t for n in ("sst2", "mnli", "squad", "triviaqa")
                for t in training_texts(TASKS[n], sample.generate(TASKS[n], "train"))]
    unigram = train_tokenizer(t5_texts, family="unigram", vocab_size=4000)
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=len(unigram), d_model=32, d_ff=64, d_kv=16, num_layers=1,
                                             num_heads=2, decoder_start_token_id=unigram.pad_token_id,
                                             pad_token_id=unigram.pad_token_id, eos_token_id=unigram.eos_token_id))
    folders = {}
    for name, model, tokenizer in (("tiny-bert", bert, wordpiece), ("tiny-distilbert", distil, wordpiece),
                                   ("tiny-t5", t5, unigram)):
        folders[name] = root / name
        model.save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    return folders


@pytest.fixture(scope="module")
def bench_run(checkpoints, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    boards = tmp_path_factory.mktemp("boards")
    cache = tmp_path_factory.mktemp("cache")
    common = ["--data", "sample", "--results-dir", str(results), "--cache-dir", str(cache), "--limit", "60",
              "--quiet", "--epochs", "1", "--learning-rate", "1e-3"]
    for encoder in ("tiny-bert", "tiny-distilbert"):  # no head: auto fine-tunes one per task
        assert main(["run", "--model", str(checkpoints[encoder]), "--tasks", "sst2,qqp,squad,triviaqa",
                     *common]) == 0
    assert main(["run", "--model", str(checkpoints["tiny-t5"]), "--tasks", "sst2,mnli,squad,triviaqa",
                 *common]) == 0
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(boards)]) == 0
    return results, boards


def _results(results, prefix: str) -> dict[str, dict]:
    folder = next(p for p in results.iterdir() if p.name.startswith(prefix + "-"))
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


@pytest.mark.parametrize("prefix", ["tiny-bert", "tiny-distilbert"])
def test_encoders_do_classification_pairs_and_extractive_qa(bench_run, prefix):
    results, _ = bench_run
    got = _results(results, prefix)
    assert set(got) == {"sst2", "qqp", "squad", "triviaqa"}
    for name in ("sst2", "qqp", "squad"):
        r = got[name]
        assert r["status"] == "ok" and r["adapter"] == "encoder" and r["mode"] == "finetune"
        assert r["efficiency"]["num_parameters"] > 0 and r["efficiency"]["latency_ms"]["p50"] > 0
        assert r["provenance"]["model_revision"].startswith("sha256:")
    assert set(got["squad"]["metrics"]) == {"exact_match", "f1"}
    assert got["triviaqa"]["status"] == "unsupported"  # closed-book QA is not an encoder's job: "—"


def test_t5_does_every_kind(bench_run):
    results, _ = bench_run
    got = _results(results, "tiny-t5")
    assert set(got) == {"sst2", "mnli-validation_matched", "mnli-validation_mismatched", "squad", "triviaqa"}
    for r in got.values():
        assert r["status"] == "ok" and r["adapter"] == "text2text" and r["mode"] == "zero-shot"
        assert r["efficiency"]["num_parameters"] > 0


def test_each_model_gets_a_leaderboard_row(bench_run):
    _, boards = bench_run
    for suite, models in (("glue", ("tiny-bert", "tiny-distilbert", "tiny-t5")),
                          ("qa", ("tiny-bert", "tiny-distilbert", "tiny-t5"))):
        table = (boards / f"{suite}.md").read_text().split("<details>")[0]
        for model in models:
            assert any(line.startswith("| ") and model in line for line in table.splitlines()), (suite, model)
