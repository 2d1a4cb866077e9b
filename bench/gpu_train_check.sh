#!/usr/bin/env bash
# The prepared GPU check of issue 10, goal 3 (do the defaults suit a GPU?): one call, about 8 minutes.
#   UNIT_DATA_ROOT=<folder with emoji/> bash bench/gpu_train_check.sh     (repository root; results in $OUT or bench/results/gpu_train)
# 1. the default `train` run on the emoji pair (emoji64, 1800 steps, batch 4, precision auto), timed;
# 2. the bundled emoji pair's recipe (22000 steps, bf16, rate held for half the run then decayed to 0), timed,
#    stopped at 330 s if slower than that;
# Each run's exported weights come back (model_*.safetensors + config_*.json) to be scored with `eval emoji`
# on a machine that has the Inception file (FID/KID), since the 87 MB file does not travel with the check.
set -u -o pipefail
OUT="${OUT:-bench/results/gpu_train}"
mkdir -p "$OUT"
PY="${PY:-python3}"
export PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
. "$(dirname "$0")/gpu_machine.sh"
record_gpu_machine "$OUT/machine.txt"
run() {  # name timeout args...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  timeout "$limit" "$PY" -m unit_nodes train --domain-a emoji-google --domain-b emoji-twitter --out "$WORK/$name" "$@" \
    > "$WORK/$name.log" 2>&1
  local rc=$? t1=$(date +%s.%N)
  tr '\r' '\n' < "$WORK/$name.log" | grep -v '^\s*$' | tail -4
  echo "$name rc=$rc wall_s=$(awk "BEGIN{print $t1 - $t0}")" | tee -a "$OUT/times.txt"
  tr '\r' '\n' < "$WORK/$name.log" | grep -v '^\s*$' | tail -30 > "$OUT/log_$name.txt"
  local src last=$(ls -d "$WORK/$name"/snapshots/step_* 2>/dev/null | tail -1)
  if [ -f "$WORK/$name/model.safetensors" ]; then src="$WORK/$name"; else src="$last"; fi
  if [ -n "$src" ]; then cp "$src/model.safetensors" "$OUT/model_$name.safetensors"; cp "$src/config.json" "$OUT/config_$name.json"; echo "$name weights from $src"; fi
}
run default 150
run recipe 330 --steps 22000 --precision bf16 --set lr_policy=linear --set lr_decay_start=0.5 --export-every 5500
ls -la "$OUT"
