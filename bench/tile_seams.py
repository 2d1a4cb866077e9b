"""Tiled vs whole-image translation on a photo that fits whole (image256 preset, random weights).

Usage: python bench/tile_seams.py [PHOTO] [TILE] [THREADS] -> JSON on stdout: max/mean |tiled - whole|
(in [-1, 1] units) for each instance-norm statistics mode, and the seam ratio (mean |horizontal
step| on the columns where tile cores meet, over the median column; ~1 means no seam).
"""
import json
import sys
import time

import numpy as np
import torch
from PIL import Image

from unit_nodes.core import inference as inf
from unit_nodes.core import tiling
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT

photo = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/bsds500/train/100075.jpg"
tile = int(sys.argv[2]) if len(sys.argv) > 2 else 192
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
torch.manual_seed(0)
model = inf.optimize_for_inference(UNIT(preset("image256"), discriminators=False))
img = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
h, w = img.shape[-2:]
t = time.perf_counter()
whole = inf.translate(model, img, "a", tile=None)
report = {"photo": photo, "size": [h, w], "tile": tile, "overlap": tile // 4,
          "context": tiling.receptive_radius(model.config), "whole_s": round(time.perf_counter() - t, 1), "modes": {}}
starts = tiling.tile_starts(-(-w // 4) * 4, tile, tile // 4, align=4)


def seam_ratio(out):
    g = (out[..., 1:] - out[..., :-1]).abs().mean(dim=(0, 1, 2))
    cols = [s - 1 for s in starts[1:] if s - 1 < g.numel()]
    return float(torch.stack([g[c] for c in cols]).mean() / g.median())


for name, kw in [("global stats (whole image)", dict(norm_stats="global")),
                 ("global stats from a 2x down-scaled image", dict(norm_stats="global", stats_size=max(h, w) // 2)),
                 ("per-tile stats", dict(norm_stats="tile"))]:
    t = time.perf_counter()
    out = tiling.translate_tiled(model, img, "a", "b", tile=tile, **kw)
    d = (out - whole).abs()
    report["modes"][name] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
                             "seam_ratio": seam_ratio(out), "seconds": round(time.perf_counter() - t, 1)}
report["whole_seam_ratio_same_columns"] = seam_ratio(whole)
print(json.dumps(report, indent=1))
