"""What tiling costs: tiled against whole-image translation time, beside the extra area tiling computes.

Usage: python bench/tile_cost.py [SIZE] [TILE] [PRESET] [THREADS] [REPEATS]   (defaults 1024 512 image256 1 1)
Prints one JSON line: wall and CPU seconds (with one thread the CPU time is the figure to
compare on a shared machine). ``area_ratio`` is what the tiled pass computes (every tile with its halo,
plus the down-scaled pass that measures instance-norm statistics) over the image's area, so
``time_ratio / area_ratio`` near 1 means tiling costs its extra area and nothing more. Random
weights (speed does not depend on them); the best of REPEATS runs; the load average is
reported because the figures are only comparable on an idle machine.
"""
import json
import os
import sys
import time

import torch

from unit_nodes.core import inference as inf
from unit_nodes.core import tiling
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT

size = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
tile = int(sys.argv[2]) if len(sys.argv) > 2 else 512
name = sys.argv[3] if len(sys.argv) > 3 else "image256"
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = preset(name)
model = inf.optimize_for_inference(UNIT(cfg, discriminators=False))
x = torch.rand(1, cfg.channels_a, size, size) * 2 - 1

computed = []
encode = model.encode


def counting_encode(images, domain):
    computed.append(images.shape[-2] * images.shape[-1])
    return encode(images, domain)


model.encode = counting_encode


def best(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process), each the best of ``repeats``. With one thread
    the CPU time is what the work costs, whatever else the machine runs; wall time is not."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


load_before = os.getloadavg()[0]
whole = best(lambda: inf.translate(model, x, "a", "b", tile=None))
computed.clear()
tiles = []
tiled = best(lambda: inf.translate(model, x, "a", "b", tile=tile, progress=lambda done, total: tiles.append(total)))
area = sum(computed) / repeats / (size * size)
print(json.dumps({
    "preset": name, "size": size, "tile": tile, "tiles": tiles[-1] if tiles else 1, "threads": threads,
    "context": tiling.receptive_radius(cfg), "whole_wall_s": round(whole[0], 2), "tiled_wall_s": round(tiled[0], 2),
    "whole_cpu_s": round(whole[1], 2), "tiled_cpu_s": round(tiled[1], 2),
    "cpu_ratio": round(tiled[1] / whole[1], 3), "wall_ratio": round(tiled[0] / whole[0], 3), "area_ratio": round(area, 3),
    "cpu_over_area": round(tiled[1] / whole[1] / area, 3),
    "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
}))
