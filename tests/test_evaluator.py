"""The evaluation loop with fake adapters: order restored, batch size irrelevant, OOM halving."""

from __future__ import annotations

import json

import pytest

from benchmark.data import load_split
from benchmark.evaluator import Outcome, RunConfig, predict_split, run
from benchmark.models.base import Adapter, Fitted
from benchmark.tasks import discover
from helpers import ready

TASKS = discover().tasks


class EchoAdapter(Adapter):
    """Predicts a label from the text's length, and records the batches it saw."""

    name = "echo"
    kinds = frozenset({"classification"})

    def __init__(self, *a, oom_above: int | None = None, **kw):
        super().__init__("echo", **kw)
        self.oom_above = oom_above
        self.batches: list[int] = []

    def fit(self, task, train):
        return Fitted(mode="zero-shot", weights="none")

    def length(self, item):
        return len(item["sentence"])

    def predict(self, task, batch):
        if self.oom_above is not None and len(batch) > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append(len(batch))
        return [len(row["sentence"]) % 2 for row in batch]


def _cfg(tmp_path, **kw) -> RunConfig:
    return RunConfig(model="echo", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None, **kw)


def test_predictions_come_back_in_the_original_order(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample")
    adapter = ready(EchoAdapter(), task)
    preds, eff = predict_split(adapter, task, split, _cfg(tmp_path, batch_size=7))
    assert preds == [len(r["sentence"]) % 2 for r in split.rows]
    assert eff.batch_size == 7 and eff.latency_ms["p50"] >= 0 and eff.throughput_per_s > 0


@pytest.mark.parametrize("batch_size", [1, 5, 32, 1000])
def test_batch_size_does_not_change_predictions(tmp_path, batch_size):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=100)
    adapter = ready(EchoAdapter(), task)
    preds, _ = predict_split(adapter, task, split, _cfg(tmp_path, batch_size=batch_size))
    assert preds == [len(r["sentence"]) % 2 for r in split.rows]


def test_batches_are_length_sorted(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=60)
    seen = []

    class Recorder(EchoAdapter):
        def predict(self, task, batch):
            seen.extend(len(r["sentence"]) for r in batch)
            return super().predict(task, batch)

    adapter = ready(Recorder(), task)
    predict_split(adapter, task, split, _cfg(tmp_path, batch_size=8, latency_samples=0))
    assert seen == sorted(seen)


def test_out_of_memory_halves_the_batch_and_says_so(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=100)
    messages = []
    adapter = ready(EchoAdapter(oom_above=10), task)
    cfg = RunConfig(model="echo", data="sample", results_dir=tmp_path, quiet=True, log=messages.append, batch_size=64)
    preds, eff = predict_split(adapter, task, split, cfg)
    assert eff.batch_size == 8 and max(adapter.batches) <= 10
    assert preds == [len(r["sentence"]) % 2 for r in split.rows]
    assert any("batch size halved to 8" in m for m in messages)


def test_automatic_batches_fill_the_token_budget(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=120)
    seen: list[list[int]] = []

    class Recorder(EchoAdapter):
        def predict(self, task, batch):
            seen.append([len(r["sentence"]) for r in batch])
            return super().predict(task, batch)

    adapter = ready(Recorder(), task)
    preds, eff = predict_split(adapter, task, split, _cfg(tmp_path, batch_tokens=400, latency_samples=0))
    assert preds == [len(r["sentence"]) % 2 for r in split.rows]
    assert all(len(b) * max(b) <= 400 for b in seen if len(b) > 1)
    assert any(len(b) * max(b) > 400 / 2 for b in seen)  # filled, not just small
    # each batch stops where the next example would overflow the budget
    assert all((len(b) + 1) * max(b + [n[0]]) > 400 for b, n in zip(seen, seen[1:]))
    assert eff.batch_tokens == 400 and eff.batch_size == max(len(b) for b in seen) and not eff.oom_halvings


def test_next_batch_edges():
    from benchmark.evaluator import AUTO_MAX_BATCH, next_batch

    assert next_batch([5, 9, 9], 0, batch_size=2, tokens=None) == 2
    assert next_batch([50, 60], 0, batch_size=None, tokens=10) == 1  # one example over budget still runs alone
    assert next_batch([1] * 5000, 0, batch_size=None, tokens=10**9) == AUTO_MAX_BATCH
    assert next_batch([4, 4, 4, 5], 1, batch_size=None, tokens=12) == 3  # 3 x 5 would pass 12


def test_automatic_batching_halves_the_budget_on_out_of_memory(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=100)
    messages = []
    adapter = ready(EchoAdapter(oom_above=10), task)
    cfg = RunConfig(model="echo", data="sample", results_dir=tmp_path, quiet=True, log=messages.append,
                    batch_tokens=100_000)
    preds, eff = predict_split(adapter, task, split, cfg)
    assert preds == [len(r["sentence"]) % 2 for r in split.rows]
    assert max(adapter.batches) <= 10 and eff.oom_halvings >= 1 and eff.batch_tokens < 100_000
    assert any("budget halved" in m for m in messages)


class StagedAdapter(EchoAdapter):
    """Collation apart from prediction, with a log of which thread did what, and when."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log: list[tuple[str, int, bool]] = []  # (step, first length of the batch, on the main thread)

    def collate(self, task, batch):
        import threading

        self.log.append(("collate", len(batch[0]["sentence"]), threading.current_thread() is threading.main_thread()))
        return list(batch)

    def predict_collated(self, task, batch):
        import threading
        import time

        self.log.append(("start", len(batch[0]["sentence"]), threading.current_thread() is threading.main_thread()))
        time.sleep(0.01)  # a device at work: long enough for the helper thread to collate the next batch
        out = self.predict(task, batch)
        self.log.append(("end", len(batch[0]["sentence"]), True))
        return out


@pytest.mark.parametrize("oom_above", [None, 10])
def test_prefetch_collates_the_next_batch_while_this_one_runs(tmp_path, oom_above):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=100)
    plain, _ = predict_split(ready(StagedAdapter(oom_above=oom_above), task), task, split,
                             _cfg(tmp_path, batch_size=32, prefetch=False, latency_samples=0))
    adapter = ready(StagedAdapter(oom_above=oom_above), task)
    preds, eff = predict_split(adapter, task, split, _cfg(tmp_path, batch_size=32, prefetch=True, latency_samples=0))
    assert preds == plain == [len(r["sentence"]) % 2 for r in split.rows]
    assert bool(eff.oom_halvings) == (oom_above is not None)
    assert eff.prefetch is True
    helper = [i for i, (step, _, main) in enumerate(adapter.log) if step == "collate" and not main]
    assert helper, "no batch was collated ahead on the helper thread"
    # a look-ahead collation happened while a batch was running (between its start and its end)
    last_event = [next((step for step, _, _ in reversed(adapter.log[:i]) if step != "collate"), None) for i in helper]
    assert "start" in last_event


def test_prefetch_is_on_for_cuda_only_by_default(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=40)
    adapter = ready(StagedAdapter(), task)
    _, eff = predict_split(adapter, task, split, _cfg(tmp_path, batch_size=8, latency_samples=0))
    assert all(main for step, _, main in adapter.log if step == "collate") and eff.prefetch is False


def test_other_errors_are_not_swallowed(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=10)

    class Broken(EchoAdapter):
        def predict(self, task, batch):
            raise ValueError("bug in adapter")

    with pytest.raises(ValueError, match="bug in adapter"):
        predict_split(ready(Broken(), task), task, split, _cfg(tmp_path))


def test_wrong_number_of_predictions_is_an_error(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=10)

    class Short(EchoAdapter):
        def predict(self, task, batch):
            return [0] * (len(batch) - 1)

    with pytest.raises(RuntimeError, match="returned"):
        predict_split(ready(Short(), task), task, split, _cfg(tmp_path, batch_size=4))


def test_run_writes_results_and_unsupported_notes(tmp_path):
    outcome = run(EchoAdapter(), [TASKS["sst2"], TASKS["squad"]], _cfg(tmp_path))
    assert isinstance(outcome, Outcome)
    assert [p.name for p in outcome.written] == ["sst2.json"]
    assert [p.name for p in outcome.unsupported] == ["squad.json"]
    note = json.loads((tmp_path / "echo" / "squad.json").read_text())
    assert note["status"] == "unsupported" and note["metrics"] == {}
