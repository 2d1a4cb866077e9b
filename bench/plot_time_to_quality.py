"""Plot FID against training minutes from time_to_quality.py's emoji JSON files (PIL only).

    python bench/plot_time_to_quality.py --out docs/ttq_emoji.png \\
        "new recipe=bench/results/ttq_emoji_new.json" "paper recipe=bench/results/ttq_emoji_old.json"

One colour per run; solid Google -> Twitter, dashed Twitter -> Google; the gray line is the
identity baseline (the untranslated test images). The x axis is the training process's CPU
minutes (``--x wall`` for wall-clock minutes, ``--x steps`` for thousands of training steps: the
axis for runs made on machines of different speeds).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75),
           (23, 190, 207)]
DIRECTIONS = (("google->twitter", "Google -> Twitter", None), ("twitter->google", "Twitter -> Google", (6, 4)))


def _font(size: int):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            pass
    return ImageFont.load_default()


def _line(draw, points, colour, width, dash=None):
    if dash is None:
        draw.line(points, fill=colour, width=width)
        return
    on, off = dash
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 or 1
        pos = 0.0
        while pos < length:
            end = min(pos + on, length)
            draw.line([(x0 + (x1 - x0) * pos / length, y0 + (y1 - y0) * pos / length),
                       (x0 + (x1 - x0) * end / length, y0 + (y1 - y0) * end / length)], fill=colour, width=width)
            pos += on + off


X_AXES = {  # --x: (row key, divisor, axis label)
    "cpu": ("train_cpu_seconds", 60, "training CPU minutes (1 thread)"),
    "wall": ("train_seconds", 60, "training wall minutes"),
    "steps": ("step", 1000, "training steps (thousands)"),
}


def plot(runs: list[tuple[str, list[dict]]], out: Path, x_axis: str = "cpu", title: str = "",
         y_min: float = 0.0) -> Path:
    x_key, x_div, x_label = X_AXES[x_axis]
    w, left, right, top, bottom = 900, 80, 230, 50, 60
    h = max(520, top + 30 + 76 * len(runs) + bottom)  # room for every run's two legend entries
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font, small = _font(16), _font(13)
    xs = [r[x_key] / x_div for _, rows in runs for r in rows if r.get(x_key) is not None]
    fids = [r[k]["fid"] for _, rows in runs for r in rows for k, _, _ in DIRECTIONS]
    identity = runs[0][1][0]["google->twitter"]["identity_fid"]
    x_max = max(xs) * 1.05
    y_max = max(fids + [identity]) * 1.08
    lowest = min(fids + [identity])
    if not y_min < lowest:
        raise SystemExit(f"error: --y-min {y_min:g} would hide points (lowest FID drawn {lowest:.1f})")
    px = lambda x: left + (w - left - right) * x / x_max  # noqa: E731
    py = lambda y: h - bottom - (h - top - bottom) * (y - y_min) / (y_max - y_min)  # noqa: E731
    d.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    # at most 13 ticks where a step allows it; past 780 minutes none does, and one tick an hour beats raising
    step = next((s for s in (1, 2, 5, 10, 30) if x_max / s <= 13), 60)
    for t in range(0, int(x_max) + 1, step):
        d.line([(px(t), h - bottom), (px(t), h - bottom + 5)], fill=(0, 0, 0))
        d.text((px(t) - 8, h - bottom + 8), str(t), fill=(0, 0, 0), font=small)
    y_step = 25 if y_max - y_min > 60 else 5
    for v in range(int(math.ceil(y_min / y_step)) * y_step, int(y_max) + 1, y_step):
        d.line([(left - 5, py(v)), (left, py(v))], fill=(0, 0, 0))
        d.line([(left + 1, py(v)), (w - right - 1, py(v))], fill=(235, 235, 235))
        d.text((left - 40, py(v) - 8), str(v), fill=(0, 0, 0), font=small)
    d.line([(left + 1, py(identity)), (w - right - 1, py(identity))], fill=(120, 120, 120), width=2)
    # inside the frame at its left, above the line (snapshots seldom sit there): beside the frame it collided with the legend
    d.text((left + 6, py(identity) - 20), f"identity {identity:.1f}", fill=(90, 90, 90), font=small)
    d.text((left + (w - left - right) / 2 - 110, h - 30), x_label, fill=(0, 0, 0), font=font)
    d.text((10, top - 35), title or "FID of translations (lower is better), emoji test split", fill=(0, 0, 0), font=font)
    legend_y = top + 30
    for i, (label, rows) in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        rows = sorted((r for r in rows if r.get(x_key) is not None), key=lambda r: r[x_key])
        for key, name, dash in DIRECTIONS:
            pts = [(px(r[x_key] / x_div), py(r[key]["fid"])) for r in rows]
            if len(pts) > 1:
                _line(d, pts, colour, 3, dash)
            for x, y in pts:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            _line(d, [(w - right + 8, legend_y + 8), (w - right + 40, legend_y + 8)], colour, 3, dash)
            d.text((w - right + 46, legend_y), f"{label}", fill=(0, 0, 0), font=small)
            d.text((w - right + 46, legend_y + 15), name, fill=(90, 90, 90), font=small)
            legend_y += 38
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="LABEL=FILE.json, one per run")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--x", choices=tuple(X_AXES), default="cpu",
                   help="x axis: CPU minutes, wall minutes, or thousands of steps")
    p.add_argument("--title", default="")
    p.add_argument("--y-min", type=float, default=0.0, help="lower end of the FID axis (default 0)")
    args = p.parse_args(argv)
    runs = []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"error: expected LABEL=FILE.json, got {spec!r}")
        runs.append((label, json.loads(Path(path).read_text())))
    print(plot(runs, args.out, args.x, args.title, args.y_min))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
