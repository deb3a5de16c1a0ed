"""`make perf`, training: the harness's fine-tuning path against a plain `Trainer` run of the same
recipe, side by side in one run, and both against the training FLOP floor.

The model is the packaged all-MiniLM-L6-v2 (skipped where the package is absent) with a new SST-2
head; the data is the first PERF_TRAIN_EXAMPLES sentences of SST-2 train (../shared/data when
present, else the sample suite), one epoch, batch 32, learning rate 1e-4, warm-up 6%, weight decay
0.01. The harness batches by length with the fused AdamW kernel and, on the CPU, draws dropout masks
from numpy's SFC64 (`training.train`); a second harness row keeps torch's own masks, to show what
those cost; the plain run is `Trainer` with its default sampler and optimiser. The floor is 6 x non-embedding parameters x
real tokens at the fp32 matrix rate sampled just before each round (and the best of the run).
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from benchmark.data import load_split  # noqa: E402
from benchmark.flops import TRAIN_FLOPS_PER_PARAM, floor_fraction, matrix_rate, non_embedding_parameters  # noqa: E402
from benchmark.models import packaged, training  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

from test_perf import DATA, DEVICE, SUSTAIN_S, _hardware, _section_key, _write_section  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EXAMPLES = int(os.environ.get("PERF_TRAIN_EXAMPLES", "2000"))
ROUNDS = int(os.environ.get("PERF_TRAIN_ROUNDS", "2"))
TASK = discover().tasks["sst2"]
BUDGET = training.Budget(epochs=1.0, learning_rate=1e-4, batch_size=32)
TRAINED: dict[str, dict] = {}


@pytest.fixture(scope="module")
def setup():
    from transformers import AutoTokenizer

    entry = packaged.find(MODEL)
    folder = entry.verified() if entry is not None else None
    if folder is None:
        pytest.skip(f"the {MODEL} package is not installed (make venv installs it)")
    source = str(DATA) if (DATA / "sst2").is_dir() else "sample"
    rows = load_split(TASK, "train", source).rows[:EXAMPLES]
    tok = AutoTokenizer.from_pretrained(folder)
    features = [dict(tok(TASK.texts(r)[0], truncation=True, max_length=512), labels=TASK.label_index(r))
                for r in rows]
    return folder, tok, features, source


def _model(folder):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)


def _plain_trainer(model, features, tok) -> training.TrainStats:
    """What a user writes first: Trainer's defaults with the same recipe, random batches."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    counting = training._CountingCollator(DataCollatorWithPadding(tok))
    steps = -(-len(features) // BUDGET.batch_size)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, num_train_epochs=BUDGET.epochs, learning_rate=BUDGET.learning_rate,
                                 per_device_train_batch_size=BUDGET.batch_size, weight_decay=BUDGET.weight_decay,
                                 warmup_steps=int(BUDGET.warmup_fraction * steps), seed=0, report_to="none",
                                 save_strategy="no", logging_strategy="no", disable_tqdm=True,
                                 use_cpu=DEVICE == "cpu")
        trainer = Trainer(model=model, args=args, train_dataset=training._ListDataset(features),
                          data_collator=counting)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return training.TrainStats(seconds=seconds, examples=counting.examples, real_tokens=counting.real,
                               padded_tokens=counting.padded, flops=None, matrix_tflops=0.0, budget=BUDGET)


HARNESS = "harness (length-grouped, fused AdamW, SFC64 dropout masks)"
TORCH_MASKS = "harness with torch's dropout masks"


@pytest.mark.parametrize("method", [HARNESS, TORCH_MASKS, "plain Trainer (random batches)"])
def test_training_throughput(benchmark, setup, method):
    from transformers import DataCollatorWithPadding

    folder, tok, features, source = setup
    rounds: list[dict] = []

    def one_round():
        model = _model(folder)
        rate = matrix_rate(DEVICE, SUSTAIN_S).sustained_tflops  # sampled untimed, just before the round
        if method.startswith("harness"):
            stats = training.train(model, features, DataCollatorWithPadding(tok), BUDGET, device=DEVICE, seed=0,
                                   quiet=True, fast_dropout=method == HARNESS)
        else:
            stats = _plain_trainer(model, features, tok)
        flops = TRAIN_FLOPS_PER_PARAM * non_embedding_parameters(model) * stats.real_tokens
        rounds.append({"seconds": stats.seconds, "real": stats.real_tokens, "padded": stats.padded_tokens,
                       "rate": rate, "flops": flops, "utc": time.strftime("%H:%M", time.gmtime())})

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    best = min(rounds, key=lambda r: r["seconds"])
    TRAINED[method] = {**best, "rounds": rounds, "source": source, "examples": len(features)}
    assert best["real"] == sum(len(f["input_ids"]) for f in features) * BUDGET.epochs


def _span(trained: dict[str, dict]) -> str:
    stamps = sorted(r["utc"] for v in trained.values() for r in v["rounds"])
    return stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"


def write_training_table() -> None:
    """Called once at the end of the session (conftest)."""
    if not TRAINED:
        return
    best_rate = max(r["rate"] for v in TRAINED.values() for r in v["rounds"])
    any_v = next(iter(TRAINED.values()))
    harness = TRAINED.get(HARNESS)
    lines = [f"## Training, {_section_key()}: {_hardware()}", "",
             f"Fine-tuning {MODEL} (new SST-2 head) on the first {any_v['examples']:,} SST-2 train sentences "
             f"({any_v['source']} data), one epoch, batch {BUDGET.batch_size}, learning rate {BUDGET.learning_rate:g}; "
             f"best of {ROUNDS} rounds, a fresh model each round. Measured by `make perf` on "
             f"{time.strftime('%Y-%m-%d')}, rounds ending {_span(TRAINED)} UTC.", "",
             "| method | seconds | real tokens/s | padding | share of the FLOP floor (best rate) | "
             "paired with the rate sampled before each round | harness speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for method, v in TRAINED.items():
        paired = ", ".join(f"{100 * floor_fraction(r['flops'], r['seconds'], r['rate']):.0f}%" for r in v["rounds"])
        speedup = f"{v['seconds'] / harness['seconds']:.2f}×" if harness else "—"
        lines.append(f"| {method} | {v['seconds']:.1f} | {v['real'] / v['seconds']:,.0f} | "
                     f"{v['padded'] / v['real']:.2f} | "
                     f"{100 * floor_fraction(v['flops'], v['seconds'], best_rate):.0f}% | {paired} | {speedup} |")
    lines += ["", f"- The floor: {TRAIN_FLOPS_PER_PARAM} × non-embedding parameters × real tokens "
                  f"({any_v['flops'] / 1e12:.2f} TFLOP) at the best fp32 matrix rate of the run, "
                  f"{best_rate * 1000:.1f} GFLOP/s ({SUSTAIN_S:.0f} s of 2048² products before each round).", ""]
    _write_section("\n".join(lines), key=f"Training, {_section_key()}")
