#!/usr/bin/env bash
# scripts/quality_run.sh on the lent GPU machine, across device calls of at most 10 minutes:
#
#   bash benchmarks/device_quality.sh start SECONDS [VAR=VALUE ...]   # launch, then wait
#   bash benchmarks/device_quality.sh wait SECONDS                     # wait on (next call)
#
# `start` sets up the machine (benchmarks/device_env.sh), launches the run in its own process
# session under /tmp/q (so it outlives the call while the machine stays warm), and waits up
# to SECONDS; `wait` waits again. Both then pack what exists into $OUT/quality.tgz (tables,
# results.json/md, logs, each run's stats and config) and $OUT/figures.tgz (the evaluation's
# figures), copy quality.md to $OUT, and once the run is over export the compact-family arm
# that ran (`recommended` or an arm named compact*; of several, the one with the larger
# out-of-domain margin: benchmarks/pick_arm.py) as a bundle into $OUT/bundle (`segan
# export-bundle`, with the visible segmenter if it ran and both fit in 40 MiB; else the
# segmenter alone in fp16 into $OUT/visible). The GPU
# speed targets are benchmarks/device_bench.sh's (one short call of its own).
# VAR=VALUE pairs are quality_run.sh's environment (MINUTES, ARMS, EXTRA_TEST, ...).
# EXPORT_ALL=1 in this script's own environment (`EXPORT_ALL=1 bash benchmarks/device_quality.sh
# wait ...`): once the run is over, every compact-family arm that ran is exported as its own
# bundle into $OUT/bundle_<arm> (an A/B of arms scored on the CPU afterwards), and the figures
# stay behind, quality.md and the log only in quality.tgz (at most 8 files come back).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:?start|wait} seconds=${2:?seconds}; shift 2
Q=/tmp/q
. benchmarks/device_env.sh
if [ "$mode" = start ]; then
  rm -rf "$Q" && mkdir -p "$Q"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  setsid nohup env PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "$@" \
    SEGAN="python3 -m segan.cli" bash -c \
    "scripts/quality_run.sh $Q/out > $Q/log 2>&1; echo \$? > $Q/rc" >/dev/null 2>&1 &
fi
end=$((SECONDS + seconds))
while [ ! -f "$Q/rc" ] && [ $SECONDS -lt $end ]; do sleep 5; done
echo "== rc: $(cat "$Q/rc" 2>/dev/null || echo running)"
tail -25 "$Q/log"
grep -h '"samples_per_s"' "$Q"/out/runs/*/stats.jsonl 2>/dev/null | tail -1 | cut -c1-300
if [ -n "${OUT:-}" ]; then
  # EXPORT_ALL once the run is over: every arm's bundle comes back, so the figures stay behind
  # and the log travels inside quality.tgz (the reply brings back at most 8 files)
  export_all= && [ -n "${EXPORT_ALL:-}" ] && [ -f "$Q/rc" ] && export_all=1
  with_log=() && [ -n "$export_all" ] && with_log=(-C "$Q" log)
  # tables and scores (small) apart from the figures (large; a file over 16 MiB stays behind)
  (cd "$Q/out" && tar czf "$OUT/quality.tgz" --ignore-failed-read \
    quality.md eval/*/results.json eval/*/results.md logs runs/*/stats.jsonl \
    runs/*/config.yaml "${with_log[@]}" 2>/dev/null)
  if [ -z "$export_all" ]; then
    (cd "$Q/out" && tar czf "$OUT/figures.tgz" --ignore-failed-read eval/*/figure_*.png 2>/dev/null)
    cp "$Q/out/quality.md" "$OUT/" 2>/dev/null
    cp "$Q/log" "$OUT/run.log" 2>/dev/null
  fi
  # the compact arm as the package's bundle (issue 13): fp16, files of at most 16 MiB, with
  # the visible segmenter (VISIBLE_MINUTES) when both fit in 40 MiB, else that one apart in fp16
  # of the compact-family arms that ran (recommended, compact, compact_plusfam: a data A/B, ...),
  # the one alone or, of several, the one with the larger out-of-domain margin
  # (benchmarks/pick_arm.py); its run path is the manifest's "source"
  # (their run folders by name: `recommended` and the arms named compact*; the others, plus*,
  # prev and paper, are too large for a bundle, and runs/visible is the segmenter)
  ran=() && for run in "$Q"/out/runs/recommended "$Q"/out/runs/compact*; do
    [ -f "$run/model.safetensors" ] && ran+=("${run##*/}"); done
  if [ -n "$export_all" ]; then
    # every compact-family arm as its own bundle (two files of <= 16 MiB and a manifest each)
    for a in "${ran[@]}"; do
      echo "== bundle: the $a arm"
      python3 -m segan.cli export-bundle "$Q/out/runs/$a" --out "$OUT/bundle_$a" 2>&1 | tail -2
    done
    exit 0
  fi
  arm=${ran[0]:-compact}
  if [ -f "$Q/rc" ] && [ ${#ran[@]} -gt 1 ]; then
    arm=$(python3 benchmarks/pick_arm.py "$Q/out/eval" "${ran[@]}")
  fi
  [ -f "$Q/rc" ] && echo "== bundle: the $arm arm"
  if [ -f "$Q/rc" ] && [ -f "$Q/out/runs/$arm/model.safetensors" ] && [ ! -d "$OUT/bundle" ]; then
    vis=() && [ -f "$Q/out/runs/visible/model.safetensors" ] && vis=(--visible-segmenter "$Q/out/runs/visible")
    python3 -m segan.cli export-bundle "$Q/out/runs/$arm" "${vis[@]}" --out "$OUT/bundle" 2>&1 | tail -5 \
      || true
    if [ ${#vis[@]} -gt 0 ] && ! grep -q visible_segmenter "$OUT/bundle/segan_compact.json" 2>/dev/null; then
      rm -rf "$OUT/bundle" && python3 -m segan.cli export-bundle "$Q/out/runs/$arm" --out "$OUT/bundle" | tail -3
      mkdir -p "$OUT/visible" && cp "$Q/out/runs/visible/config.yaml" "$OUT/visible/"
      python3 benchmarks/fp16_weights.py "$Q/out/runs/visible/model.safetensors" "$OUT/visible/model.safetensors"
    fi
  fi
fi
exit 0
