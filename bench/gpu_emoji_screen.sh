#!/usr/bin/env bash
# A prepared GPU call of issue 10 (one call, about 8 minutes of a one-GPU machine):
#   UNIT_DATA_ROOT=<folder with emoji/> bash bench/gpu_emoji_screen.sh    (repository root; results in $OUT)
# 1. bench/gpu_train_speed.py: emoji64 steps/s at batch 4 and 64 with channels_last and cuDNN
#    autotuning on and off, and a profile of the default step (stopped at 300 s; in session 21 the settings
#    alone took about 220 s);
# 2. a screen of emoji recipe changes: the default `train` run (emoji64, bf16, the preset's batch and
#    steps) and one change each, all at once on the one GPU (each is launch-bound at a small batch, so
#    they share it), stopped at 330 s; each run exports every 600 steps.
# The last snapshot and the final export of each run come back in tar files (two runs per tar: a call returns at most
# 8 files of 16 MiB) to be scored with `eval emoji` where the Inception file is (FID/KID); the screen's figures compare only with
# each other (same GPU, same time), not with CPU runs. SCREEN_ARGS (extra train options) and
# EXPORT_EVERY are for a smoke test: SCREEN_ARGS="--steps 2 --device cpu" EXPORT_EVERY=1.
# Other screens: SCREEN_VARIANTS (lines of "name|train options"), SCREEN_SECONDS (330), SPEED=0 skips
# step 1, SCREEN_THREADS (CPU threads per run, default 2: seven runs of 16 threads each would fight
# over the machine's cores for the host-side work).
set -u -o pipefail
OUT="${OUT:-bench/results/gpu_screen}"
mkdir -p "$OUT"
PY="${PY:-python3}"
export PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
. "$(dirname "$0")/gpu_machine.sh"
record_gpu_machine "$OUT/machine.txt"

t0=$(date +%s)
if [ "${SPEED:-1}" = 0 ]; then
  echo "speed: skipped (SPEED=0)" | tee "$OUT/speed.txt"
else
  PYTHONPATH=. timeout 300 "$PY" bench/gpu_train_speed.py 4,64 64 > "$OUT/speed.txt" 2>&1
  echo "speed rc=$? wall_s=$(( $(date +%s) - t0 ))" | tee -a "$OUT/speed.txt"
fi
head -12 "$OUT/speed.txt"

if [ -n "${SCREEN_VARIANTS:-}" ]; then
  mapfile -t VARIANTS < <(printf '%s\n' "$SCREEN_VARIANTS" | grep -v '^\s*$')
else VARIANTS=(
  "default|"
  "nshared2|--set n_shared=2"
  "nshared3|--set n_shared=3"
  "kl1|--set lambda_kl=1 --set lambda_cc_kl=1"
  "gan30|--set lambda_gan=30"
  "cc10|--set lambda_cc_recon=10"
  "batch16|--batch-size 16"
); fi
t0=$(date +%s)
for v in "${VARIANTS[@]}"; do
  name=${v%%|*}; args=${v#*|}
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=${SCREEN_THREADS:-2} timeout "${SCREEN_SECONDS:-330}" "$PY" -m unit_nodes train --domain-a emoji-google --domain-b emoji-twitter --out "$WORK/$name" \
    --export-every "${EXPORT_EVERY:-600}" $args ${SCREEN_ARGS:-} > "$WORK/$name.log" 2>&1 &
done
wait
echo "screen wall_s=$(( $(date +%s) - t0 ))" > "$OUT/screen.txt"
for v in "${VARIANTS[@]}"; do
  name=${v%%|*}
  { echo "== $name (${v#*|})"; tr '\r' '\n' < "$WORK/$name.log" | grep -v '^\s*$' | tail -3; } >> "$OUT/screen.txt"
  mkdir -p "$WORK/models/$name"
  for snap in "$WORK/$name"/snapshots/step_*; do
    [ -f "$snap/model.safetensors" ] || continue
    s=$(basename "$snap"); mkdir -p "$WORK/models/$name/$s"
    cp "$snap/model.safetensors" "$snap/config.json" "$WORK/models/$name/$s/"
  done
  # a run that finished exports its last step beside the snapshots, not among them
  if [ -f "$WORK/$name/model.safetensors" ]; then
    mkdir -p "$WORK/models/$name/final"
    cp "$WORK/$name/model.safetensors" "$WORK/$name/config.json" "$WORK/models/$name/final/"
  fi
done
cat "$OUT/screen.txt"
# each run's last snapshot and, if it finished, its final export (the fixed snapshot is the last step
# every run reached), two runs per tar (four 3.5 MB emoji64 exports: a call returns at most 8 files of 16 MiB)
names=(); for v in "${VARIANTS[@]}"; do names+=("${v%%|*}"); done
for ((i = 0; i < ${#names[@]}; i += 2)); do
  (cd "$WORK/models" && tar cf "$OUT/models$((i / 2 + 1)).tar" \
    $(for n in "${names[@]:i:2}"; do ls -d "$n"/step_* 2>/dev/null | tail -1; ls -d "$n"/final 2>/dev/null; done))
done
ls -la "$OUT"
