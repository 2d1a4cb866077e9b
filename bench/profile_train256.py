"""Where one image256 training iteration (256 px, batch 1, 1 thread, CPU) spends its time:

    python bench/profile_train256.py > bench/results/profile_train256.txt
"""
import sys, torch, time
torch.set_num_threads(1)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
torch.manual_seed(0)
t = Trainer(UNIT(preset("image256")), device="cpu", seed=0)
x_a, x_b = torch.rand(1,3,256,256)*2-1, torch.rand(1,3,256,256)*2-1
t.train_step(x_a, x_b)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU]) as p:
    t0=time.time(); t.train_step(x_a, x_b); print("step", time.time()-t0)
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
