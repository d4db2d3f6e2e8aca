#!/usr/bin/env bash
# The CUDA paths on one GPU: first tests/test_cuda.py (the pipeline's own training loop and predictor in
# fp16 with GradScaler and in bf16, checkpoints reloaded on the CPU), then the training and prediction
# throughput of a DeBERTa-v3-xsmall-shaped SiamesePreferenceModel in fp16 and bf16 (bench/gpu_train.py,
# which times the pipeline's own loop.train and infer.predict_pairs).
#
#   bash bench/gpu.sh                    # defaults: 16 pairs x 512 tokens per side, 5 warm-up + 30 timed steps
#   bash bench/gpu.sh --batch-size 32    # any bench/gpu_train.py option passes through
#
# Needs torch with CUDA, transformers, sentencepiece, pandas and pytest; it uses $PYTHON, else .venv/bin/python
# when there is one, else python3. src/ goes on PYTHONPATH, so the arena_pref package need not be installed.
# Random weights and random tokens: nothing is downloaded. Takes a minute or two on an H100.
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
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
"$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py
exec "$py" bench/gpu_train.py --device cuda "$@"
