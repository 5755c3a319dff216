#!/usr/bin/env bash
# A/B comparison of two SeGAN variants: the same data, the same steps, trained side by side on
# one GPU (or the CPU), then evaluated on the same test images with ground-truth S_V.
#
#   scripts/ab_segan.sh OUT "A's overrides" "B's overrides"
#   e.g. scripts/ab_segan.sh /tmp/ab "" "model.mask_refine=true"
#
# Environment (defaults in brackets):
#   VIEWS [80] GEN_WORKERS [16]   dyce-preset data: views per scene, generator processes
#   STEPS [900]                   steps of each run (a third stage 1, the rest stage 2)
#   MINUTES [5]                   each run's --time-limit (both stop with a checkpoint)
#   SAMPLE [120]                  test images scored (spread evenly over the split)
#   CONFIG [configs/segan_scratch.yaml]   STAGES ["train evaluate"]
#   SEGAN [segan, else .venv/bin/segan]   SMOKE [0]: tiny preset, a few CPU steps
# Writes OUT/data, OUT/runs/{A,B}, OUT/eval_{A,B}/results.{json,md}, OUT/logs; prints the
# two results tables.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: scripts/ab_segan.sh OUT \"A overrides\" \"B overrides\"}
A_OVER=${2-}
B_OVER=${3-}
SEGAN=${SEGAN:-$(command -v segan || echo "$ROOT/.venv/bin/segan")}
read -r -a SEGAN_CMD <<<"$SEGAN"
VIEWS=${VIEWS:-80} GEN_WORKERS=${GEN_WORKERS:-16} STEPS=${STEPS:-900} MINUTES=${MINUTES:-5}
SAMPLE=${SAMPLE:-120} CONFIG=${CONFIG:-$ROOT/configs/segan_scratch.yaml}
STAGES=${STAGES:-train evaluate} SMOKE=${SMOKE:-0}
PRESET=dyce
COMMON="data.num_workers=4 run.log_every=20 run.grid_every=0"
if [ "$SMOKE" = 1 ]; then
  PRESET=tiny VIEWS=2 STEPS=3 SAMPLE=2
  COMMON="data.batch_objects=2 data.num_workers=0 data.cache_workers=0 run.log_every=1 run.grid_every=0 run.device=cpu model.mask_size=16 model.crop_size=64 model.num_downs=6 model.ngf=8 model.ndf=8 data.image_size=128"
fi
S1=$((STEPS / 3))
SCHEDULE="schedule.stage1_steps=$S1 schedule.stage2_steps=$((STEPS - S1)) optim.segmentor_lr_decay_every=$((STEPS * 3 / 4 + 1))"
mkdir -p "$OUT/runs" "$OUT/logs"

if [[ " $STAGES " == *" train "* ]]; then
  [ -d "$OUT/data/annotations" ] || "${SEGAN_CMD[@]}" generate "$OUT/data" --preset "$PRESET" \
    --views "$VIEWS" --workers "$GEN_WORKERS" --quiet
  pids=()
  for arm in A B; do
    over=$A_OVER; [ "$arm" = B ] && over=$B_OVER
    # shellcheck disable=SC2086  # overrides are split on spaces on purpose
    "${SEGAN_CMD[@]}" train --config "$CONFIG" --data "$OUT/data" --out "$OUT/runs/$arm" \
      --cache-dir "$OUT/cache_$arm" --time-limit "$MINUTES" --quiet $COMMON $SCHEDULE $over \
      >"$OUT/logs/train_$arm.log" 2>&1 &
    pids+=($!)
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  if [ $status != 0 ]; then tail -20 "$OUT"/logs/train_*.log; exit 1; fi
fi

if [[ " $STAGES " == *" evaluate "* ]]; then
  for arm in A B; do
    "${SEGAN_CMD[@]}" evaluate --data "$OUT/data" --split test --visible gt \
      --out "$OUT/eval_$arm" --cache-dir "$OUT/cache_$arm" --method "segan=$OUT/runs/$arm" \
      --sample "$SAMPLE" --quiet >"$OUT/logs/eval_$arm.log" 2>&1 || {
        tail -20 "$OUT/logs/eval_$arm.log"; exit 1; }
    over=$A_OVER; [ "$arm" = B ] && over=$B_OVER
    echo "== $arm: ${over:-(config as is)}"
    cat "$OUT/eval_$arm/results.md"
  done
fi
