"""Run under torchrun: a few DDP training steps on CPU (gloo); each rank dumps its weights."""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from tiny import TensorImages, shapes_and_inversions, tiny_config  # noqa: E402

from unit_nodes.core.networks import UNIT  # noqa: E402
from unit_nodes.core.rollback import SpikeGuard  # noqa: E402
from unit_nodes.core.trainer import Trainer  # noqa: E402
from unit_nodes.core.weights import write_safetensors  # noqa: E402

torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(100 + rank)  # deliberately different initial weights: DDP must sync them
a, b = shapes_and_inversions(32, seed=0)
spike = sys.argv[2:] == ["spike"]
if spike:
    # config.spike_rollback under DDP: only rank 0's generators blow up (their colours swapped after step 9),
    # so only rank 0 sees the spike; both ranks must roll back together, to the same copy
    SpikeGuard.HORIZON, SpikeGuard.WARMUP, SpikeGuard.INTERVAL, SpikeGuard.STREAK = 2.0, 4, 2, 2
trainer = Trainer(UNIT(tiny_config(lr=4e-3, spike_rollback=2.0) if spike else tiny_config()), device="cpu", seed=5)
assert trainer.distributed and trainer.world_size == 2


def blow_up(report):
    if spike and rank == 0 and report.step == 9:
        with torch.no_grad():
            for d in ("a", "b"):
                last = [m for m in trainer.model.gen[d].private.modules() if isinstance(m, torch.nn.Conv2d)][-1]
                last.weight.neg_()
                last.bias.neg_()


trainer.fit(TensorImages(a), TensorImages(b), steps=14 if spike else 3, batch_size=4, callback=blow_up)
if spike:
    (Path(sys.argv[1]) / f"rollbacks{rank}.txt").write_text(repr(trainer.spike_guard.rollbacks))
out = Path(sys.argv[1])
state = {k: v for k, v in trainer.model.state_dict().items()}
write_safetensors(out / f"rank{rank}.safetensors", {k: v.clone() for k, v in state.items()}, {"step": str(trainer.step)})
# each rank saw different images (its own sampler stream)
first = trainer.samplers["a"].order[:4].tolist()
(out / f"order{rank}.txt").write_text(" ".join(map(str, first)))
dist.destroy_process_group()
