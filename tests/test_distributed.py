"""Data-parallel runs under torchrun with 2 CPU processes (gloo): the same Results as one process,
fine-tuning through Trainer's DDP, and a dying rank that fails the run without a partial Result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark import sample
from benchmark.models.hf import train_tokenizer
from benchmark.tasks import discover

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _accelerate() -> list[str]:
    """`accelerate launch` with 2 processes on the CPU: --multi_gpu is its torchrun path (its --cpu path
    needs mpirun and otherwise starts a single process); a free port, as tests run side by side."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(port)]
TASKS = discover().tasks
pytestmark = pytest.mark.slow


def _env(**extra) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def _run(args: list[str], *, launcher: list[str] | None = None, **env) -> subprocess.CompletedProcess:
    command = (launcher or [sys.executable]) + ["-m", "benchmark", "run", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(**env), cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    texts = [t for name in ("sst2", "mnli") for r in sample.generate(TASKS[name], "train") for t in TASKS[name].texts(r)]
    tokenizer = train_tokenizer(texts, family="wordpiece", vocab_size=2000)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=256,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    folder = tmp_path_factory.mktemp("tiny-cls")
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def _comparable(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.glob("*/*.json")):
        data = json.loads(path.read_text())
        data.pop("efficiency")
        for key in ("created", "command", "hardware", "world_size"):
            data["provenance"].pop(key)
        out[path.name] = data
    return out


def test_torchrun_results_equal_single_process(tiny_classifier, tmp_path):
    args = ["--model", tiny_classifier, "--tasks", "sst2,mnli", "--data", "sample", "--batch-size", "16",
            "--label-map", "negative=entailment,positive=contradiction"]
    single = _run(args + ["--results-dir", str(tmp_path / "one")])
    assert single.returncode == 0, single.stderr
    double = _run(args + ["--results-dir", str(tmp_path / "two")], launcher=TORCHRUN)
    assert double.returncode == 0, double.stderr
    one, two = _comparable(tmp_path / "one"), _comparable(tmp_path / "two")
    assert sorted(one) == ["mnli-validation_matched.json", "mnli-validation_mismatched.json", "sst2.json"]
    assert one == two  # field by field, apart from timing and world size
    for path in (tmp_path / "two").glob("*/*.json"):
        result = json.loads(path.read_text())
        assert result["provenance"]["world_size"] == 2
        assert result["efficiency"]["throughput_per_s"] > 0


def test_accelerate_launch_results_equal_single_process(tiny_classifier, tmp_path):
    args = ["--model", tiny_classifier, "--tasks", "sst2", "--data", "sample", "--batch-size", "16",
            "--device", "cpu"]
    single = _run(args + ["--results-dir", str(tmp_path / "one")])
    assert single.returncode == 0, single.stderr
    double = _run(args + ["--results-dir", str(tmp_path / "two")], launcher=_accelerate())
    assert double.returncode == 0, double.stderr[-3000:]
    assert _comparable(tmp_path / "one") == _comparable(tmp_path / "two")
    result = json.loads(next((tmp_path / "two").glob("*/sst2.json")).read_text())
    assert result["provenance"]["world_size"] == 2


def test_torchrun_fine_tunes_with_trainer_ddp(tmp_path):
    import torch
    from transformers import BertConfig, BertForPreTraining

    texts = [t for r in sample.generate(TASKS["sst2"], "train") for t in TASKS["sst2"].texts(r)]
    tokenizer = train_tokenizer(texts, family="wordpiece", vocab_size=2000)
    torch.manual_seed(0)
    folder = tmp_path / "backbone"
    BertForPreTraining(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=128)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    cache = tmp_path / "cache"
    out = _run(["--model", str(folder), "--tasks", "sst2", "--data", "sample", "--mode", "finetune", "--epochs", "1",
                "--learning-rate", "1e-3", "--results-dir", str(tmp_path / "res"), "--cache-dir", str(cache)],
               launcher=TORCHRUN)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(next((tmp_path / "res").glob("*/sst2.json")).read_text())
    assert result["mode"] == "finetune" and result["provenance"]["world_size"] == 2
    assert result["efficiency"]["train_seconds"] > 0
    entries = [p for p in (cache / "encoder").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and (entries[0] / "trained.json").is_file()  # saved once, by rank 0


DYING_ADAPTER = textwrap.dedent("""
    import os
    from benchmark.models.majority import MajorityAdapter

    class DyingAdapter(MajorityAdapter):
        name = "dying"

        def predict(self, task, batch):
            if os.environ.get("RANK") == "1" and os.environ.get("DIE") == "1":
                os._exit(3)
            return super().predict(task, batch)
""")


def test_a_dying_rank_fails_the_run_and_leaves_no_partial_result(tmp_path):
    site = tmp_path / "site"
    (site / "dying_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "dying_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: dying-plugin\n"
                                                                   "Version: 1.0\n")
    (site / "dying_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[benchmark.adapters]\ndying = dying_adapter:DyingAdapter\n")
    (site / "dying_adapter.py").write_text(DYING_ADAPTER)
    env = {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    results = tmp_path / "res"
    args = ["--model", "dying", "--tasks", "sst2", "--data", "sample", "--results-dir", str(results)]
    failed = _run(args, launcher=TORCHRUN, DIE="1", **env)
    assert failed.returncode != 0
    assert "exitcode" in failed.stderr.lower() or "failed" in failed.stderr.lower()
    assert not list(results.glob("*/*.json"))
    resumed = _run(args, launcher=TORCHRUN, DIE="0", **env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((results / "dying" / "sst2.json").read_text())["provenance"]["world_size"] == 2
