"""`make perf`: the harness's evaluation path against the loops a user would write, side by side in
one run, on SST-2 validation (../shared/data when present, else the sample suite).

Every method uses the same model object and tokenizer (real architectures, random weights: the
speed is real, the accuracy is not). Compared: the harness (tokenise once, length-sorted dynamic
batches, inference mode), (a) a naive loop (pad to 128, batch 32), (b) the text-classification
pipeline at batch 1 and 32, (c) `evaluate.evaluator`, and (d) the FLOP floor: real tokens x 2 x
non-embedding parameters / the matrix-multiply rate measured here, now. Results go to
leaderboards/perf.md, one section per device kind and machine (perf_sections).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from benchmark.data import load_split  # noqa: E402
from benchmark.evaluator import RunConfig, predict_split  # noqa: E402
from benchmark.flops import matrix_rate, non_embedding_parameters  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

import perf_sections  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
DEVICE = os.environ.get("PERF_DEVICE") or ("cuda" if __import__("torch").cuda.is_available() else "cpu")
LIMIT = int(os.environ["PERF_LIMIT"]) if os.environ.get("PERF_LIMIT") else None
PIPELINE_BS1_EXAMPLES = 128  # batch-size-1 pipeline is timed on a fixed prefix, reported per example
WARMUP_EXAMPLES = 64  # the slow baselines warm up on a prefix: a whole warm-up pass would double their cost
MEASURED: dict[tuple[str, str], dict] = {}
RATES: list[float] = []  # every sustained matrix-rate sample of the run, in TFLOP/s; the floor uses the best
BURSTS: list[float] = []  # the fastest single chunk of each sample: what a sub-second probe would have reported
SUSTAIN_S = 5.0  # seconds of back-to-back products per sample
TASK = discover().tasks["sst2"]
# PERF_SPLIT=train (67,349 sentences, with PERF_LIMIT) for a fast device, where 872 sentences last ~0.1 s
# and a ratio would measure fixed costs more than throughput.
SPLIT = os.environ.get("PERF_SPLIT", "validation")


def _split():
    source = str(DATA) if (DATA / "sst2").is_dir() else "sample"
    return load_split(TASK, SPLIT, source, limit=LIMIT)


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _time(fn, rounds: int = 1) -> float:
    """Best of `rounds` after one warm-up call (the same policy for every method)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - start)
    return best


def _bench(benchmark, fn, rounds: int = 1, warm=None) -> float:
    """pytest-benchmark times it after a warm-up (`warm`, or one round of `fn`); the best round counts."""
    return _bench_paired(benchmark, fn, rounds, warm)[0]


def _bench_paired(benchmark, fn, rounds: int = 1, warm=None) -> tuple[float, list[tuple[float, float]]]:
    """The best round, and every round as (seconds, matrix rate sampled untimed just before it).

    The pairs make a floor percentage per round against the machine as it was at that moment: on a
    shared machine whose speed drifts over minutes, a paired ratio is steadier than two bests taken
    at different times."""
    before: list[float] = []
    if warm is not None:
        warm()
        _sync()

    def synced():
        fn()
        _sync()

    benchmark.pedantic(synced, setup=lambda: before.append(matmul_tflops()), rounds=rounds, iterations=1,
                       warmup_rounds=0 if warm is not None else 1)
    times = list(benchmark.stats.stats.data)
    return min(times), list(zip(times, before[-len(times):]))


def _record(model: str, method: str, examples: int, seconds: float, **extra) -> None:
    MEASURED[(model, method)] = {"examples": examples, "seconds": seconds, "ex_per_s": examples / seconds, **extra}


@pytest.fixture(scope="module")
def split():
    return _split()


@pytest.fixture(scope="module")
def warm_split():
    source = str(DATA) if (DATA / "sst2").is_dir() else "sample"
    return load_split(TASK, "validation", source, limit=WARMUP_EXAMPLES)


def _encoder(name: str, **options):
    from benchmark.models.encoder import EncoderAdapter

    adapter = EncoderAdapter(name, device=DEVICE, options={"weights": "random", **options})
    adapter.fit(TASK, load_split(TASK, "train", str(DATA) if (DATA / "sst2").is_dir() else "sample"))
    return name, adapter


@pytest.fixture(scope="module", params=["bert-base-uncased", "distilbert-base-uncased"])
def encoder(request, split):
    return _encoder(request.param)


def matmul_tflops() -> float:
    """The device's sustained dense matrix rate, measured now (`benchmark.flops.matrix_rate`), sampled
    before every timed round; the floor takes the best sample of the run."""
    rate = matrix_rate(DEVICE, SUSTAIN_S, _sync)
    RATES.append(rate.sustained_tflops)
    BURSTS.append(rate.burst_tflops)
    return RATES[-1]


def _harness_config(**kw) -> RunConfig:
    """What `bench run` does by default: automatic token-budget batches; bs=1 latency is timed elsewhere."""
    return RunConfig(model="perf", data="x", quiet=True, log=lambda m: None, latency_samples=0, **kw)


def test_harness(benchmark, encoder, split, warm_split):
    name, adapter = encoder
    cfg = _harness_config()
    effs = []  # each timed round's Efficiency: no extra pass just to read the batching it chose
    seconds, pairs = _bench_paired(benchmark, lambda: effs.append(predict_split(adapter, TASK, split, cfg)[1]),
                                   rounds=3, warm=lambda: predict_split(adapter, TASK, warm_split, cfg))
    eff = effs[-1]
    batches = _batches(adapter, split, eff.batch_tokens)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    model_only = _model_only_seconds(adapter, batches)
    _record(name, "harness", len(split.rows), seconds, tokens=tokens, encode_s=eff.encode_seconds,
            model_s=model_only, batch_tokens=eff.batch_tokens, pairs=pairs,
            padded=sum(int(b["input_ids"].numel()) for b in batches), **_profile(adapter, batches))


@pytest.mark.parametrize("batch_tokens", [512, 1024, 4096])
def test_harness_other_token_budgets(benchmark, encoder, split, warm_split, batch_tokens):
    """Why the CPU default is what it is: bert-base at other padded-token budgets, same run."""
    name, adapter = encoder
    if DEVICE != "cpu" or name != "bert-base-uncased":
        pytest.skip("the budget sweep is for the CPU default, on bert-base")
    cfg = _harness_config(batch_tokens=batch_tokens)
    seconds, pairs = _bench_paired(benchmark, lambda: predict_split(adapter, TASK, split, cfg), rounds=2,
                                   warm=lambda: predict_split(adapter, TASK, warm_split, cfg))
    _record(name, f"harness, {batch_tokens} tokens per batch", len(split.rows), seconds, pairs=pairs)


def test_harness_compiled(benchmark, split):
    """--compile, measured against eager in the same run (compilation itself is not timed)."""
    name, adapter = _encoder("bert-base-uncased", compile=True)
    cfg = _harness_config()
    seconds, pairs = _bench_paired(benchmark, lambda: predict_split(adapter, TASK, split, cfg), rounds=2)
    _record(name, "harness --compile", len(split.rows), seconds, pairs=pairs)


def _batches(adapter, split, batch_tokens) -> list[dict]:
    """The harness's own batches, collated up front."""
    from benchmark.evaluator import auto_batch_cost, plan_batches

    items = adapter.encode(TASK, split.rows)
    order = sorted(range(len(items)), key=lambda i: adapter.length(items[i]))
    lengths = [adapter.length(items[i]) for i in order]
    cuts = [0] + plan_batches(lengths, tokens=batch_tokens, cost=auto_batch_cost(DEVICE))
    return [adapter._tensors([items[i] for i in order[lo:hi]]) for lo, hi in zip(cuts, cuts[1:])]


def _model_only_seconds(adapter, batches) -> float:
    """The same forward passes on pre-collated tensors: the harness's floor for its own overhead."""
    import torch

    def run():  # the adapter's own forward: inference mode and, on CUDA, its bf16 autocast
        with torch.inference_mode():
            for batch in batches:
                adapter._outputs(batch).logits.argmax(-1)

    return _time(run, rounds=2)


GEMM_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::matmul")


def _profile(adapter, batches) -> dict:
    """Where the model's time goes, from torch.profiler over every other batch: the share of time in
    matrix products and the rate they ran at (their FLOPs / their own time). With the padding, that
    accounts for the distance to the FLOP floor."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if DEVICE != "cpu":
        return {}
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for batch in batches[::2]:
            adapter.model_(**batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    gemm = [e for e in events if e.key in GEMM_OPS]
    gemm_us = sum(e.self_cpu_time_total for e in gemm)
    top = sorted((e for e in events if e.key not in GEMM_OPS), key=lambda e: -e.self_cpu_time_total)[:4]
    return {"gemm_share": gemm_us / total, "gemm_tflops": sum(e.flops for e in gemm) / (gemm_us * 1e-6) / 1e12,
            "other_ops": [(e.key.removeprefix("aten::"), e.self_cpu_time_total / total) for e in top]}


def test_naive_loop(benchmark, encoder, split):
    import torch

    name, adapter = encoder
    tokenizer, model = adapter.tokenizer_, adapter.model_
    texts = [row["sentence"] for row in split.rows]

    def run(texts=texts):
        out = []
        with torch.no_grad():
            for s in range(0, len(texts), 32):
                enc = tokenizer(texts[s:s + 32], padding="max_length", truncation=True, max_length=128,
                                return_tensors="pt").to(DEVICE)
                out += model(**enc).logits.argmax(-1).tolist()
        return out

    _record(name, "naive loop (pad 128, bs 32)", len(texts),
            _bench(benchmark, run, warm=lambda: run(texts[:WARMUP_EXAMPLES])))


@pytest.mark.parametrize("batch_size", [1, 32])
def test_pipeline(benchmark, encoder, split, batch_size):
    from transformers import pipeline

    name, adapter = encoder
    pipe = pipeline("text-classification", model=adapter.model_, tokenizer=adapter.tokenizer_,
                    device=0 if DEVICE.startswith("cuda") else -1)
    texts = [row["sentence"] for row in split.rows]
    if batch_size == 1:
        texts = texts[:PIPELINE_BS1_EXAMPLES]
    seconds = _bench(benchmark, lambda: pipe(texts, batch_size=batch_size, truncation=True),
                     warm=lambda: pipe(texts[:WARMUP_EXAMPLES], batch_size=batch_size, truncation=True))
    _record(name, f"pipeline bs {batch_size}", len(texts), seconds)


def test_evaluate_evaluator(benchmark, encoder, split, tmp_path):
    import datasets
    import evaluate

    name, adapter = encoder
    adapter.model_.save_pretrained(tmp_path)
    adapter.tokenizer_.save_pretrained(tmp_path)

    class Accuracy(evaluate.Metric):
        """Defined in code: `evaluate.load` would need the hub."""

        def _info(self):
            return evaluate.MetricInfo(description="accuracy", citation="", inputs_description="",
                                       features=datasets.Features({"predictions": datasets.Value("int64"),
                                                                   "references": datasets.Value("int64")}))

        def _compute(self, predictions, references):
            return {"accuracy": sum(p == r for p, r in zip(predictions, references)) / len(references)}

    data = datasets.Dataset.from_dict({"text": [r["sentence"] for r in split.rows],
                                       "label": [r["label"] for r in split.rows]})
    mapping = {label: i for i, label in enumerate(TASK.labels)}
    evaluator = evaluate.evaluator("text-classification")

    def run(data=data):
        return evaluator.compute(model_or_pipeline=str(tmp_path), data=data, metric=Accuracy(), input_column="text",
                                 label_column="label", label_mapping=mapping,
                                 device=0 if DEVICE.startswith("cuda") else -1)

    _record(name, "evaluate.evaluator", len(data),
            _bench(benchmark, run, warm=lambda: run(data.select(range(min(WARMUP_EXAMPLES, len(data)))))))


def _record_floor(benchmark, name: str, adapter, split) -> None:
    """The floor's work now; its seconds at the end, from the best matrix rate of the whole run."""
    benchmark.pedantic(matmul_tflops, rounds=1, iterations=1)
    tokens = sum(adapter.length(i) for i in adapter.encode(TASK, split.rows))
    _record(name, "FLOP floor", len(split.rows), float("nan"), tokens=tokens,
            flops=2 * non_embedding_parameters(adapter.model_) * tokens)


def test_flop_floor(benchmark, encoder, split):
    name, adapter = encoder
    _record_floor(benchmark, name, adapter, split)


@pytest.fixture(scope="module")
def t5(split):
    from benchmark.models.text2text import Text2TextAdapter

    adapter = Text2TextAdapter("t5-small", device=DEVICE, options={"weights": "random", "scoring": "rank"})
    adapter.fit(TASK, load_split(TASK, "train", str(DATA) if (DATA / "sst2").is_dir() else "sample"))
    return adapter


def test_t5_harness_rank(benchmark, t5, split, warm_split):
    """t5-small classification by ranking the label strings: one decoder pass, no generate loop."""
    cfg = _harness_config()
    seconds, pairs = _bench_paired(benchmark, lambda: predict_split(t5, TASK, split, cfg), rounds=2,
                                   warm=lambda: predict_split(t5, TASK, warm_split, cfg))
    _record("t5-small", "harness (rank)", len(split.rows), seconds, pairs=pairs)


def test_t5_naive_generate(benchmark, t5, split):
    import torch

    texts = [TASK.render(row) for row in split.rows]

    def naive(texts=texts):
        with torch.no_grad():
            for s in range(0, len(texts), 32):
                enc = t5.tokenizer_(texts[s:s + 32], padding="max_length", truncation=True, max_length=128,
                                    return_tensors="pt").to(DEVICE)
                t5.model_.generate(**enc, max_new_tokens=3, do_sample=False, num_beams=1)

    _record("t5-small", "naive generate (pad 128, bs 32, 3 tokens)", len(texts),
            _bench(benchmark, naive, warm=lambda: naive(texts[:WARMUP_EXAMPLES])))


def test_t5_flop_floor(benchmark, t5, split):
    _record_floor(benchmark, "t5-small", t5, split)


def write_table() -> None:
    """Called once at the end of the session (conftest): the table with ratios, for this device kind."""
    if not MEASURED:
        return
    best = max(RATES)
    for v in MEASURED.values():
        if "flops" in v:
            v["seconds"] = v["flops"] / (best * 1e12)
            v["ex_per_s"] = v["examples"] / v["seconds"]
    split = _split()
    lines = [f"## {_section_key()}: {_hardware()}", "",
             f"SST-2 {SPLIT}, {len(split.rows)} sentences ({split.info.source} data, fingerprint "
             f"{split.info.fingerprint[:12]}), real architectures with random weights. Examples per second; "
             "ratio = harness / method. Measured by `make perf` on {date}.".format(date=time.strftime("%Y-%m-%d")),
             "", "| model | method | ex/s | harness ÷ method | seconds |", "|---|---|---|---|---|"]
    for model in dict.fromkeys(m for m, _ in MEASURED):
        harness = MEASURED.get((model, "harness")) or MEASURED.get((model, "harness (rank)"))
        for (m, method), v in MEASURED.items():
            if m != model:
                continue
            ratio = f"{harness['ex_per_s'] / v['ex_per_s']:.2f}" if harness else "—"
            lines.append(f"| {model} | {method} | {v['ex_per_s']:,.1f} | {ratio} | {v['seconds']:.2f} |")
    lines += ["", _notes(), ""]
    _write_section("\n".join(lines))


def _notes() -> str:
    unit = "GFLOP/s" if DEVICE == "cpu" else "TFLOP/s"
    scale = 1000 if DEVICE == "cpu" else 1
    kind, size, chunk = ("fp32", 2048, 3) if DEVICE == "cpu" else ("bf16", 8192, 50)
    out = [f"- Matrix rate ({kind} {size}² products back to back for {SUSTAIN_S:.0f} s, sampled untimed before "
           f"every timed round): best {max(RATES) * scale:.1f} {unit} of {len(RATES)} samples (lowest "
           f"{min(RATES) * scale:.1f}); every FLOP floor uses the best. The fastest single chunk of {chunk} products "
           f"ran at {max(BURSTS) * scale:.1f} {unit}, a burst rate no pass of several seconds holds here; against it "
           f"every floor percentage below would be {100 * max(RATES) / max(BURSTS):.0f}% of what it is."]
    for (model, method), v in MEASURED.items():
        if method == "FLOP floor":
            out.append(f"- {model}: {v['tokens']:,} real tokens, {v['flops'] / 1e12:.2f} TFLOP at the floor.")
        if method == "harness" and v.get("model_s"):
            overhead = (v["seconds"] - v["encode_s"]) / v["model_s"] - 1
            out.append(f"- {model}: tokenisation {v['encode_s']:.3f} s of the pass; harness overhead over its own "
                       f"model time {100 * overhead:.1f}% (model-only {v['model_s']:.2f} s, same batches, "
                       f"{v['batch_tokens']} padded tokens per batch).")
        if method == "harness" and v.get("gemm_share"):
            others = ", ".join(f"{op} {100 * share:.1f}%" for op, share in v["other_ops"])
            out.append(f"- {model}, where the model time goes (torch.profiler, every other batch): matrix products "
                       f"{100 * v['gemm_share']:.1f}% of it, at {v['gemm_tflops'] * scale:.1f} {unit} "
                       f"({100 * v['gemm_tflops'] / max(RATES):.0f}% of the best matrix rate); then {others}; "
                       f"padding adds {100 * (v['padded'] / v['tokens'] - 1):.1f}% to the real tokens.")
    for (model, method), v in MEASURED.items():
        floor = MEASURED.get((model, "FLOP floor"))
        if floor and method.startswith("harness"):
            paired = [100 * floor["flops"] / (rate * 1e12) / t for t, rate in v.get("pairs", ())]
            rounds = f"; paired round by round with the rate sampled just before it: {max(paired):.0f}% " \
                     f"(rounds: {', '.join(f'{x:.0f}%' for x in paired)})" if paired else ""
            out.append(f"- {model}, {method}: {100 * floor['seconds'] / v['seconds']:.0f}% of the FLOP floor's "
                       f"throughput{rounds}.")
    return "\n".join(out)


def _machine() -> str:
    """What a section is measured on: the GPU's name, or the CPU model with its widest matrix instructions
    (perf.md keeps one section per benchmark and machine; two CPUs named "AMD EPYC" differ in AVX-512)."""
    if DEVICE.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    from benchmark.provenance import cpu_flags, cpu_name, matrix_isa

    isa = matrix_isa(cpu_flags())
    return f"{cpu_name()} ({isa})" if isa else cpu_name()


def _hardware() -> str:
    if DEVICE.startswith("cuda"):
        return _machine()
    import torch

    return f"{_machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), " \
           f"tokenizers {_tokenizer_threads()} thread(s), Python {platform.python_version()}"


def _tokenizer_threads() -> int:
    """The Rust tokenizers' batch threads: none beyond the caller's when TOKENIZERS_PARALLELISM is off
    (the unit tests' conftest turns it off; make perf and gpu.sh turn it on), else rayon's pool."""
    if os.environ.get("TOKENIZERS_PARALLELISM", "true").lower() in ("false", "0", "off", "no"):
        return 1
    return int(os.environ.get("RAYON_NUM_THREADS") or os.cpu_count() or 1)


def _section_key() -> str:
    """One section per device kind, and on the CPU per thread count (`make perf PERF_THREADS=1`)."""
    if DEVICE.startswith("cuda"):
        return "CUDA"
    import torch

    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads > 1 else ''}"


def _write_section(section: str, key: str | None = None) -> None:
    """Replace this benchmark's section for this machine (`key`, default this device kind's) in
    leaderboards/perf.md, keeping every other section."""
    from benchmark.results import write_atomic

    path = ROOT / "leaderboards" / "perf.md"
    old = path.read_text() if path.exists() else None
    write_atomic(path, perf_sections.merge(old, section, key or _section_key(), _machine()))
    print("\n" + section)
