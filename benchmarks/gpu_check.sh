#!/usr/bin/env bash
# One command for the GPU check (see benchmarks/gpu_check.py for the modes and what OUT holds):
#   bash benchmarks/gpu_check.sh OUT [--mode h100|t4|dry] [LAB ...]
# It runs in the checkout's environment: activate the course's venv first, or set PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash benchmarks/gpu_check.sh OUT [--mode h100|t4|dry] [LAB ...]" >&2; exit 2; }
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
