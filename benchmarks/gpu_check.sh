#!/usr/bin/env bash
# One check for a lent GPU machine (torch preinstalled, nothing of ours): the GPU-marked
# tests, then digits-mlp and a ResNet-20 on CIFAR-shaped synthetic data, probes on/off,
# bf16 on/off, compile on/off, one process and every GPU; one table. < 5 min.
#
#   benchmarks/gpu_check.sh                        # CUDA
#   benchmarks/gpu_check.sh --device cpu --quick   # the CPU smoke test (< 1 min; CI runs it)
#
# Options go to benchmarks/gpu_check.py (--steps N, --no-tests, --no-ddp). Our package is
# used from this checkout through PYTHONPATH (no install, no network); PYTHON picks the
# interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if [[ " $* " == *" --device cpu "* ]]; then
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
"$PY" -c "import torch, numpy" || { echo "error: gpu_check needs torch and numpy" >&2; exit 2; }
"$PY" -c "import sklearn" 2>/dev/null || echo "note: scikit-learn is missing: the digits-mlp rows will fail" >&2
exec "$PY" benchmarks/gpu_check.py "$@"
