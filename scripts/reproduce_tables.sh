#!/usr/bin/env bash
# Tables 1, 2 and 5 from nothing, on the GPUs of one machine: generate a dyce-preset dataset,
# train SeGAN and every baseline (side by side, one queue of runs per GPU), then evaluate all
# of them with ground-truth S_V and with predicted S_V (the visible Mask R-CNN's).
#
#   scripts/reproduce_tables.sh OUT
#
# Environment (defaults in brackets):
#   VIEWS [200]         views per dyce scene (the preset's full size is 500)
#   GEN_WORKERS [nproc] generation processes
#   MINUTES [5]         training time of SeGAN; every baseline gets half of it (two per GPU)
#   GPUS [all visible]  how many GPUs to use (the queues are spread over them)
#   SAMPLE [160]        test images per evaluation, spread over the test scenes (0 = all)
#   SEGAN_CONFIG [configs/segan_scratch.yaml]
#   SEGAN [segan, else .venv/bin/segan]  the command (split on spaces)
#   PYTHON [.venv/bin/python, else python3]  the interpreter that has segan and torch
#   SMOKE [0]           1: a CPU check of this script in minutes (tiny preset, one step per
#                       run, 2 test images): every stage runs, the numbers mean nothing
# Step counts are set so each schedule (stage 1 then 2, learning-rate decays) fits its time on
# an H100; `--time-limit` stops a run early (with a checkpoint) on slower hardware.
# OUT/data is the dataset, OUT/runs/<method>/ the runs (logs in OUT/logs/), OUT/eval_gt and
# OUT/eval_predicted the results (results.md, results.json, figures).
# shellcheck disable=SC2086  # $SEGAN is split on purpose
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT" >&2
  exit 2
fi
OUT=$1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SEGAN=${SEGAN:-$(command -v segan || echo "$ROOT/.venv/bin/segan")}
PYTHON=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
VIEWS=${VIEWS:-200}
GEN_WORKERS=${GEN_WORKERS:-$(nproc)}
MINUTES=${MINUTES:-5}
SAMPLE=${SAMPLE:-160}
SEGAN_CONFIG=${SEGAN_CONFIG:-$ROOT/configs/segan_scratch.yaml}
if [ -z "${GPUS:-}" ]; then
  GPUS=$($PYTHON -c "import torch; print(max(1, torch.cuda.device_count()))")
fi
SMOKE=${SMOKE:-0}
PRESET=dyce
OBJ_SMOKE="" DET_SMOKE="" DEPTH_SMOKE=""
if [ "$SMOKE" = 1 ]; then
  PRESET=tiny VIEWS=2 MINUTES=0 SAMPLE=2
  OBJ_SMOKE="data.batch_objects=2 data.num_workers=0 data.cache_workers=0 run.log_every=1 run.device=cpu"
  DET_SMOKE="detector.batch_images=1 detector.min_size=160 detector.max_size=160 data.num_workers=0 run.log_every=1 run.device=cpu"
  DEPTH_SMOKE="depth.batch_images=2 depth.image_size=64 data.num_workers=0 run.log_every=1 run.device=cpu"
fi
HALF=$($PYTHON -c "print($MINUTES / 2)")
mkdir -p "$OUT/runs" "$OUT/logs"
DATA=$OUT/data

echo "== generate $DATA ($PRESET preset, $VIEWS views per scene, $GEN_WORKERS workers)"
$SEGAN generate "$DATA" --preset "$PRESET" --views "$VIEWS" --workers "$GEN_WORKERS" --quiet

# name|config|time (minutes)|overrides. Steps: about what an H100 does in that time.
JOBS=(
  "segan|$SEGAN_CONFIG|$MINUTES|schedule.stage1_steps=1000 schedule.stage2_steps=1800 optim.segmentor_lr_decay_every=2400 $OBJ_SMOKE"
  "visible_maskrcnn|$ROOT/configs/visible_maskrcnn.yaml|$HALF|detector.steps=1200 detector.warmup_steps=100 $DET_SMOKE"
  "pix2pix|$ROOT/configs/pix2pix.yaml|$HALF|schedule.stage2_steps=1400 data.batch_objects=128 $OBJ_SMOKE"
  "ibbe|$ROOT/configs/ibbe.yaml|$HALF|schedule.stage1_steps=2500 data.batch_objects=128 optim.segmentor=adam optim.segmentor_lr=2e-4 $OBJ_SMOKE"
  "maskrcnn_full|$ROOT/configs/maskrcnn_full.yaml|$HALF|detector.steps=1200 detector.warmup_steps=100 $DET_SMOKE"
  "context_encoder|$ROOT/configs/context_encoder.yaml|$HALF|schedule.stage2_steps=1400 data.batch_objects=128 $OBJ_SMOKE"
  "depth_net|$ROOT/configs/depth_net.yaml|$HALF|depth.steps=2000 $DEPTH_SMOKE"
)

train() {  # name config minutes overrides...
  local name=$1 config=$2 minutes=$3
  shift 3
  echo "   train $name ($minutes min) on GPU $CUDA_VISIBLE_DEVICES"
  $SEGAN train --config "$config" --data "$DATA" --out "$OUT/runs/$name" --quiet \
    --backbone-weights none --cache-dir "$OUT/cache" --time-limit "$minutes" "$@" \
    run.grid_every=500 >"$OUT/logs/$name.log" 2>&1
}

# The decoded cache is built once, before the queues start (every object-level run shares it).
echo "== build the training cache"
$PYTHON -c "
from segan.train import load_config
from segan.train.cache import open_cache
d = load_config('$SEGAN_CONFIG').data
open_cache('$DATA', d.train_split, d.image_size, d.expand_max, '$OUT/cache',
           workers=0 if $SMOKE else d.cache_workers)"

echo "== train ${#JOBS[@]} runs on $GPUS GPU(s)"
pids=()
for ((g = 0; g < GPUS; g++)); do
  (
    export CUDA_VISIBLE_DEVICES=$g
    for ((j = g; j < ${#JOBS[@]}; j += GPUS)); do
      IFS='|' read -r name config minutes overrides <<<"${JOBS[$j]}"
      train "$name" "$config" "$minutes" $overrides
    done
  ) &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [ $status -ne 0 ]; then
  echo "a training run failed: see $OUT/logs/" >&2
  tail -n 20 "$OUT"/logs/*.log >&2
  exit 1
fi

R=$OUT/runs
METHODS=(--method "segan=$R/segan" --method visible_as_full --method "pix2pix=$R/pix2pix"
         --method "context_encoder=$R/context_encoder" --method "ibbe=$R/ibbe"
         --method "nearest_neighbour=$R/segan" --method "maskrcnn_full=$R/maskrcnn_full"
         --method "depth_net=$R/depth_net")
SAMPLING=()
[ "$SAMPLE" != 0 ] && SAMPLING=(--sample "$SAMPLE")
echo "== evaluate (ground-truth and predicted S_V, side by side)"
CUDA_VISIBLE_DEVICES=0 $SEGAN evaluate --data "$DATA" --split test --visible gt \
  --out "$OUT/eval_gt" --cache-dir "$OUT/cache" --quiet "${METHODS[@]}" "${SAMPLING[@]}" \
  >"$OUT/logs/eval_gt.log" 2>&1 &
e1=$!
CUDA_VISIBLE_DEVICES=$((GPUS > 1 ? 1 : 0)) $SEGAN evaluate --data "$DATA" --split test \
  --visible predicted --visible-segmenter "$R/visible_maskrcnn" --out "$OUT/eval_predicted" \
  --cache-dir "$OUT/cache" --quiet "${METHODS[@]}" "${SAMPLING[@]}" \
  >"$OUT/logs/eval_predicted.log" 2>&1 &
e2=$!
status=0
wait $e1 || status=1
wait $e2 || status=1
tail -n 3 "$OUT"/logs/eval_*.log
exit $status
