#!/usr/bin/env bash
# The prepared GPU check of issue 5: one call, at most ~5 minutes, on a machine with a CUDA GPU.
#   bash bench/gpu_check.sh            (from the repository root; results go to $OUT or bench/results/gpu)
# 1. bench on cuda, image256 preset at 256 and 512 px: translation (batch 1 and 8) and training
#    (batch 4), eager fp32 path and tuned path (channels_last + bf16 autocast), each figure
#    with its ratio to a bf16 / fp32 matmul roofline measured in the same run;
# 2. the same at 256 px with fp16 autocast (translation only);
# 3. a tiled 4096x4096 translation on the GPU (peak max-allocated memory, seconds).
# Every step has its own timeout so that one slow step cannot eat the others' time.
set -u -o pipefail  # rc=$? after "| tee" must be the command's status, not tee's
OUT="${OUT:-bench/results/gpu}"
mkdir -p "$OUT"
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
. "$(dirname "$0")/gpu_machine.sh"
record_gpu_machine "$OUT/machine.txt"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA-capable torch here; nothing measured" | tee "$OUT/FAILED.txt"
  exit 1
fi
export PYTHONUNBUFFERED=1

timeout 170 "$PY" -m unit_nodes bench --device cuda --presets image256 --sizes 256,512 \
  --batch 8 --train-batch 4 --iters 10 --paths eager,tuned --precision bf16 --no-profile \
  --json "$OUT/bench_cuda_bf16.json" 2>&1 | tee "$OUT/bench_cuda_bf16.txt"
echo "rc=$?" >> "$OUT/bench_cuda_bf16.txt"

timeout 50 "$PY" -m unit_nodes bench --device cuda --presets image256 --sizes 256 \
  --batch 8 --iters 10 --paths tuned --precision fp16 --no-train --no-profile \
  --json "$OUT/bench_cuda_fp16.json" 2>&1 | tee "$OUT/bench_cuda_fp16.txt"

timeout 60 "$PY" bench/tile_memory.py 4096 1024 4 cuda > "$OUT/tile4096_cuda.json" 2> "$OUT/tile4096_cuda.log"
echo "tile4096 rc=$?"; cat "$OUT/tile4096_cuda.json"
ls -la "$OUT"
