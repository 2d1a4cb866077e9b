"""Run under torchrun: a few DDP training steps on CPU (gloo); each rank dumps its weights."""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from tiny import TensorImages, shapes_and_inversions, tiny_config  # noqa: E402

from unit_nodes.core.networks import UNIT  # noqa: E402
from unit_nodes.core.trainer import Trainer  # noqa: E402
from unit_nodes.core.weights import write_safetensors  # noqa: E402

torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(100 + rank)  # deliberately different initial weights: DDP must sync them
a, b = shapes_and_inversions(32, seed=0)
trainer = Trainer(UNIT(tiny_config()), device="cpu", seed=5)
assert trainer.distributed and trainer.world_size == 2
trainer.fit(TensorImages(a), TensorImages(b), steps=3, batch_size=4)
out = Path(sys.argv[1])
state = {k: v for k, v in trainer.model.state_dict().items()}
write_safetensors(out / f"rank{rank}.safetensors", {k: v.clone() for k, v in state.items()}, {"step": str(trainer.step)})
# each rank saw different images (its own sampler stream)
first = trainer.samplers["a"].order[:4].tolist()
(out / f"order{rank}.txt").write_text(" ".join(map(str, first)))
dist.destroy_process_group()
