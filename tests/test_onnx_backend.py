"""The encoder's ONNX Runtime backend on tiny BERT / DistilBERT checkpoints (offline): fp32 answers equal
PyTorch's, the export is cached by weights, int8 is its own result row, and bad input is one line."""

from __future__ import annotations

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("onnxruntime")

from benchmark.cli import main  # noqa: E402
from benchmark.errors import UserError  # noqa: E402
from benchmark.models import onnx_runtime  # noqa: E402
from benchmark.models.encoder import EncoderAdapter  # noqa: E402
from benchmark.results import iter_results, row_mode  # noqa: E402
from helpers import predict_in_batches, ready  # noqa: E402
from test_encoder import build, rows, tasks, tokenizer  # noqa: E402,F401  (fixtures)


def _pair(folder: str, task, tmp_path, **options):
    """The same checkpoint on torch and on ONNX Runtime."""
    torch_run = ready(EncoderAdapter(folder, options=dict(options)), task)
    onnx_run = ready(EncoderAdapter(folder, options=dict(options, backend="onnxruntime",
                                                         cache_dir=str(tmp_path / "cache"))), task)
    return torch_run, onnx_run


@pytest.mark.parametrize("name,kind,arch", [("sst2", "cls", "bert"), ("mnli", "cls", "bert"),
                                            ("qqp", "cls", "distilbert"), ("squad", "qa", "bert"),
                                            ("squad", "qa", "distilbert")])
def test_fp32_onnx_answers_equal_pytorch(build, tasks, rows, tmp_path, name, kind, arch):
    """Labels identical, QA spans identical (long contexts over several windows included), and the raw
    scores equal to float rounding, whatever the batch size."""
    task = tasks[name]
    labels = dict(enumerate(task.labels)) if kind == "cls" else None
    windows = {"max_length": 64, "doc_stride": 16} if kind == "qa" else {}  # long contexts: several windows
    eager, onnx = _pair(build(kind, labels, arch=arch), task, tmp_path, **windows)
    assert onnx.session_ is not None and eager.session_ is None
    # the export traces eager attention, then gives the torch model back its own implementation
    assert onnx.model_.config._attn_implementation == eager.model_.config._attn_implementation
    items = eager.encode(task, rows[name])
    if kind == "qa":
        assert max(len(ex.windows) for ex in items) > 1
    want = predict_in_batches(eager, task, items, 8)
    for batch_size in (1, 8, 64):
        assert predict_in_batches(onnx, task, onnx.encode(task, rows[name]), batch_size) == want
    for got, ref in zip(onnx.logits(task, items[:4]), eager.logits(task, items[:4])):
        if kind == "qa":
            for (gs, ge), (rs, re) in zip(got, ref):
                np.testing.assert_allclose(gs, rs, atol=1e-4)
                np.testing.assert_allclose(ge, re, atol=1e-4)
        else:
            np.testing.assert_allclose(got, ref, atol=1e-4)


def test_export_is_cached_by_the_weights(build, tasks, tmp_path):
    import torch

    task = tasks["sst2"]
    folder = build("cls")
    first = ready(EncoderAdapter(folder, options={"backend": "onnxruntime", "cache_dir": str(tmp_path)}), task)
    again = ready(EncoderAdapter(folder, options={"backend": "onnxruntime", "cache_dir": str(tmp_path)}), task)
    assert not first.export_.from_cache and again.export_.from_cache
    assert again.export_.path == first.export_.path
    with torch.no_grad():  # other weights, other file: a fine-tuned head never runs a stale export
        next(first.model_.parameters()).add_(1.0)
    assert onnx_runtime.weights_hash(first.model_) != first.export_.weights_sha256
    int8 = ready(EncoderAdapter(folder, options={"backend": "onnxruntime", "quantize": "int8",
                                                 "cache_dir": str(tmp_path)}), task)
    assert int8.export_.path != first.export_.path and int8.export_.quantization == "int8"


def test_int8_is_close_but_its_own_model(build, tasks, rows, tmp_path):
    """Dynamic int8 changes the scores a little (it is a different model); most labels survive."""
    task = tasks["sst2"]
    eager = ready(EncoderAdapter(build("cls"), options={}), task)
    int8 = ready(EncoderAdapter(build("cls"), options={"backend": "onnxruntime", "quantize": "int8",
                                                       "cache_dir": str(tmp_path)}), task)
    items = eager.encode(task, rows["sst2"])
    got, ref = np.array(int8.logits(task, items)), np.array(eager.logits(task, items))
    assert not np.array_equal(got, ref)
    assert np.abs(got - ref).max() < 0.1
    assert int8.runtime() == ("onnxruntime", "int8") and int8.variant() == "onnxruntime int8"
    assert eager.runtime() == ("torch", None) and eager.variant() == ""


def test_int8_weights_have_a_scale_per_column_and_7_bits(build, tasks, tmp_path):
    """The recipe (onnx_runtime module docs): per-column scales kept MiniLM's accuracy, 7 bits keep
    CPUs without VNNI clear of saturation."""
    import onnx
    from onnx import numpy_helper

    int8 = ready(EncoderAdapter(build("cls"), options={"backend": "onnxruntime", "quantize": "int8",
                                                       "cache_dir": str(tmp_path)}), tasks["sst2"])
    graph = onnx.load(str(int8.export_.path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    products = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(products) >= 6  # query, key, value, output, two feed-forward, per layer
    for node in products:
        w = weights[node.input[1]]
        scale = weights[node.input[1].removesuffix("_quantized") + "_scale"]
        assert w.dtype == np.int8 and np.abs(w.astype(int)).max() <= 64 and scale.shape == (w.shape[1],)


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_fusion_steps_add_their_ops_and_keep_the_answers(build, tasks, rows, tmp_path, arch):
    """make perf times the offline optimiser one step at a time (FUSION_STEPS order): each step puts its
    fused op in the file, every file gets its own cache entry, and the labels stay PyTorch's."""
    import onnx

    task = tasks["sst2"]
    folder = build("cls", dict(enumerate(task.labels)), arch=arch)
    eager = ready(EncoderAdapter(folder, options={}), task)
    onnx_run = ready(EncoderAdapter(folder, options={"backend": "onnxruntime", "cache_dir": str(tmp_path)}), task)
    items = eager.encode(task, rows["sst2"])
    want = predict_in_batches(eager, task, items, 8)
    steps = list(onnx_runtime.FUSION_STEPS)
    paths = {onnx_run.export_.path}
    assert onnx_run.export_.fusions == ()
    for n in range(1, len(steps) + 1):
        onnx_run.session_ = onnx_run._onnx_session(task, fusions=steps[:n][::-1])  # any order: one recipe
        assert onnx_run.export_.fusions == tuple(steps[:n])
        ops = {node.op_type for node in onnx.load(str(onnx_run.export_.path)).graph.node}
        assert {onnx_runtime.FUSION_STEPS[s][1] for s in steps[:n]} <= ops
        assert not {onnx_runtime.FUSION_STEPS[s][1] for s in steps[n:]} & ops
        assert predict_in_batches(onnx_run, task, items, 8) == want
        paths.add(onnx_run.export_.path)
    assert len(paths) == len(steps) + 1
    with pytest.raises(ValueError, match="unknown fusion step.*flash"):
        onnx_run._onnx_session(task, fusions=["attention", "flash"])


def test_each_runtime_is_its_own_result_and_row(tmp_path, capsys):
    """torch, onnxruntime fp32 and int8 results of one model sit side by side: three files, three rows,
    each recording its backend and quantization; the resume key tells them apart."""
    results = tmp_path / "results"
    base = ["run", "--model", "prajjwal1/bert-tiny", "--weights", "random", "--tasks", "sst2", "--data", "sample",
            "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(base) == 0
    assert main(base + ["--backend", "onnxruntime"]) == 0
    assert main(base + ["--backend", "onnxruntime", "--quantize", "int8"]) == 0
    got = {row_mode(r): r for r in iter_results(results)}
    assert set(got) == {"zero-shot", "zero-shot, onnxruntime", "zero-shot, onnxruntime int8"}
    assert {m: (r.efficiency.backend, r.efficiency.quantization) for m, r in got.items()} == \
        {"zero-shot": ("torch", None), "zero-shot, onnxruntime": ("onnxruntime", None),
         "zero-shot, onnxruntime int8": ("onnxruntime", "int8")}
    assert got["zero-shot, onnxruntime"].metrics == got["zero-shot"].metrics
    assert len({r.provenance["settings_key"] for r in got.values()}) == 3
    assert sorted(p.parent.name for p in results.glob("*/sst2.json")) == \
        ["prajjwal1--bert-tiny.onnxruntime-int8.random-weights", "prajjwal1--bert-tiny.onnxruntime.random-weights",
         "prajjwal1--bert-tiny.random-weights"]
    assert main(base + ["--backend", "onnxruntime", "--quantize", "int8"]) == 0  # resumes, does not redo
    assert "0 written, 0 unsupported, 1 already current" in capsys.readouterr().err.strip().splitlines()[-1]
    from benchmark.leaderboard import build_sections

    rows = [row.mode for section in build_sections("glue", list(iter_results(results))) for row in section.rows]
    assert sorted(rows) == sorted(got)


@pytest.mark.parametrize("args,message", [
    (["--quantize", "int8"], "--quantize int8 runs on ONNX Runtime; add --backend onnxruntime"),
    (["--backend", "onnxruntime", "--compile"], "drop --compile"),
    (["--backend", "onnxruntime", "--mode", "frozen"], "--mode frozen pools features on torch"),
])
def test_bad_backend_combinations_are_one_line(tmp_path, capsys, args, message):
    code = main(["run", "--model", "prajjwal1/bert-tiny", "--weights", "random", "--tasks", "sst2", "--data",
                 "sample", "--results-dir", str(tmp_path), "--quiet"] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_onnxruntime_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if it were not installed
    with pytest.raises(UserError, match="pip install onnxruntime onnx"):
        onnx_runtime.require()
    code = main(["run", "--model", "prajjwal1/bert-tiny", "--weights", "random", "--tasks", "sst2", "--data",
                 "sample", "--results-dir", str(tmp_path), "--cache-dir", str(tmp_path / "c"), "--quiet",
                 "--backend", "onnxruntime"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "install it: pip install onnxruntime onnx" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("*/*.json"))  # nothing half-written


def test_every_runtime_reuses_one_trained_model(build, tasks, tmp_path):
    """Fine-tuning is cached by what changes training: ONNX Runtime, int8 and --compile runs of a
    fine-tuned model load the weights the PyTorch run trained, and the key predates these options."""
    from helpers import split_of
    from benchmark import sample

    task = tasks["sst2"]
    train = split_of(task, sample.generate(task, "train", size=40))
    common = {"cache_dir": str(tmp_path), "epochs": 1, "train_batch_size": 8}
    first = EncoderAdapter(build("cls"), mode="finetune", options=common)
    assert not first.fit(task, train).from_cache
    for extra in ({"backend": "onnxruntime"}, {"backend": "onnxruntime", "quantize": "int8"}, {"compile": True}):
        again = EncoderAdapter(build("cls"), mode="finetune", options={**common, **extra})
        assert again.fit(task, train).from_cache, extra
    assert first._training_key_options()["compile"] is False
    assert not {"backend", "quantize"} & set(first._training_key_options())
