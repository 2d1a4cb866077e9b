"""Where one image256 training iteration (256 px, batch 1, 1 thread, CPU) spends its time:

    python bench/profile_train256.py > bench/results/profile_train256.txt
"""
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from unit_nodes.core.config import preset  # noqa: E402
from unit_nodes.core.networks import UNIT  # noqa: E402
from unit_nodes.core.trainer import Trainer  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
trainer = Trainer(UNIT(preset("image256")), device="cpu", seed=0)
x_a, x_b = torch.rand(1, 3, 256, 256) * 2 - 1, torch.rand(1, 3, 256, 256) * 2 - 1
trainer.train_step(x_a, x_b)  # warm-up: allocations and oneDNN primitive creation
with profile(activities=[ProfilerActivity.CPU]) as prof:
    t0 = time.time()
    trainer.train_step(x_a, x_b)
    print("step", time.time() - t0)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
