"""``python -m unit_nodes demo``: translate the bundled sample images with every bundled pair.

Each pair in ``weights/<pair>/`` ships a few test images in ``samples/a/`` and ``samples/b/``
(its two domains). For every pair the demo writes one labelled grid ``<out>/<pair>.png``
with a row per sample: input a | a->b | cycle a->b->a | input b | b->a | cycle b->a->b.
Offline, on the CPU by default, in seconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

SAMPLES_DIR = "samples"


def sample_files(pair_dir: Path, side: str) -> list[Path]:
    from .core.images import IMAGE_SUFFIXES

    folder = pair_dir / SAMPLES_DIR / side
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def pair_grid(pair_dir: Path, device="cpu", scale: int | None = None, max_samples: int = 8):
    """The labelled grid image for the pair in ``pair_dir`` (a PIL image)."""
    import torch

    from .core.images import labelled_grid, load_image
    from .core.inference import cycle_reconstruct
    from .core.weights import load_model

    model = load_model(pair_dir, device=device, discriminators=False)
    cfg = model.config
    files = {side: sample_files(pair_dir, side)[:max_samples] for side in ("a", "b")}
    if not files["a"] or not files["b"]:
        raise FileNotFoundError(f"{pair_dir} has no sample images in {SAMPLES_DIR}/a and {SAMPLES_DIR}/b")
    size = cfg.image_size
    columns = {}
    for side in ("a", "b"):
        x = torch.stack([_fit(load_image(f, cfg.channels(side)), size) for f in files[side]])
        y, back = cycle_reconstruct(model, x, side, tile=None)
        columns[side] = (x, y, back)
    rows = []
    for i in range(max(len(files["a"]), len(files["b"]))):
        row = []
        for side in ("a", "b"):
            x, y, back = columns[side]
            j = min(i, len(x) - 1)  # pad a shorter side by repeating its last sample
            row += [x[j].cpu(), y[j].cpu(), back[j].cpu()]
        rows.append(row)
    name_a, name_b = cfg.domain_a, cfg.domain_b
    shared = os.path.commonprefix([name_a, name_b])
    if shared.endswith("-"):  # 'emoji-google' / 'emoji-twitter': keep the column headers short
        name_a, name_b = name_a[len(shared):], name_b[len(shared):]
    labels = [name_a, f">{name_b}", "cycle", name_b, f">{name_a}", "cycle"]
    return labelled_grid(rows, labels, scale=scale or max(1, round(128 / size)))


def _fit(x, size: int):
    import torch.nn.functional as F

    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def add_cli(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="translate the bundled sample images with every bundled pair (offline, seconds on a CPU)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--out", default="demo_out", help="output folder (default ./demo_out)")
    p.add_argument("--pair", action="append", default=None, help="only this bundled pair (repeatable)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N or mps")
    p.add_argument("--scale", type=int, default=None, help="pixel magnification of the grid (default: to ~96 px tiles)")
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    from .core.device import resolve_device
    from .core.images import save_pil
    from .core.sources import bundled_pairs

    pairs = bundled_pairs()
    if not pairs:
        raise FileNotFoundError("no bundled pairs installed (weights/<pair>/model.safetensors); nothing to demonstrate")
    chosen = args.pair or sorted(pairs)
    unknown = sorted(set(chosen) - set(pairs))
    if unknown:
        raise ValueError(f"unknown pair(s) {unknown}; bundled pairs: {sorted(pairs)}")
    device = resolve_device(args.device)
    out = Path(args.out)
    for name in chosen:
        t0 = time.time()
        grid = pair_grid(pairs[name], device=device, scale=args.scale)
        path = save_pil(grid, out / f"{name}.png")
        print(f"{path}  ({time.time() - t0:.1f} s)", flush=True)
    print(f"columns: input a | a->b | cycle | input b | b->a | cycle; {len(chosen)} pair(s) in {out}", file=sys.stderr)
    return 0
