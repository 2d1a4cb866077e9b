"""Image files <-> tensors in [-1, 1], and labelled picture grids. Writes are atomic."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError

from .weights import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def pil_to_tensor(img: Image.Image, channels: int | None = None) -> torch.Tensor:
    """PIL image -> [C, H, W] float in [-1, 1]; alpha is composited on white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
    if channels is None:
        channels = 1 if img.mode in ("L", "1", "I", "I;16", "F") else 3
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def load_image(path: str | os.PathLike, channels: int | None = None) -> torch.Tensor:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return pil_to_tensor(img, channels)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path} is not a readable image ({exc})") from exc


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """[C, H, W] in [-1, 1] -> PIL (L or RGB)."""
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a [C, H, W] image with 1 or 3 channels, got {tuple(x.shape)}")
    arr = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0], mode="L")
    return Image.fromarray(arr.transpose(1, 2, 0), mode="RGB")


def save_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    img = tensor_to_pil(x)
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    return atomic_write(path, lambda tmp: img.save(tmp, format=fmt))


def list_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files given directly, plus image files found (recursively, sorted) in given folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"input not found: {p}")
    return out


def labelled_grid(rows: Sequence[Sequence[torch.Tensor]], labels: Sequence[str], scale: int = 1) -> Image.Image:
    """A picture grid: each row a list of [C, H, W] images in [-1, 1]; one label per column."""
    tiles = [[tensor_to_pil(t).convert("RGB") for t in row] for row in rows]
    if not tiles or not tiles[0]:
        raise ValueError("labelled_grid needs at least one image")
    w = max(t.width for row in tiles for t in row) * scale
    h = max(t.height for row in tiles for t in row) * scale
    ncol = max(len(r) for r in tiles)
    header = 14
    pad = 2
    grid = Image.new("RGB", (ncol * (w + pad) + pad, header + len(tiles) * (h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for j, label in enumerate(labels[:ncol]):
        draw.text((pad + j * (w + pad) + 2, 1), label, fill=(0, 0, 0))
    for i, row in enumerate(tiles):
        for j, t in enumerate(row):
            t = t.resize((w, h), Image.NEAREST) if scale != 1 else t
            grid.paste(t, (pad + j * (w + pad), header + pad + i * (h + pad)))
    return grid


def save_pil(img: Image.Image, path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
