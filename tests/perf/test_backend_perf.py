"""`make perf`, backends: one encoder on PyTorch eager, `--compile`, ONNX Runtime fp32 (with and without
the offline transformer optimiser) and ONNX Runtime int8, interleaved round by round in one run, on SST-2
validation. `test_fusion_steps` adds the optimiser's steps one at a time; `test_onnx_profile` says by op type where an
ONNX Runtime pass spends its time.

Every row is the harness's own pass (`predict_split`: tokenise once, length-sorted batches of at most
2,048 padded tokens as `plan_batches` splits them, then batch-size-1 latency over a seeded sample of
LATENCY_SAMPLES sentences); `test_batch_plan` times that pass under each batch plan. Models:
distilbert-base-uncased with random weights (speed only) and the packaged all-MiniLM-L6-v2 fine-tuned on
SST-2 by the harness (the first PERF_TUNE_EXAMPLES train sentences, default 8,000, one epoch, cached under
.cache/benchmark or $BENCH_CACHE; or PERF_MINILM_CHECKPOINT, a folder holding an already fine-tuned copy,
run as it is), whose accuracy is reported per backend. The floor is real tokens x 2 x non-embedding
parameters at the best fp32 matrix rate of the section, sampled just before each row (a second share
pairs each row with its own sample); a sentence's FLOP time is the same for the average sentence.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

pytest.importorskip("onnxruntime")

from benchmark.data import load_split  # noqa: E402
from benchmark.evaluator import RunConfig, predict_split, score  # noqa: E402
from benchmark.flops import FORWARD_FLOPS_PER_PARAM, floor_fraction, matrix_rate, non_embedding_parameters  # noqa: E402
from benchmark.models import onnx_runtime, packaged  # noqa: E402
from benchmark.models.encoder import EncoderAdapter  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

from test_perf import DATA, DEVICE, SUSTAIN_S, _hardware, _section_key, _write_section  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TUNE = int(os.environ.get("PERF_TUNE_EXAMPLES", "8000"))
TUNED = os.environ.get("PERF_MINILM_CHECKPOINT")
LATENCY_SAMPLES = 100
ROUNDS = 3
TASK = discover().tasks["sst2"]
ALL_FUSIONS = tuple(onnx_runtime.FUSION_STEPS)
BACKENDS = {  # row -> adapter options, and how the ONNX session is made: (options, session level, offline steps)
    "PyTorch eager": ({}, None, ()),
    "PyTorch --compile": ({"compile": True}, None, ()),
    "ONNX Runtime fp32, basic graph optimisations": ({"backend": "onnxruntime"}, "basic", ()),
    "ONNX Runtime fp32": ({"backend": "onnxruntime"}, "all", ()),
    "ONNX Runtime fp32 + transformer optimiser": ({"backend": "onnxruntime"}, "all", ALL_FUSIONS),
    "ONNX Runtime int8": ({"backend": "onnxruntime", "quantize": "int8"}, "all", ()),
}
# the offline optimiser one step at a time (FUSION_STEPS order), and everything but the step that cost most
FUSION_ROWS = {"none (the session's own ORT_ENABLE_ALL pass)": ()}
FUSION_ROWS.update({f"+ {step}": ALL_FUSIONS[:n + 1] for n, step in enumerate(ALL_FUSIONS)})
FUSION_ROWS["all but skip_layer_norm"] = tuple(s for s in ALL_FUSIONS if s != "skip_layer_norm")
FUSION_ROUNDS = 3
FUSIONS_MEASURED: dict[str, dict[str, dict]] = {}
PROFILE_ROWS = ("none (the session's own ORT_ENABLE_ALL pass)", "+ embed_layer_norm")  # no offline step; all
PROFILED: dict[str, dict[str, dict]] = {}
PRODUCTS = ("MatMul", "FusedMatMul", "Gemm", "FusedGemm")
MEASURED: dict[str, dict[str, dict]] = {}
PLANS = {"each batch filled in turn": None, "cost 0": 0, "cost 16": 16, "cost 64": 64}  # row -> batch_cost
PLAN_BACKENDS = ("PyTorch eager", "ONNX Runtime fp32")
PLAN_ROUNDS = 3
PLANS_MEASURED: dict[str, dict[str, dict]] = {}
GEMM_SHAPES = {"distilbert-base": (768, 3072), "MiniLM-L6-H384": (384, 1536)}  # hidden, feed-forward width
GEMM_ROWS = 2048  # the harness's batches hold 2,048 padded tokens
# ONNX Runtime's pool threads spin for a while after a run: a torch product started at once shares the
# cores with them (it measured 175 GFLOP/s on 2048x384x384 right after ONNX Runtime, 317 after a pause)
SPIN_PAUSE_S = 0.1
GEMMS: dict[tuple[str, str], dict[str, float]] = {}


def _source() -> str:
    return str(DATA) if (DATA / "sst2").is_dir() else "sample"


def _models() -> dict[str, dict]:
    minilm = {"model": TUNED, "mode": "zero-shot", "options": {}} if TUNED else \
        {"model": MINILM, "mode": "finetune", "options": {"max_train_examples": TUNE, "epochs": 1.0}}
    return {"distilbert-base-uncased (random weights)": {"model": "distilbert-base-uncased", "mode": "auto",
                                                         "options": {"weights": "random"}, "accuracy": False},
            f"{MINILM} (fine-tuned)": {**minilm, "accuracy": True}}


@pytest.mark.parametrize("label", list(_models()))
def test_backend(benchmark, label):
    """Every backend's pass, interleaved: each round runs every row once, in an order rotated each round so
    that no row always runs first, so the x PyTorch eager column compares rows timed under the same
    conditions of this shared machine rather than minutes apart."""
    spec = _models()[label]
    source = _source()
    adapters = {backend: _adapter(spec, backend, source) for backend in BACKENDS}
    split = load_split(TASK, "validation", source)
    cfg = RunConfig(model=spec["model"], quiet=True, log=lambda m: None, latency_samples=LATENCY_SAMPLES)
    rounds: dict[str, list[dict]] = {backend: [] for backend in adapters}

    def interleaved():
        rows = list(adapters)
        for r in range(ROUNDS):
            for backend in rows[r % len(rows):] + rows[:r % len(rows)]:
                rate = matrix_rate(DEVICE, seconds=SUSTAIN_S).sustained_tflops
                predictions, eff = predict_split(adapters[backend], TASK, split, cfg)
                rounds[backend].append({"rate": rate, "seconds": eff.eval_seconds, "latency": eff.latency_ms,
                                        "predictions": predictions})

    for adapter in adapters.values():  # warm-up pass (torch.compile compiles here), untimed
        predict_split(adapter, TASK, split, cfg)
    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    for backend, adapter in adapters.items():
        items = adapter.encode(TASK, split.rows)
        tokens = sum(adapter.length(it) for it in items)
        params = non_embedding_parameters(adapter.model_)
        best = min(rounds[backend], key=lambda r: r["seconds"])
        metrics, _ = score(TASK, best["predictions"], split.rows)
        MEASURED.setdefault(label, {})[backend] = {
            "examples": len(items), "tokens": tokens, "params": params,
            "flops": FORWARD_FLOPS_PER_PARAM * params * tokens, "rounds": rounds[backend], "best": best,
            "accuracy": metrics["accuracy"] if spec["accuracy"] else None,
            "export_seconds": adapter.export_.seconds if adapter.export_ is not None else None, "source": source,
            "training": adapter.fitted_.training}


def _adapter(spec: dict, backend: str, source: str) -> EncoderAdapter:
    if spec["model"] == MINILM and packaged.find(MINILM) is None and not TUNED:
        pytest.skip(f"the {MINILM} package is not installed (make venv installs it)")
    options, level, fusions = BACKENDS[backend]
    adapter = EncoderAdapter(spec["model"], mode=spec["mode"], device=DEVICE, quiet=True,
                             options={**spec["options"], **options})
    adapter.fit(TASK, load_split(TASK, "train", source))
    if fusions or level == "basic":
        adapter.session_ = adapter._onnx_session(TASK, fusions=fusions, level=level)
    return adapter


def _fused_adapters(spec: dict, source: str, rows=tuple(FUSION_ROWS)) -> dict[str, EncoderAdapter]:
    """One fitted ONNX Runtime fp32 adapter per FUSION_ROWS row (the weights load once per row: cheap)."""
    adapters = {}
    for row in rows:
        adapter = _adapter(spec, "ONNX Runtime fp32", source)
        if FUSION_ROWS[row]:
            adapter.session_ = adapter._onnx_session(TASK, fusions=FUSION_ROWS[row])
        adapters[row] = adapter
    return adapters


@pytest.mark.parametrize("label", list(_models()))
def test_fusion_steps(benchmark, label):
    """What each step of ONNX Runtime's offline transformer optimiser gives, added one at a time, on the
    harness's pass: interleaved rounds, each round in a rotated order so no row always runs first."""
    import onnx

    if DEVICE != "cpu":
        pytest.skip("the CPU provider only")
    spec, source = _models()[label], _source()
    adapters = _fused_adapters(spec, source)
    split = load_split(TASK, "validation", source)
    cfg = RunConfig(model=spec["model"], quiet=True, log=lambda m: None, latency_samples=0)
    seconds: dict[str, list[float]] = {row: [] for row in adapters}
    answers: dict[str, list] = {}

    def interleaved():
        rows = list(adapters)
        for r in range(FUSION_ROUNDS):
            for row in rows[r % len(rows):] + rows[:r % len(rows)]:
                predictions, eff = predict_split(adapters[row], TASK, split, cfg)
                seconds[row].append(eff.eval_seconds)
                answers[row] = predictions

    for adapter in adapters.values():  # warm-up, untimed
        predict_split(adapter, TASK, split, cfg)
    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    unfused = answers[next(iter(FUSION_ROWS))]
    for row, adapter in adapters.items():
        ops = [node.op_type for node in onnx.load(str(adapter.export_.path), load_external_data=False).graph.node]
        fused = {op: ops.count(op) for _, op in onnx_runtime.FUSION_STEPS.values() if op in ops}
        FUSIONS_MEASURED.setdefault(label, {})[row] = {
            "examples": len(split.rows), "seconds": min(seconds[row]), "fused": fused,
            "same": sum(a == b for a, b in zip(answers[row], unfused)),
            "export_seconds": adapter.export_.seconds}


@pytest.mark.parametrize("label", list(_models()))
def test_onnx_profile(benchmark, label, tmp_path):
    """Where an ONNX Runtime fp32 pass spends its kernel time, by op type (ONNX Runtime's own profiler),
    unfused and with every offline step: how much of the pass the products take bounds its floor share."""
    import json

    import onnxruntime as ort

    if DEVICE != "cpu":
        pytest.skip("the CPU provider only")
    spec, source = _models()[label], _source()
    adapters = _fused_adapters(spec, source, PROFILE_ROWS)
    split = load_split(TASK, "validation", source)
    cfg = RunConfig(model=spec["model"], quiet=True, log=lambda m: None, latency_samples=0)
    items = adapters[PROFILE_ROWS[0]].encode(TASK, split.rows)
    flops = FORWARD_FLOPS_PER_PARAM * non_embedding_parameters(adapters[PROFILE_ROWS[0]].model_) * \
        sum(adapters[PROFILE_ROWS[0]].length(it) for it in items)
    for row in PROFILE_ROWS:
        adapter = adapters[row]
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = _threads(), 1
        options.enable_profiling, options.profile_file_prefix = True, str(tmp_path / "ort")
        adapter.session_.session = ort.InferenceSession(str(adapter.export_.path), options,
                                                        providers=["CPUExecutionProvider"])
        predict_split(adapter, TASK, split, cfg)  # warm-up: its events are dropped below
        rate = matrix_rate(DEVICE, seconds=SUSTAIN_S).sustained_tflops
        eff = predict_split(adapter, TASK, split, cfg)[1]
        events = json.loads(Path(adapter.session_.session.end_profiling()).read_text())
        runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
        timed_from = runs[len(runs) // 2]  # the two passes made the same number of calls
        by_op: dict[str, float] = {}
        for event in events:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= timed_from:
                op = event["args"]["op_name"]
                by_op[op] = by_op.get(op, 0.0) + event["dur"] / 1e6
        PROFILED.setdefault(label, {})[row] = {"ops": by_op, "seconds": eff.eval_seconds,
                                               "flops": flops, "rate": rate}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)


@pytest.mark.parametrize("label", list(_models()))
def test_batch_plan(benchmark, label):
    """Why AUTO_BATCH_COST["cpu"] is what it is: each plan of the same pass, interleaved, per backend."""
    if DEVICE != "cpu":
        pytest.skip("AUTO_BATCH_COST is measured here for the CPU only")
    from benchmark.evaluator import AUTO_BATCH_TOKENS, plan_batches

    spec, source = _models()[label], _source()
    adapters = {backend: _adapter(spec, backend, source) for backend in PLAN_BACKENDS}
    split = load_split(TASK, "validation", source)
    configs = {plan: RunConfig(model=spec["model"], quiet=True, log=lambda m: None, latency_samples=0,
                               batch_cost=cost) for plan, cost in PLANS.items()}
    seconds: dict[tuple[str, str], list[float]] = {(b, p): [] for b in adapters for p in PLANS}

    def interleaved():
        for _ in range(PLAN_ROUNDS):
            for backend, adapter in adapters.items():
                for plan, cfg in configs.items():
                    seconds[(backend, plan)].append(predict_split(adapter, TASK, split, cfg)[1].eval_seconds)

    for adapter in adapters.values():  # warm-up, untimed
        predict_split(adapter, TASK, split, configs[next(iter(PLANS))])
    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    any_adapter = next(iter(adapters.values()))
    lengths = sorted(any_adapter.length(it) for it in any_adapter.encode(TASK, split.rows))
    for plan, cost in PLANS.items():
        cuts = [0] + plan_batches(lengths, tokens=AUTO_BATCH_TOKENS["cpu"], cost=cost)
        padded = sum((hi - lo) * lengths[hi - 1] for lo, hi in zip(cuts, cuts[1:]))
        PLANS_MEASURED.setdefault(label, {})[plan] = {
            "batches": len(cuts) - 1, "padding": padded / sum(lengths), "examples": len(lengths),
            "seconds": {backend: min(seconds[(backend, plan)]) for backend in adapters}}


def _table(intro: str, columns: list[str], rows: list[list[str]], text_columns: int = 2) -> list[str]:
    """A blank line, the intro, and a Markdown table (text columns first, numbers right-aligned); nothing
    when no row was measured."""
    if not rows:
        return []
    return ["", intro, "", "| " + " | ".join(columns) + " |",
            "|" + "---|" * text_columns + "---:|" * (len(columns) - text_columns)] + \
        ["| " + " | ".join(cells) + " |" for cells in rows]


def _fusion_lines() -> list[str]:
    rows = []
    for label, measured in FUSIONS_MEASURED.items():
        none = measured[next(iter(FUSION_ROWS))]["seconds"]
        for row, v in measured.items():
            fused = ", ".join(f"{n} {op}" for op, n in v["fused"].items()) or "—"
            rows.append([label, row, fused, f"{v['examples'] / v['seconds']:,.1f}", f"{none / v['seconds']:.2f}",
                         f"{v['same']}/{v['examples']}"])
    return _table(f"ONNX Runtime's offline transformer optimiser step by step (`test_fusion_steps`, "
                  f"`onnx_runtime.FUSION_STEPS`): fp32, every row with the session's own ORT_ENABLE_ALL pass, "
                  f"the offline steps added one at a time; best of {FUSION_ROUNDS} interleaved rounds, the order "
                  f"rotated each round. Labels: how many equal the unfused file's.",
                  ["model", "offline steps", "fused ops in the file", "ex/s", "× none", "labels equal"], rows, 3)


def _profile_lines(best_rate: float) -> list[str]:
    rows = []
    for label, measured in PROFILED.items():
        for row, v in measured.items():
            total = sum(v["ops"].values())
            ranked = sorted(v["ops"].items(), key=lambda kv: -kv[1])
            top = [f"{op} {100 * t / total:.1f}%" for op, t in ranked[:6]]
            rest = sum(t for _, t in ranked[6:])
            products = sum(t for op, t in v["ops"].items() if op in PRODUCTS)
            bound = "—"  # a fused Attention op holds products of its own: the split means nothing there
            if "Attention" not in v["ops"]:
                bound = f"{100 * floor_fraction(v['flops'], v['seconds'] - (total - products), best_rate):.0f}%"
            rows.append([label, row, f"{', '.join(top)}, other {100 * rest / total:.1f}%",
                         f"{100 * products / total:.1f}%",
                         f"{100 * floor_fraction(v['flops'], v['seconds'], best_rate):.0f}%", bound])
    return _table("Where an ONNX Runtime fp32 pass spends its kernel time (`test_onnx_profile`): ONNX Runtime's "
                  "own profiler over the second of two passes, by op type. Products are MatMul, FusedMatMul and "
                  "(Fused)Gemm; the fused Attention op holds the attention block's own products. Floor shares use the "
                  "section's best matrix rate; the last column is the share the pass would reach if every kernel "
                  "but the products took no time.",
                  ["model", "offline steps", "kernel time by op", "products", "share of the FLOP floor",
                   "with the products alone"], rows, 3)


def _plan_lines() -> list[str]:
    from benchmark.evaluator import AUTO_BATCH_COST, AUTO_BATCH_TOKENS

    rows = []
    for label, plans in PLANS_MEASURED.items():
        fill = plans[next(iter(PLANS))]["seconds"]
        for plan, v in plans.items():
            rows.append([label, plan, str(v["batches"]), f"{v['padding']:.3f}"] +
                        [f"{v['examples'] / t:,.1f} ({fill[b] / t:.2f}×)" for b, t in v["seconds"].items()])
    return _table(f"The batch plan (`test_batch_plan`, `AUTO_BATCH_COST`): the same pass split into batches of at "
                  f"most {AUTO_BATCH_TOKENS['cpu']:,} padded tokens by each plan, every plan and backend in turn, "
                  f"best of {PLAN_ROUNDS} interleaved rounds; ex/s and, in brackets, × the batches filled in turn. "
                  f"The CPU default charges {AUTO_BATCH_COST['cpu']} padded tokens per batch.",
                  ["model", "plan", "batches", "padded ÷ real tokens"] + [f"{b} ex/s" for b in PLAN_BACKENDS], rows)


def _onnx_matmul(weight):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k, n = weight.shape
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = _threads(), 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _threads() -> int:
    import torch

    return torch.get_num_threads()


@pytest.mark.parametrize("model", list(GEMM_SHAPES))
def test_gemm_libraries(benchmark, model):
    """The products that dominate both runtimes, alone: ONNX Runtime's MLAS against torch's BLAS on the
    model's own shapes, interleaved (a pause after each library's turn), best of 5, so a backend gap can
    be told from a GEMM gap."""
    import numpy as np
    import torch

    if DEVICE != "cpu":
        pytest.skip("the CPU providers only")
    hidden, ffn = GEMM_SHAPES[model]
    rng = np.random.default_rng(0)
    for k, n in ((hidden, hidden), (hidden, ffn), (ffn, hidden)):
        x = rng.standard_normal((GEMM_ROWS, k), dtype=np.float32)
        w = rng.standard_normal((k, n), dtype=np.float32)
        session, xt, wt = _onnx_matmul(w), torch.from_numpy(x), torch.from_numpy(w)
        best = {"ONNX Runtime (MLAS)": float("inf"), "PyTorch": float("inf")}
        with torch.inference_mode():
            for _ in range(5):
                for name, call in (("ONNX Runtime (MLAS)", lambda: session.run(None, {"x": x})),
                                   ("PyTorch", lambda: xt @ wt)):
                    call()
                    start = time.perf_counter()
                    for _ in range(10):
                        call()
                    best[name] = min(best[name], (time.perf_counter() - start) / 10)
                    time.sleep(SPIN_PAUSE_S)
        GEMMS[(model, f"{GEMM_ROWS}×{k} · {k}×{n}")] = {name: 2 * GEMM_ROWS * k * n / t / 1e9 for name, t in best.items()}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)


def _gemm_lines() -> list[str]:
    import torch

    rows = [[model, shape, f"{v['ONNX Runtime (MLAS)']:.0f}", f"{v['PyTorch']:.0f}",
             f"{v['ONNX Runtime (MLAS)'] / v['PyTorch']:.2f}"] for (model, shape), v in GEMMS.items()]
    return _table(f"The products alone (`test_gemm_libraries`): GFLOP/s, best of 5 interleaved rounds of 10, "
                  f"{SPIN_PAUSE_S:g} s apart so that ONNX Runtime's spinning pool threads do not slow the "
                  f"product after them, {_threads()} threads; ONNX Runtime's CPU provider multiplies with its "
                  f"own MLAS kernels, PyTorch with {'MKL' if torch.backends.mkl.is_available() else 'its BLAS'}.",
                  ["model", "product", "ONNX Runtime (MLAS)", "PyTorch", "ONNX Runtime ÷ PyTorch"], rows)


def write_backend_table() -> None:
    """Called once at the end of the session (conftest)."""
    if not MEASURED:
        return
    rates = [r["rate"] for rows in MEASURED.values() for v in rows.values() for r in v["rounds"]] + \
        [v["rate"] for rows in PROFILED.values() for v in rows.values()]
    best_rate = max(rates)
    key = f"Backends, {_section_key()}"
    lines = [f"## {key}: {_hardware()}", "",
             f"SST-2 validation through the harness's own pass, every backend in one run: {ROUNDS} rounds, each "
             f"running every row once in an order rotated round by round; a row's best round, whose pass ends with "
             f"batch-size-1 latency over {LATENCY_SAMPLES} seeded sentences. Measured by `make perf` "
             f"on {time.strftime('%Y-%m-%d')}.", "",
             "| model | backend | ex/s | share of the FLOP floor | paired with the rate before it | p50 bs 1 (ms) | "
             "p95 bs 1 (ms) | p50 ÷ one sentence's FLOP time | accuracy | × PyTorch eager |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for label, rows in MEASURED.items():
        eager = rows.get("PyTorch eager")
        for backend, v in rows.items():
            best = v["best"]
            sentence_ms = 1000 * v["flops"] / (best_rate * 1e12) / v["examples"]
            speed = v["examples"] / best["seconds"]
            ratio = f"{eager['best']['seconds'] / best['seconds']:.2f}" if eager else "—"
            acc = f"{v['accuracy']:.1f}" if v["accuracy"] is not None else "—"
            share, paired = (100 * floor_fraction(v["flops"], best["seconds"], rate)
                             for rate in (best_rate, best["rate"]))
            lines.append(f"| {label} | {backend} | {speed:,.1f} | {share:.0f}% | {paired:.0f}% | "
                         f"{best['latency']['p50']:.2f} | {best['latency']['p95']:.2f} | "
                         f"{best['latency']['p50'] / sentence_ms:.2f} | {acc} | {ratio} |")
        any_v = next(iter(rows.values()))
        notes.append(f"- {label}: {any_v['examples']} sentences, {any_v['tokens']:,} real tokens, "
                     f"{any_v['params'] / 1e6:.1f}M non-embedding parameters: {any_v['flops'] / 1e12:.2f} TFLOP "
                     f"at the floor ({any_v['source']} data).")
        exports = [f"{b} {v['export_seconds']:.1f} s" for b, v in rows.items() if v["export_seconds"]]
        if exports:
            notes.append(f"- {label}, one-off export (cached afterwards by weights hash): " + ", ".join(exports) + ".")
        tuned = any_v.get("training")
        if spec_note := (f"- {label}: the already fine-tuned copy in {TUNED} (PERF_MINILM_CHECKPOINT), run as it is."
                         if TUNED and label.startswith(MINILM) else ""):
            notes.append(spec_note)
        elif tuned:
            notes.append(f"- {label}: fine-tuned by the harness, {tuned['examples']:,} SST-2 train examples seen "
                         f"({tuned['epochs']:g} epoch(s), learning rate {tuned['learning_rate']:g}, PERF_TUNE_EXAMPLES="
                         f"{TUNE}).")
    lines += ["", f"- The fp32 matrix rate is sampled ({SUSTAIN_S:.0f} s of 2048² products) just before every row's "
                  f"round: best of the section {best_rate * 1000:.1f} GFLOP/s, lowest {min(rates) * 1000:.1f}. The floor "
                  f"and a sentence's FLOP time use the best, as the other sections do; the paired share uses the "
                  f"sample taken just before the row's best round, which forgives a row timed while this shared "
                  f"machine ran slow but inflates one timed after a low sample."] + notes + _gemm_lines() + \
        _fusion_lines() + _profile_lines(best_rate) + _plan_lines() + [""]
    _write_section("\n".join(lines), key=key)
