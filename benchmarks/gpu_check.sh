#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): every MSST family and the default ensemble on a CUDA
# device in float32, fp16, bf16 and compiled; without CUDA it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python benchmarks/gpu_check.py "$@"
