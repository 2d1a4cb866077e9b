"""Peak RSS of a tiled 4096x4096 translation with the image256 preset (random weights).

Usage: python bench/tile_memory.py [SIZE] [TILE|auto] [THREADS] [DEVICE]  -> one JSON line on stdout.
Peak memory: the process's RSS high-water mark on CPU; max allocated on CUDA (the image and
the result stay in CPU memory, tiles go to the GPU).
"""
import json
import sys
import time

import torch

from unit_nodes.core import inference as inf
from unit_nodes.core import tiling
from unit_nodes.tools.bench import peak_rss_bytes, current_rss_bytes
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT

size = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
tile = sys.argv[2] if len(sys.argv) > 2 else "auto"
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
device = torch.device(sys.argv[4] if len(sys.argv) > 4 else "cpu")
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = preset("image256")
model = UNIT(cfg, discriminators=False).eval().to(device)
x = torch.rand(1, 3, size, size) * 2 - 1
side = inf.resolve_tile(model, "auto" if tile == "auto" else int(tile), size, size, 1)
base = current_rss_bytes()
t0 = time.perf_counter()


def progress(done, total):
    print(f"tile {done}/{total} {time.perf_counter() - t0:.0f}s rss {current_rss_bytes() / 2**20:.0f} MiB", file=sys.stderr, flush=True)


if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
out = tiling.translate_tiled(model, x, "a", "b", tile=side, progress=progress)
if device.type == "cuda":
    torch.cuda.synchronize(device)
wall = time.perf_counter() - t0
print(json.dumps({
    "size": size, "device": str(device), "tile": side,
    "cuda_max_allocated_mib": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None, "overlap": min(side // 4, tiling.MAX_DEFAULT_OVERLAP), "context": tiling.receptive_radius(cfg), "threads": threads,
    "rss_before_mib": round(base / 2**20), "peak_rss_mib": round(peak_rss_bytes() / 2**20),
    "estimated_whole_image_mib": round(tiling.estimate_translation_bytes(cfg, size, size) / 2**20),
    "estimated_tile_mib": round(tiling.estimate_translation_bytes(cfg, side + 2 * tiling.receptive_radius(cfg), side + 2 * tiling.receptive_radius(cfg)) / 2**20),
    "seconds": round(wall, 1), "finite": bool(torch.isfinite(out).all()), "out_shape": list(out.shape),
}))
