"""Does torch.compile pay for an emoji64 training step on this machine? Measured in one run per mode.

Usage: python bench/train_step_compile.py WIDTH MODE [THREADS]
    MODE: eager | default | reduce-overhead | max-autotune   (a torch.compile mode, or none)
e.g.  python bench/train_step_compile.py 32 eager 2 ; python bench/train_step_compile.py 32 default 2

One Trainer (emoji64 at ``base_channels`` WIDTH, batch 4, 64 px, ``--precision auto``) on fixed random
batches. Unless MODE is eager, every module of E, G and D is compiled in place (``nn.Module.compile``:
the state-dict keys and the trainer's code stay as they are), so autograd, the optimisers and the losses
run as in a real run. Prints the time of the first 3 steps (compiling included) and the best of three
10-step means, with the load average (figures compare only on an otherwise idle machine).
"""
import os
import sys
import time

import torch

from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
from unit_nodes.tools.bench import time_calls

width, mode = int(sys.argv[1]), sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
trainer = Trainer(UNIT(preset("emoji64", base_channels=width)), device="cpu", seed=0, precision="auto")
model = trainer.model
if mode != "eager":
    kwargs = {} if mode == "default" else {"mode": mode}
    for side in "ab":
        model.enc[side].private.compile(**kwargs)
        model.gen[side].private.compile(**kwargs)
        model.dis[side].compile(**kwargs)
    for block in [*model.enc["a"].shared, *model.gen["a"].shared]:  # the same blocks as side b's
        block.compile(**kwargs)
gen = torch.Generator().manual_seed(1)
x_a = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
x_b = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
start = time.perf_counter()
for _ in range(3):
    trainer.train_step(x_a, x_b)
print(f"{mode}, base_channels {width}, {threads} threads ({trainer.amp_dtype}): first 3 steps {time.perf_counter() - start:.1f} s")
means = []
for _ in range(3):
    times, _ = time_calls(lambda: trainer.train_step(x_a, x_b), torch.device("cpu"), iters=10, warmup=0)
    means.append(sum(times) / len(times))
print(f"{mode}, base_channels {width}: {min(means):.3f} s/step (10-step means {[round(m, 3) for m in means]}), "
      f"load average {os.getloadavg()[0]:.2f}")
