"""What a wider emoji64 translator costs per training step (batch 4, 64 px), measured in one run.

Usage: python bench/train_step_widths.py [WIDTHS] [THREADS] [PRECISION]   (defaults 24,32,40,48,64 2 auto)
For each translator width (``base_channels``) one Trainer does 3 warm-up steps and 8 timed steps on
fixed random batches; the widths are interleaved twice and the faster of the two is kept, so drift
in the machine's speed hits every width alike. Prints s/step and the ratio to the first width, and
the load average (figures compare only on an otherwise idle machine). Random weights: speed does
not depend on them.
"""
import os
import sys

import torch

from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
from unit_nodes.tools.bench import time_calls

widths = [int(w) for w in (sys.argv[1] if len(sys.argv) > 1 else "24,32,40,48,64").split(",")]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
precision = sys.argv[3] if len(sys.argv) > 3 else "auto"
torch.set_num_threads(threads)
best: dict[int, float] = {}
for _ in range(2):
    for width in widths:
        torch.manual_seed(0)
        trainer = Trainer(UNIT(preset("emoji64", base_channels=width)), device="cpu", seed=0, precision=precision)
        gen = torch.Generator().manual_seed(1)
        xa = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
        xb = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
        times, _ = time_calls(lambda: trainer.train_step(xa, xb), torch.device("cpu"), iters=8, warmup=3)
        best[width] = min(best.get(width, float("inf")), sum(times) / len(times))
print(f"threads {threads}, precision {precision} ({trainer.amp_dtype}), load average {os.getloadavg()[0]:.2f}")
for width in widths:
    print(f"base_channels {width:3d}: {best[width]:.3f} s/step, {best[width] / best[widths[0]]:.2f}x")
