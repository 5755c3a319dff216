#!/usr/bin/env bash
# Tables 1, 2 and 5 from nothing, on the GPUs of one machine: generate a dyce-preset dataset,
# train SeGAN and every baseline, then evaluate all of them with ground-truth S_V and with
# predicted S_V (the visible-instance segmenter's, the run marked `visible_segmenter: true`),
# in one `segan evaluate` each.
#
#   scripts/reproduce_tables.sh OUT
#
# The training runs are the files of configs/tables/ (one YAML each: its training config, its
# H100 step rate, the keys set from its step budget, its overrides; format in
# src/segan/train/table_runs.py): segan, pix2pix, context_encoder, ibbe, visible_maskrcnn,
# maskrcnn_full, depth_net. They run at the same time, spread round-robin over the GPUs, each
# for MINUTES of wall-clock time: every method gets about the same share of the machine. Each
# run's step count is its measured-or-estimated H100 rate x its GPU share x MINUTES, so its
# schedule (SeGAN's stage 1 then 2, learning-rate decays) fits; `segan train --time-limit`
# stops a run that is slower than that (with a checkpoint, resumable). A new table run is a
# new file there. The object-level runs share one decoded cache, built with the data settings
# of the run marked `cache: true` (segan). Every compared method of the registry (`segan list
# methods`) is evaluated on the run of its task, or on the run whose `methods` lists it (none
# today: nearest_neighbour takes the paper's ImageNet features, no run).
#
# Environment (defaults in brackets):
#   VIEWS [200]         views per dyce scene (the preset's full size is 500)
#   GEN_WORKERS [nproc] generation processes
#   MINUTES [5]         wall-clock training time of every run
#   GPUS [all visible]  how many GPUs to spread the runs over
#   SAMPLE [160]        test images per evaluation, spread over the test scenes (0 = all)
#   STAGES ["train evaluate"]  which stages to run (train generates the data first)
#   TABLES [configs/tables]  the folder of table runs
#   SEGAN_CONFIG [the segan run's: configs/segan_scratch.yaml]  another config for SeGAN
#   SEGAN [segan, else .venv/bin/segan]  the command (split on spaces)
#   PYTHON [.venv/bin/python, else python3]  the interpreter that has segan and torch
#   SMOKE [0]           1: a CPU check of this script in minutes (tiny preset, one step per
#                       run, 2 test images): every stage runs, the numbers mean nothing
# OUT/data is the dataset, OUT/runs/<method>/ the runs (logs in OUT/logs/), OUT/eval_gt and
# OUT/eval_predicted the results (results.md, results.json, figures).
# shellcheck disable=SC2086  # $SEGAN and the override lists are split on purpose
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
STAGES=${STAGES:-train evaluate}
TABLES=${TABLES:-$ROOT/configs/tables}
SEGAN_CONFIG=${SEGAN_CONFIG:-}
if [ -z "${GPUS:-}" ]; then
  GPUS=$($PYTHON -c "import torch; print(max(1, torch.cuda.device_count()))")
fi
SMOKE=${SMOKE:-0}
PRESET=dyce
TABLE_ARGS=()  # the runs' settings: their `runtime` overrides, or with SMOKE their `smoke` ones
if [ "$SMOKE" = 1 ]; then
  PRESET=tiny VIEWS=2 MINUTES=0 SAMPLE=2
  TABLE_ARGS=(--smoke)
fi
if [ -n "$SEGAN_CONFIG" ]; then TABLE_ARGS+=(--config "segan=$SEGAN_CONFIG"); fi
mkdir -p "$OUT/runs" "$OUT/logs"
DATA=$OUT/data
R=$OUT/runs

if [[ " $STAGES " == *" train "* ]]; then
  echo "== generate $DATA ($PRESET preset, $VIEWS views per scene, $GEN_WORKERS workers)"
  $SEGAN generate "$DATA" --preset "$PRESET" --views "$VIEWS" --workers "$GEN_WORKERS" --quiet

  # NAME|CONFIG|OVERRIDES per run of $TABLES, its steps from its rate, the GPUs and MINUTES
  # (every run's config checked with its overrides before any training)
  JOB_LINES=$($PYTHON -m segan.train.table_runs "$TABLES" --gpus "$GPUS" --minutes "$MINUTES" \
    ${TABLE_ARGS[@]+"${TABLE_ARGS[@]}"})
  mapfile -t JOBS <<<"$JOB_LINES"
  # the config of the run marked `cache: true` (after SEGAN_CONFIG)
  CACHE_CONFIG=$($PYTHON -m segan.train.table_runs "$TABLES" --show cache \
    ${TABLE_ARGS[@]+"${TABLE_ARGS[@]}"})

  # the decoded cache is built once, before the runs start (the object-level runs share it)
  echo "== build the training cache"
  $PYTHON -c "
from segan.train import load_config
from segan.train.cache import open_cache
d = load_config('$CACHE_CONFIG').data
open_cache('$DATA', d.train_split, d.image_size, d.expand_max, '$OUT/cache',
           workers=0 if $SMOKE else d.cache_workers)"

  echo "== train ${#JOBS[@]} runs at once on $GPUS GPU(s), $MINUTES min each"
  pids=()
  for ((j = 0; j < ${#JOBS[@]}; j++)); do
    IFS='|' read -r name config overrides <<<"${JOBS[$j]}"
    gpu=$((j % GPUS))
    echo "   $name on GPU $gpu: $overrides"
    train_one() {
      CUDA_VISIBLE_DEVICES=$gpu $SEGAN train --config "$config" --data "$DATA" --out "$R/$name" \
        --quiet --backbone-weights none --cache-dir "$OUT/cache" --time-limit "$MINUTES" \
        $overrides run.grid_every=250 >"$OUT/logs/$name.log" 2>&1
    }
    if [ "$SMOKE" = 1 ]; then
      train_one  # one at a time on a small CPU
    else
      train_one &
      pids+=($!)
    fi
  done
  status=0
  for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" || status=1; done
  for f in "$OUT"/logs/*.log; do
    echo "   $(basename "$f" .log): $(grep -o '"steps": [0-9]*' "$f" | tail -1), $(grep -o '"finished": [a-z]*' "$f" | tail -1)"
  done
  if [ $status -ne 0 ]; then
    echo "a training run failed: see $OUT/logs/" >&2
    tail -n 20 "$OUT"/logs/*.log >&2
    exit 1
  fi
fi

if [[ " $STAGES " == *" evaluate "* ]]; then
  # every compared method of the registry (`segan list methods`), each on the run of its task
  # or on the run whose `methods` lists it; the predicted S_V: the `visible_segmenter` run
  declare -A RUN_OF=()
  RUN_LIST=$($PYTHON -m segan.train.table_runs "$TABLES" --show methods)
  while read -r name run; do
    if [ -n "$name" ]; then RUN_OF[$name]=$run; fi
  done <<<"$RUN_LIST"
  VISIBLE_RUN=$($PYTHON -m segan.train.table_runs "$TABLES" --show visible_segmenter)
  METHODS=()
  METHOD_LIST=$($SEGAN list methods)
  while read -r name task; do
    task=${RUN_OF[$name]:-$task}
    if [ "$task" = - ]; then METHODS+=(--method "$name"); else METHODS+=(--method "$name=$R/$task"); fi
  done <<<"$METHOD_LIST"
  SAMPLING=()
  [ "$SAMPLE" != 0 ] && SAMPLING=(--sample "$SAMPLE")
  echo "== evaluate (ground-truth and predicted S_V, side by side)"
  CUDA_VISIBLE_DEVICES=0 $SEGAN evaluate --data "$DATA" --split test --visible gt \
    --out "$OUT/eval_gt" --cache-dir "$OUT/cache" --quiet "${METHODS[@]}" "${SAMPLING[@]}" \
    >"$OUT/logs/eval_gt.log" 2>&1 &
  e1=$!
  CUDA_VISIBLE_DEVICES=$((GPUS > 1 ? 1 : 0)) $SEGAN evaluate --data "$DATA" --split test \
    --visible predicted --visible-segmenter "$R/$VISIBLE_RUN" --out "$OUT/eval_predicted" \
    --cache-dir "$OUT/cache" --quiet "${METHODS[@]}" "${SAMPLING[@]}" \
    >"$OUT/logs/eval_predicted.log" 2>&1 &
  e2=$!
  status=0
  wait $e1 || status=1
  wait $e2 || status=1
  tail -n 3 "$OUT"/logs/eval_*.log
  exit $status
fi
