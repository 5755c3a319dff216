#!/usr/bin/env bash
# Train SeGAN, the object-level baselines of Tables 1-2 and the image-level models (the
# visible-instance Mask R-CNN, the full-mask Mask R-CNN, the depth network) on one dataset,
# then evaluate them all in one `segan evaluate` with ground-truth S_V and one with predicted
# S_V (same inputs, same metrics):
#
#   scripts/train_baselines.sh DATA RUNS [KEY=VALUE ...]
#
# The tasks and methods come from the registries (`segan list tasks`, `segan list methods`):
# RUNS/TASK/ is the run of each registered task (segan, pix2pix, context_encoder, ibbe,
# visible_maskrcnn, maskrcnn_full, depth_net), trained from configs/TASK.yaml (an existing run
# is resumed, a finished one is left as it is); every compared method is evaluated, each on
# the run of its task (nearest_neighbour, without one: random-init features); the predicted S_V
# are those of the run that configs/tables/ marks `visible_segmenter: true` (visible_maskrcnn;
# src/segan/train/table_runs.py); RUNS/eval/ and RUNS/eval_predicted/ are the results
# (results.md, results.json, figures).
# KEY=VALUE overrides go to every training run (e.g. schedule.stage2_steps=5000
# run.checkpoint_every=1000). Environment: SEGAN (a command, split on spaces; default: segan on PATH, else
# .venv/bin/segan), PYTHON (the interpreter that has segan; default .venv/bin/python, else
# python3), BACKBONE (none|imagenet|PATH, default none: no ImageNet weights
# offline), EVAL_ARGS (extra `segan evaluate` arguments, e.g. "--limit 100").
# shellcheck disable=SC2086  # $SEGAN is split on purpose
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DATA RUNS [KEY=VALUE ...]" >&2
  exit 2
fi
DATA=$1
RUNS=$2
shift 2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SEGAN=${SEGAN:-$(command -v segan || echo "$ROOT/.venv/bin/segan")}
PYTHON=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
BACKBONE=${BACKBONE:-none}
mkdir -p "$RUNS"

TASKS=$($SEGAN list tasks)
WITH_BACKBONE=" $($SEGAN list tasks --pretrained-backbone | tr '\n' ' ') "
METHODS=()  # --method NAME=RUNS/TASK, or NAME alone for a method without a checkpoint
METHOD_LIST=$($SEGAN list methods)
while read -r name task; do
  if [ "$task" = - ]; then METHODS+=(--method "$name"); else METHODS+=(--method "$name=$RUNS/$task"); fi
done <<<"$METHOD_LIST"
VISIBLE_RUN=$($PYTHON -m segan.train.table_runs "$ROOT/configs/tables" --show visible_segmenter)

for task in $TASKS; do
  run="$RUNS/$task"
  extra=()
  if [[ "$WITH_BACKBONE" == *" $task "* ]]; then
    extra=(--backbone-weights "$BACKBONE")
  fi
  echo "== train $task -> $run"
  if [ -d "$run/checkpoints" ] && ls "$run/checkpoints"/ckpt-*.pt >/dev/null 2>&1; then
    $SEGAN train --data "$DATA" --out "$run" --resume "$@"
  else
    $SEGAN train --config "$ROOT/configs/$task.yaml" --data "$DATA" --out "$run" \
      "${extra[@]}" "$@"
  fi
done

echo "== evaluate -> $RUNS/eval"
# shellcheck disable=SC2086
$SEGAN evaluate --data "$DATA" --split test --visible gt --out "$RUNS/eval" \
  "${METHODS[@]}" ${EVAL_ARGS:-}

echo "== evaluate with predicted S_V -> $RUNS/eval_predicted"
# shellcheck disable=SC2086
$SEGAN evaluate --data "$DATA" --split test --visible predicted \
  --visible-segmenter "$RUNS/$VISIBLE_RUN" --out "$RUNS/eval_predicted" \
  "${METHODS[@]}" ${EVAL_ARGS:-}
