"""The adapter contract: declared modes and options, one validation policy, a Fitted record,
settings that hold only what shapes the numbers, and the README's example adapter."""

from __future__ import annotations

import io
import json
import re
import textwrap
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.evaluator import Outcome, RunConfig, run
from benchmark.models.base import Adapter, Fitted
from benchmark.models.registry import BUILTIN_ADAPTERS
from benchmark.tasks import discover

ROOT = Path(__file__).resolve().parents[1]
TASKS = discover().tasks


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Config-only checkpoint folders: enough to resolve the adapter, which validates before any weights load."""
    root = tmp_path_factory.mktemp("ckpt")
    configs = {"bert": {"model_type": "bert", "architectures": ["BertForSequenceClassification"]},
               "t5": {"model_type": "t5", "is_encoder_decoder": True, "architectures": ["T5ForConditionalGeneration"]},
               "llama": {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}}
    for name, config in configs.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(config))
    return {"encoder": str(root / "bert"), "text2text": str(root / "t5"), "causal": str(root / "llama")}


# adapter: (a mode it does not take, a flag of an option it does not take, adapters that do take that option)
FOREIGN = {
    "majority": ("zero-shot", ["--epochs", "2"], "bilstm, bilstm-elmo, encoder, text2text, causal"),
    "bilstm": ("finetune", ["--compile"], "encoder"),
    "bilstm-elmo": ("zero-shot", ["--label-map", "a=b"], "encoder"),
    "encoder": ("scratch", ["--scoring", "rank"], "text2text"),   # it takes every mode the CLI offers
    "text2text": ("frozen", ["--compile"], "encoder"),
    "causal": ("frozen", ["--pair-encoding", "joint"], "encoder"),
}


def _one_line_exit_2(argv, capsys, tmp_path) -> str:
    results = tmp_path / "results"
    try:
        code = main([*argv, "--data", "sample", "--tasks", "sst2", "--results-dir", str(results), "--quiet"])
    except SystemExit as exc:
        code = exc.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not results.exists()
    return lines[0]


def test_every_builtin_adapter_is_covered():
    assert set(FOREIGN) == {e.name for e in BUILTIN_ADAPTERS}


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_a_foreign_mode_is_one_line_exit_2(name, checkpoints, capsys, tmp_path):
    mode = FOREIGN[name][0]
    line = _one_line_exit_2(["run", "--model", checkpoints.get(name, name), "--mode", mode], capsys, tmp_path)
    assert f"mode {mode}" in line or f"mode '{mode}'" in line


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_a_foreign_option_is_one_line_exit_2_naming_who_takes_it(name, checkpoints, capsys, tmp_path):
    _, flags, takers = FOREIGN[name]
    line = _one_line_exit_2(["run", "--model", checkpoints.get(name, name), *flags], capsys, tmp_path)
    option = flags[0][2:].replace("-", "_")
    assert f"adapter {name} does not take option '{option}'" in line
    assert f"adapters that take it: {takers}" in line


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_models_command_prints_declared_modes_and_options(name, capsys):
    cls = next(e for e in BUILTIN_ADAPTERS if e.name == name).load()
    assert main(["models", name]) == 0
    out = capsys.readouterr().out
    assert f"modes: {', '.join(cls.modes)}" in out
    for f in cls.option_fields():
        assert re.search(rf"^{f.name}\s", out, re.M), f.name


# (adapter, mode): does fit need the task's train split?
NEEDS_TRAIN = [("majority", "auto", True), ("bilstm", "auto", True), ("bilstm-elmo", "frozen", True),
          ("encoder", "frozen", True), ("encoder", "finetune", True), ("encoder", "auto", False),
          ("encoder", "zero-shot", False), ("text2text", "finetune", True), ("text2text", "auto", False),
          ("causal", "finetune", True), ("causal", "zero-shot", False)]
FEWSHOT = {"num_fewshot": 1}


@pytest.mark.parametrize("name, mode, learns", NEEDS_TRAIN)
def test_a_task_without_a_train_split_is_unsupported_where_the_mode_learns(name, mode, learns):
    from dataclasses import replace

    cls = next(e for e in BUILTIN_ADAPTERS if e.name == name).load()
    adapter = cls("m", mode=mode)
    task = TASKS["sst2"]
    if name == "causal" and not learns:  # a K-shot prompt draws its examples from the train split
        assert cls("m", mode=mode, options=FEWSHOT).needs_train_split()
    no_train = replace(task, dataset=replace(task.dataset, train=None))
    assert adapter.needs_train_split() is learns
    reason = adapter.unsupported_reason(no_train)
    assert (reason is not None and "sst2 declares none" in reason) is learns
    assert adapter.unsupported_reason(task) is None


def test_a_suite_run_goes_on_past_a_task_without_a_train_split(tmp_path):
    from dataclasses import replace

    from benchmark.models.majority import MajorityAdapter

    task = TASKS["sst2"]
    no_train = replace(task, name="sst2_no_train", dataset=replace(task.dataset, train=None, local="sst2"))
    cfg = RunConfig(model="majority", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None)
    outcome = run(MajorityAdapter("majority"), [no_train, task, TASKS["qqp"]], cfg, Outcome())
    assert [p.name for p in outcome.unsupported] == ["sst2_no_train.json"]
    assert sorted(p.name for p in outcome.written) == ["qqp.json", "sst2.json"]
    note = json.loads(outcome.unsupported[0].read_text())
    assert "needs the task's train split" in note["note"]


def _resume_key(adapter: Adapter) -> str:
    from benchmark.evaluator import _resume_key

    return _resume_key(adapter, TASKS["sst2"], RunConfig(model="m"))


@pytest.mark.parametrize("name", ["bilstm", "bilstm-elmo", "encoder", "text2text", "causal"])
def test_an_option_that_cannot_change_a_number_leaves_the_resume_key_alone(name, tmp_path):
    cls = next(e for e in BUILTIN_ADAPTERS if e.name == name).load()
    plain = cls("m")
    other = cls("m", options={"cache_dir": str(tmp_path)}, quiet=True)
    assert "cache_dir" not in other.settings()
    assert _resume_key(plain) == _resume_key(other)
    assert _resume_key(plain) != _resume_key(cls("m", options={"epochs": 7}))  # one that does change it


def test_majority_settings_are_mode_and_seed_only():
    from benchmark.models.majority import MajorityAdapter

    assert MajorityAdapter("majority", quiet=True).settings() == {"mode": "auto", "seed": 0}


def test_fit_must_return_a_fitted_record(tmp_path):
    class OldStyle(Adapter):
        name = "old"
        kinds = frozenset({"classification"})

        def fit(self, task, train):
            return self

        def predict(self, task, batch):
            return [0] * len(batch)

    cfg = RunConfig(model="old", results_dir=tmp_path, quiet=True, log=lambda m: None)
    with pytest.raises(Exception, match="not a Fitted record"):
        run(OldStyle("old"), [TASKS["sst2"]], cfg)


@pytest.mark.parametrize("fields, needle", [
    (dict(mode="banana", weights="none"), "mode='banana'"),
    (dict(mode="zero-shot", weights="pretrained-ish"), "weights='pretrained-ish'"),
    (dict(mode="scratch", weights="trained", train_seconds="slow"), "train_seconds='slow'"),
    (dict(mode="scratch", weights="trained", trainable_parameters="many"), "trainable_parameters='many'"),
])
def test_a_fitted_record_outside_the_vocabulary_is_refused(tmp_path, fields, needle):
    from benchmark.errors import UserError

    class Sloppy(Adapter):
        name = "sloppy"
        kinds = frozenset({"classification"})

        def fit(self, task, train):
            return Fitted(**fields)

        def predict(self, task, batch):
            return [0] * len(batch)

    cfg = RunConfig(model="sloppy", results_dir=tmp_path, quiet=True, log=lambda m: None)
    with pytest.raises(UserError, match=f"adapter sloppy: fit\\(\\) returned Fitted\\({re.escape(needle)}"):
        run(Sloppy("sloppy"), [TASKS["sst2"]], cfg)
    assert not list(tmp_path.glob("*/*.json"))


def test_the_trainable_parameters_fit_reports_reach_the_result(tmp_path):
    class Counted(Adapter):
        name = "counted"
        kinds = frozenset({"classification"})

        def fit(self, task, train):
            return Fitted(mode="scratch", weights="trained", trainable_parameters=12345)

        def predict(self, task, batch):
            return [0] * len(batch)

    cfg = RunConfig(model="counted", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None)
    run(Counted("counted"), [TASKS["sst2"]], cfg)
    (path,) = tmp_path.glob("*/sst2.json")
    assert json.loads(path.read_text())["efficiency"]["trainable_parameters"] == 12345


class _Predicts(Adapter):
    """A classifier whose predict is given per test: the evaluator must hold it to the contract."""
    name = "predicts"
    kinds = frozenset({"classification"})
    answer = staticmethod(lambda batch: [0] * len(batch))

    def fit(self, task, train):
        return Fitted(mode="zero-shot", weights="none")

    def predict(self, task, batch):
        return type(self).answer(batch)


@pytest.mark.parametrize("answer, needle", [
    (lambda batch: [2] * len(batch), "predicted label 2 for sst2, which has 2 labels"),
    (lambda batch: [-2] * len(batch), "predicted label -2"),
    (lambda batch: [0] * (len(batch) - 1), "predictions for"),
    (lambda batch: [0] * len(batch) if len(batch) > 1 else [], "predictions for 1 input"),
    (lambda batch: ["positive"] * len(batch), "predicted 'positive' (str) for sst2"),
    (lambda batch: [True] * len(batch), "predicted True (bool)"),
    (lambda batch: [None] * len(batch), "predicted None (NoneType)"),
])
def test_predictions_outside_the_contract_are_a_one_line_error(tmp_path, answer, needle):
    from benchmark.errors import UserError

    cls = type("P", (_Predicts,), {"answer": staticmethod(answer)})
    cfg = RunConfig(model="p", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None)
    with pytest.raises(UserError, match=re.escape(needle)):
        run(cls("p"), [TASKS["sst2"]], cfg)
    assert not list(tmp_path.glob("*/*.json"))


def test_an_adapter_error_that_mentions_memory_is_not_retried_as_out_of_memory(tmp_path):
    calls = []

    def answer(batch):
        calls.append(len(batch))
        raise RuntimeError("my index ran out of memory slots")

    cls = type("P", (_Predicts,), {"answer": staticmethod(answer)})
    cfg = RunConfig(model="p", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None, batch_size=64)
    with pytest.raises(RuntimeError, match="memory slots"):
        run(cls("p"), [TASKS["sst2"]], cfg)
    assert calls == [64]  # raised as it came, not halved six times first


def test_fitted_is_frozen():
    record = Fitted(mode="zero-shot", weights="none")
    with pytest.raises(Exception):
        record.mode = "finetune"


# --- --quiet reaches training -------------------------------------------------------------
class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so progress bars draw unless told not to."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_silences_training(quiet, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    argv = ["run", "--model", "bilstm", "--data", "sample", "--tasks", "sst2", "--results-dir", str(tmp_path / "r"),
            "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--max-train-examples", "40", "--limit", "10"]
    assert main(argv + (["--quiet"] if quiet else [])) == 0
    training_bar = "bilstm sst2" in err.getvalue()
    assert training_bar is not quiet


# --- the README's example adapter, run as written ------------------------------------------
def readme_adapter() -> str:
    section = (ROOT / "README.md").read_text().split("## Adding a model adapter", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_keyword_adapter_runs_as_written(tmp_path):
    namespace: dict = {}
    exec(compile(textwrap.dedent(readme_adapter()), "README.md", "exec"), namespace)
    keyword = namespace["KeywordAdapter"]
    cfg = RunConfig(model="keyword", results_dir=tmp_path, quiet=True, log=lambda m: None)
    outcome = run(keyword("keyword"), [TASKS["sst2"], TASKS["squad"]], cfg, Outcome())
    assert len(outcome.written) == 1 and len(outcome.unsupported) == 1
    result = json.loads(outcome.written[0].read_text())
    assert result["mode"] == "zero-shot" and result["weights"] == "none" and 0 <= result["metrics"]["accuracy"] <= 100
    assert result["provenance"]["settings"] == {"mode": "auto", "seed": 0}
    great = keyword("keyword", options={"word": "great"})
    assert great.settings() == {"mode": "auto", "seed": 0, "word": "great"}
    with pytest.raises(Exception, match="does not take option 'wrod'.*did you mean 'word'"):
        keyword("keyword", options={"wrod": "x"})
    with pytest.raises(Exception, match="does not take --mode finetune"):
        keyword("keyword", mode="finetune")


# --- the hub fallback: decided once, before the run, and recorded ------------------------------
def test_hub_fallback_is_decided_once_and_recorded(tmp_path, monkeypatch, capsys):
    from benchmark import data as D

    probes = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(D, "hub_reachable", lambda timeout=D.HUB_PROBE_SECONDS: probes.append(1) and False)
    monkeypatch.setattr(D, "_load_hub", lambda *a, **k: pytest.fail("no hub load once the run fell back"))
    results = tmp_path / "results"
    assert main(["run", "--model", "majority", "--tasks", "sst2,mnli,qqp", "--results-dir", str(results),
                 "--quiet"]) == 0
    assert len(probes) == 1
    assert "SAMPLE suite" in capsys.readouterr().err
    for path in results.glob("*/*.json"):
        result = json.loads(path.read_text())
        assert result["data"]["source"] == "sample"
        assert "unreachable" in result["provenance"]["data_fallback"]


def test_a_checkpoint_no_adapter_can_run_is_named_with_its_head(tmp_path):
    from transformers import T5Config

    from benchmark.errors import ModelError
    from benchmark.models.registry import resolve

    T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8,
             architectures=["T5EncoderModel"], is_encoder_decoder=False).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=r"model_type 't5' \(T5EncoderModel\) has no adapter: .*encoder-decoder"):
        resolve(str(tmp_path), online=False)


def test_another_release_of_a_plugin_adapter_redoes_its_results(tmp_path):
    from benchmark.models.majority import MajorityAdapter

    def once(provider: str) -> Outcome:
        cfg = RunConfig(model="m", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None,
                        adapter_provider=provider)
        return run(MajorityAdapter("m"), [TASKS["sst2"]], cfg)

    assert len(once("my-adapters==0.1.0").written) == 1
    assert len(once("my-adapters==0.1.0").skipped) == 1
    assert len(once("my-adapters==0.2.0").written) == 1  # a new release may predict otherwise
    (path,) = tmp_path.glob("*/sst2.json")
    assert json.loads(path.read_text())["provenance"]["adapter_provider"] == "my-adapters==0.2.0"


def test_an_encode_that_drops_an_example_is_a_one_line_error(tmp_path):
    from benchmark.errors import UserError

    class Drops(_Predicts):
        def encode(self, task, rows):
            return list(rows)[1:]

    cfg = RunConfig(model="p", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None)
    with pytest.raises(UserError, match="encode returned 299 items for 300 examples of sst2"):
        run(Drops("p"), [TASKS["sst2"]], cfg)


def test_numpy_label_ids_are_ids(tmp_path):
    import numpy as np

    cls = type("P", (_Predicts,), {"answer": staticmethod(lambda batch: list(np.zeros(len(batch), dtype=np.int64)))})
    cfg = RunConfig(model="p", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None)
    assert len(run(cls("p"), [TASKS["sst2"]], cfg).written) == 1
