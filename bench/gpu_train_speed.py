"""Where an emoji64 training step spends its time on a GPU, and what the layout knobs change.

Usage: python bench/gpu_train_speed.py [BATCHES] [PROFILE_BATCH]     (defaults 4,64 and 64; needs CUDA)

For each batch size, one Trainer per setting of (channels_last, cudnn.benchmark) runs 8 warm-up
steps and 25 timed steps on fixed random batches (bf16 autocast, what ``--precision auto`` picks
on a bf16 GPU), synchronised before and after; settings are interleaved twice and the faster
pass kept, so drift hits every setting alike. Prints steps/s, images/s and the ratio to the
trainer's defaults (channels_last on, benchmark off). Then a torch.profiler table of 10 steps at
PROFILE_BATCH with the defaults: the 25 ops with the most GPU time, and the CPU time of the step,
which says whether the GPU waits on Python (launch-bound) or the host waits on the GPU.
Random weights and images: speed does not depend on them.
"""
import sys
import time

import torch

from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer

if not torch.cuda.is_available():
    sys.exit("gpu_train_speed.py needs a CUDA GPU")
batches = [int(b) for b in (sys.argv[1] if len(sys.argv) > 1 else "4,64").split(",")]
profile_batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
settings = [(True, False), (True, True), (False, False), (False, True)]  # (channels_last, cudnn.benchmark)


def trainer_for(channels_last: bool) -> Trainer:
    torch.manual_seed(0)
    return Trainer(UNIT(preset("emoji64")), device="cuda", seed=0, precision="auto", channels_last=channels_last)


def batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(size, 3, 64, 64, generator=gen) * 2 - 1, torch.rand(size, 3, 64, 64, generator=gen) * 2 - 1)


def steps_per_second(trainer: Trainer, xa, xb, steps: int = 25, warmup: int = 8) -> float:
    for _ in range(warmup):
        trainer.train_step(xa, xb)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(xa, xb)
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
for size in batches:
    xa, xb = batch(size)
    best: dict[tuple[bool, bool], float] = {}
    for _ in range(2):
        for channels_last, bench in settings:
            torch.backends.cudnn.benchmark = bench
            rate = steps_per_second(trainer_for(channels_last), xa, xb)
            best[(channels_last, bench)] = max(best.get((channels_last, bench), 0.0), rate)
    base = best[settings[0]]
    for (channels_last, bench), rate in best.items():
        print(f"batch {size:3d} channels_last {channels_last!s:5} cudnn.benchmark {bench!s:5}: "
              f"{rate:6.2f} steps/s {rate * size:7.1f} images/s {rate / base:.2f}x", flush=True)

torch.backends.cudnn.benchmark = False
trainer = trainer_for(True)
xa, xb = batch(profile_batch)
for _ in range(8):
    trainer.train_step(xa, xb)
torch.cuda.synchronize()
from torch.profiler import ProfilerActivity, profile  # noqa: E402

with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    t0 = time.perf_counter()
    for _ in range(10):
        trainer.train_step(xa, xb)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
print(f"\nprofile: batch {profile_batch}, 10 steps, {wall:.3f} s wall (profiler on)")
print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=25, max_name_column_width=60))
