#!/usr/bin/env bash
# The bundle's visible-instance segmenter (configs/visible_compact.yaml) trained alone on the
# lent GPU in one device call, then its recall and precision at IoU 0.5 on the `diverse` test
# split (the own split) and the held-out `ood` split:
#
#   bash benchmarks/device_visible.sh [VAR=VALUE ...]
#
# Environment (defaults in brackets): MINUTES [6.3] STEPS [the config's 3200] (the lr
# schedule's length: warm-up, x0.1 at 75% and 92%; alone on an H100 it trains 84-88 images/s,
# 8.7 steps/s of 8, so the anneal completes within MINUTES) ANCHORS [the config's
# 16,32,64,128,256] (FPN P2-P6) WORKERS [12] SAMPLE [100] (test images)
# OOD [1] (0: no `ood` set, for a short call) TRAIN_SIZES [] (multi-scale training: shorter
# sides drawn from, e.g. 500,600,700,800; `detector.train_sizes`; larger images cost more a
# step, so fewer steps fit in MINUTES). INIT [] (warm start: `model.init_from`, e.g.
# src/segan/weights, the bundle's segmenter; the schedule starts again) LR [the config's 1e-3].
# PR_SIZES [] (e.g. 1100, the bundle's test size, or 1100,1300): also scripts/segmenter_pr.py
# on each set at each of these test sizes (recall and precision over the score threshold, the
# misses by visible area), on the GPU; its tables come back as $OUT/pr_<set>_<size>.json.
# SMOKE [0]: 1 = tiny sets and a few CPU steps,
# here, without the device's setup (the script's own check: `SMOKE=1 bash benchmarks/
# device_visible.sh`, about 3 minutes on 2 cores; Q [/tmp/v] is where it works).
# The `diverse` and `ood` sets are generated with the presets' default seeds, the same test
# images as scripts/quality_run.sh. Brings back $OUT/visible (config.yaml, model.safetensors in
# fp16: `segan export-bundle BUNDLE --visible-segmenter $OUT/visible` attaches it), the two
# evaluations' results.md/json and the training log. Needs no SeGAN weights (the evaluation's
# reference config is the segmenter run's), so the package bundle may stay behind when the
# working tree and the carried wheels would exceed the device's 64 MiB.
set -uo pipefail
cd "$(dirname "$0")/.."
for kv in "$@"; do export "${kv?}"; done
MINUTES=${MINUTES:-6.3} STEPS=${STEPS:-} ANCHORS=${ANCHORS:-}
WORKERS=${WORKERS:-12} SAMPLE=${SAMPLE:-100} OOD=${OOD:-1}
SETS=diverse && [ "$OOD" = 1 ] && SETS="diverse ood"
OVERRIDES=()  # of the config: TRAIN_SIZES, STEPS, ANCHORS
[ -n "${TRAIN_SIZES:-}" ] && OVERRIDES+=("detector.train_sizes=[$TRAIN_SIZES]")
[ -n "${INIT:-}" ] && OVERRIDES+=("model.init_from=$INIT")
[ -n "${LR:-}" ] && OVERRIDES+=("detector.lr=$LR")
SMOKE=${SMOKE:-0} Q=${Q:-/tmp/v}
GEN=(--workers 16) OOD_GEN=(--workers 4) EXTRA=() EVAL=(--sample "$SAMPLE")
PR=(--sample "$SAMPLE" --device cuda) PR_SIZES=${PR_SIZES:-}
if [ "$SMOKE" = 1 ]; then
  GEN=(--workers 1 --scenes 4 --views 2 --size 128) OOD_GEN=(--workers 1 --scenes 2 --views 2 --size 128)
  EXTRA=(detector.min_size=64 detector.max_size=64 detector.fpn_channels=32 detector.box_head_dim=64
         detector.batch_images=2 detector.score_threshold=0.0 model.backbone_weights=none
         data.num_workers=0 run.device=cpu run.log_every=1)
  ANCHORS=8,16,32,64,128 STEPS=2 WORKERS=0 EVAL=(--limit 2 --device cpu) PR=(--sample 2 --device cpu)
else
  . benchmarks/device_env.sh
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
rm -rf "$Q" && mkdir -p "$Q/logs"
log() { echo "[$(date +%H:%M:%S)] $*"; }
PY=${PY:-python3} && SEGAN=("$PY" -m segan.cli)
log "generate diverse"
"${SEGAN[@]}" generate "$Q/diverse" --preset diverse "${GEN[@]}" --quiet >"$Q/logs/gen_diverse.log" 2>&1 \
  || { tail -20 "$Q/logs/gen_diverse.log"; exit 1; }
[ -n "$STEPS" ] && OVERRIDES+=("detector.steps=$STEPS")
[ -n "$ANCHORS" ] && OVERRIDES+=("detector.anchor_sizes=[$ANCHORS]")
log "train visible ($MINUTES min; steps ${STEPS:-3200}, anchors ${ANCHORS:-16-256}, sizes ${TRAIN_SIZES:-min_size}, init ${INIT:-imagenet})"
"${SEGAN[@]}" train --config configs/visible_compact.yaml --data "$Q/diverse" --out "$Q/visible" \
  --time-limit "$MINUTES" --quiet data.num_workers="$WORKERS" "${OVERRIDES[@]}" "${EXTRA[@]}" \
  >"$Q/logs/train.log" 2>&1 &
train=$!
if [ "$OOD" = 1 ]; then
  log "generate ood (beside the training, 4 workers)"
  "${SEGAN[@]}" generate "$Q/ood" --preset ood "${OOD_GEN[@]}" --quiet >"$Q/logs/gen_ood.log" 2>&1 \
    || tail -20 "$Q/logs/gen_ood.log"
fi
wait $train || { tail -30 "$Q/logs/train.log"; exit 1; }
tail -1 "$Q/visible/stats.jsonl" | cut -c1-400
for name in $SETS; do
  log "evaluate $name with predicted S_V"
  "${SEGAN[@]}" evaluate --data "$Q/$name" --split test --visible predicted \
    --visible-segmenter "$Q/visible" --checkpoint "$Q/visible" --method visible_as_full \
    --out "$Q/eval_$name" "${EVAL[@]}" --quiet >"$Q/logs/eval_$name.log" 2>&1 \
    || tail -20 "$Q/logs/eval_$name.log"
  grep -h -- "- detection:" "$Q/eval_$name/results.md"
  for size in ${PR_SIZES//,/ }; do
    log "recall and precision on $name at $size px (scripts/segmenter_pr.py)"
    "$PY" scripts/segmenter_pr.py --segmenter "$Q/visible" --data "$Q/$name" --split test \
      --test-size "$size" "${PR[@]}" --json "$Q/pr_${name}_$size.json" \
      >"$Q/logs/pr_${name}_$size.log" 2>&1 || tail -20 "$Q/logs/pr_${name}_$size.log"
    grep -h -E "^\| test size \||^\| $size \| [0-9.]+ \| 0\.5 \|" "$Q/logs/pr_${name}_$size.log"
  done
done
if [ -n "${OUT:-}" ]; then
  (cd "$Q" && tar czf "$OUT/visible_eval.tgz" --ignore-failed-read logs eval_*/results.* \
    visible/stats.jsonl visible/config.yaml 2>/dev/null)
  for f in "$Q"/pr_*.json; do [ -f "$f" ] && cp "$f" "$OUT/"; done
  mkdir -p "$OUT/visible" && cp "$Q/visible/config.yaml" "$OUT/visible/"
  "$PY" benchmarks/fp16_weights.py "$Q/visible/model.safetensors" "$OUT/visible/model.safetensors"
fi
log "done"
