#!/usr/bin/env bash
# Training throughput of a DeBERTa-v3-xsmall-shaped SiamesePreferenceModel on one CUDA GPU, fp16 and bf16.
#
#   bash bench/gpu.sh                    # defaults: 16 pairs x 512 tokens per side, 5 warm-up + 30 timed steps
#   bash bench/gpu.sh --batch-size 32    # any bench/gpu_train.py option passes through
#
# Needs the project's Python environment (torch with CUDA, transformers, the arena_pref package:
# `pip install -r requirements.txt`); it uses .venv/bin/python when there is one, else $PYTHON or python3.
# Random weights and random tokens: nothing is downloaded. Takes about a minute on an H100.
# Exits 2 without measuring anything when torch sees no CUDA device.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -n "${PYTHON:-}" ]]; then
  py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
else
  py=python3
fi

if ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "bench/gpu.sh: no CUDA device available to torch ($("$py" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "torch not importable") with $py); this benchmark needs an NVIDIA GPU. Nothing was measured." >&2
  exit 2
fi

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
fi
exec "$py" bench/gpu_train.py --device cuda "$@"
