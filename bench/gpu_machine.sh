# Sourced by the prepared GPU scripts (bench/gpu_check.sh, gpu_train_check.sh, gpu_emoji_screen.sh):
# record_gpu_machine FILE writes what the figures were measured on (time, GPU, driver, torch, CPUs)
# to FILE and prints it. Needs $PY.
record_gpu_machine() {
  {
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" 2>&1
    echo "cpus $(nproc)"
  } > "$1"
  cat "$1"
}
