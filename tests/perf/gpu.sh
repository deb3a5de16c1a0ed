#!/bin/bash
# The CUDA section of `make perf` on a lent GPU machine (the device tool), in one short run.
#
# The image there has torch, transformers and pytest-benchmark but not datasets or evaluate, and no
# network: carry them as wheels in .whl/ (see the device README), and SST-2 as .perfdata/sst2/ (a copy
# of ../shared/data/sst2, which does not travel; both folders are git-excluded, never committed).
# Without .perfdata the benchmark falls back to the sample suite, and says so in its table.
# On a machine without CUDA the run is the CPU section instead (PERF_DEVICE decides; see test_perf.py).
set -uo pipefail
out=${OUT:-/tmp/perf-out}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# every core for torch and the Rust tokenizers, as in make perf (the unit tests' conftest would pin them)
threads=$(nproc)
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads TOKENIZERS_PARALLELISM=true
# 872 validation sentences last about 0.1 s on an H200, so fixed costs would dominate every ratio: the
# first 10,000 train sentences instead (about 5 minutes in all, the slow baselines included).
export PERF_SPLIT=${PERF_SPLIT:-train} PERF_LIMIT=${PERF_LIMIT:-10000}
made_link=""
if [ -d .perfdata ] && [ ! -e ../shared/data ]; then
  mkdir -p ../shared && ln -s "$PWD/.perfdata" ../shared/data && made_link=1
fi
# the link is for this run only: a partial ../shared/data left behind would confuse later runs beside it
trap '[ -n "$made_link" ] && rm -f ../shared/data && rmdir ../shared 2>/dev/null' EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -p no:xdist tests/perf/test_perf.py --benchmark-only -s 2>&1 | tee "$out/perf.log"
status=${PIPESTATUS[0]}
cp leaderboards/perf.md "$out/perf.md"
exit "$status"
