"""The evaluation loop with fake adapters: order restored, batch size irrelevant, OOM halving."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.errors import UserError
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


def test_automatic_batches_keep_the_budget_and_cut_padding(tmp_path):
    from benchmark.evaluator import AUTO_BATCH_COST, plan_batches

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
    assert eff.batch_tokens == 400 and eff.batch_cost == AUTO_BATCH_COST["cpu"] and not eff.oom_halvings
    assert eff.batch_size == max(len(b) for b in seen)
    # the planned split costs less than filling each batch in turn, and pads less
    lengths = sorted(len(r["sentence"]) for r in split.rows)
    cuts = [0] + plan_batches(lengths, tokens=400)
    filled = sum((hi - lo) * lengths[hi - 1] for lo, hi in zip(cuts, cuts[1:]))
    planned = sum(len(b) * max(b) for b in seen)
    per_batch = AUTO_BATCH_COST["cpu"]
    assert planned < filled and planned + per_batch * len(seen) < filled + per_batch * (len(cuts) - 1)
    # batch_cost=None asks for that fill, and the Result says so
    seen.clear()
    _, eff = predict_split(adapter, task, split, _cfg(tmp_path, batch_tokens=400, latency_samples=0, batch_cost=None))
    assert eff.batch_cost is None and sum(len(b) * max(b) for b in seen) == filled and len(seen) == len(cuts) - 1


def test_plan_batches_edges():
    from benchmark.evaluator import AUTO_MAX_BATCH, plan_batches

    assert plan_batches([5, 9, 9], batch_size=2) == [2, 3]
    assert plan_batches([], batch_size=2) == [] and plan_batches([], tokens=10, cost=0) == []
    for cost in (None, 0, 16):
        assert plan_batches([50, 60], tokens=10, cost=cost) == [1, 2]  # over budget: each runs alone
        cuts = [0] + plan_batches([1] * 5000, tokens=10**9, cost=cost)
        assert len(cuts) == 6 and max(hi - lo for lo, hi in zip(cuts, cuts[1:])) == AUTO_MAX_BATCH
    assert plan_batches([4, 4, 4, 5], tokens=12) == [3, 4]  # filled in turn: 3 x 5 would pass 12
    assert plan_batches([2, 2, 2, 2, 9], tokens=100, cost=0) == [4, 5]  # padding 4 x 7 outweighs a batch
    assert plan_batches([2, 2, 2, 2, 9], tokens=100, cost=30) == [5]    # ... unless the batch costs more
    assert plan_batches([0, 0, 3], tokens=4, cost=0) == [2, 3]          # empty items count one token


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 12), max_size=9).map(sorted), st.integers(1, 40), st.integers(0, 20))
def test_plan_batches_is_the_cheapest_split(lengths, tokens, cost):
    """Against every contiguous split of the sorted items that keeps the budget."""
    from benchmark.evaluator import plan_batches

    def total(ends):
        cuts = [0] + ends
        return sum((hi - lo) * lengths[hi - 1] + cost for lo, hi in zip(cuts, cuts[1:]))

    def allowed(ends):
        cuts = [0] + ends
        return all(hi - lo == 1 or (hi - lo) * lengths[hi - 1] <= tokens for lo, hi in zip(cuts, cuts[1:]))

    n = len(lengths)
    splits = [[e for e in range(1, n) if mask >> (e - 1) & 1] + [n] for mask in range(2 ** (n - 1))] if n else [[]]
    ends = plan_batches(lengths, tokens=tokens, cost=cost)
    assert allowed(ends) and ends == sorted(set(ends)) and (ends[-1] == n if n else ends == [])
    assert total(ends) == min(total(e) for e in splits if allowed(e))
    filled = plan_batches(lengths, tokens=tokens)  # cost None: fewest batches, each filled in turn
    assert allowed(filled) and len(filled) == min(len(e) for e in splits if allowed(e))


def test_automatic_batching_halves_the_budget_on_out_of_memory(tmp_path):
    task = TASKS["sst2"]
    split = load_split(task, "validation", "sample", limit=100)
    messages = []

    class Uniform(EchoAdapter):  # one length, so the plan puts every item in one batch until it fails
        def length(self, item):
            return 4

    adapter = ready(Uniform(oom_above=10), task)
    cfg = RunConfig(model="echo", data="sample", results_dir=tmp_path, quiet=True, log=messages.append,
                    batch_tokens=100_000, latency_samples=0, latency_warmup=0)
    preds, eff = predict_split(adapter, task, split, cfg)
    assert preds == [len(r["sentence"]) % 2 for r in split.rows]
    assert max(adapter.batches) <= 10 and eff.oom_halvings >= 1 and eff.batch_tokens < 100_000
    assert sum(adapter.batches) == 100  # the plan remade from the failed batch on: nothing run twice
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

    with pytest.raises(UserError, match="predict returned 3 predictions for 4 inputs"):
        predict_split(ready(Short(), task), task, split, _cfg(tmp_path, batch_size=4))


def test_run_writes_results_and_unsupported_notes(tmp_path):
    outcome = run(EchoAdapter(), [TASKS["sst2"], TASKS["squad"]], _cfg(tmp_path))
    assert isinstance(outcome, Outcome)
    assert [p.name for p in outcome.written] == ["sst2.json"]
    assert [p.name for p in outcome.unsupported] == ["squad.json"]
    note = json.loads((tmp_path / "echo" / "squad.json").read_text())
    assert note["status"] == "unsupported" and note["metrics"] == {}


def test_results_record_the_code_as_the_run_started_not_as_they_landed(tmp_path, monkeypatch):
    from benchmark import provenance

    monkeypatch.setattr(provenance, "code_sha256", lambda: "started" + "0" * 9)
    cfg = _cfg(tmp_path)
    monkeypatch.setattr(provenance, "code_sha256", lambda: "edited" + "0" * 10)  # the checkout changed mid-run
    outcome = run(EchoAdapter(), [TASKS["sst2"]], cfg)
    (path,) = outcome.written
    assert json.loads(path.read_text())["provenance"]["code_sha256"] == "started" + "0" * 9
