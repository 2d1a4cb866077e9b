"""Image files <-> tensors in [-1, 1], and labelled picture grids. Writes are atomic."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .files import regular_file, walk_files
from .weights import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


# Beyond this many pixels an image file is refused before it is decoded: a few hundred bytes
# of PNG can claim gigabytes of pixels (a decompression bomb). It is where Pillow itself stops
# (twice its warning limit): about 13000 x 13000, far beyond what a UNIT model is trained on.
MAX_IMAGE_PIXELS = 2 * 89_478_485


class UnreadableImageError(ValueError):
    """An image file that cannot or must not be decoded; the message names the file and why."""


def check_image_size(img: Image.Image, path) -> None:
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise UnreadableImageError(
            f"{path} claims {w}x{h} = {w * h / 1e6:.0f} Mpx, more than the {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx "
            f"an image may have here (a decompression bomb?); it is not decoded")


@contextlib.contextmanager
def open_image(path: str | os.PathLike):
    """A PIL image of ``path``, header read, nothing decoded yet: a regular file (no FIFO) within
    :data:`MAX_IMAGE_PIXELS`. Errors are :class:`UnreadableImageError` (FileNotFoundError if missing)."""
    path = Path(path)
    try:
        regular_file(path, "image")
    except ValueError as exc:
        raise UnreadableImageError(str(exc)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            img = Image.open(path)
    except Image.DecompressionBombError:
        raise UnreadableImageError(f"{path} claims more than {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx "
                                   f"(a decompression bomb?); it is not decoded") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImageError(f"{path} is not a readable image ({exc})") from None
    with img:
        check_image_size(img, path)
        yield img


def image_to_array(img: Image.Image, channels: int | None = None) -> np.ndarray:
    """Any PIL image -> uint8 ``[H, W, C]``: EXIF orientation applied, 16-bit and float images
    scaled (not clipped) to 8 bit, transparency composited on white; ``channels`` 1 (luma) or 3
    (None: 1 for gray images, else 3). The one decoder for training, inference, CLI and nodes."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if channels is None:
        gray = img.mode in ("L", "1", "LA", "La") or (img.mode == "P" and img.palette is not None
                                                       and img.palette.mode == "L")
        channels = 1 if gray else 3
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA")).astype(np.float32)
        alpha = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        img = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img)
    return arr[..., None] if arr.ndim == 2 else arr


def read_image(path: str | os.PathLike, channels: int | None = None) -> np.ndarray:
    """The image file ``path`` as uint8 ``[H, W, C]`` (see :func:`image_to_array`)."""
    with open_image(path) as img:
        try:
            img.load()
            return image_to_array(img, channels)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise UnreadableImageError(f"{path} is not a readable image ({exc})") from None


def array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, C]`` -> float ``[C, H, W]`` in [-1, 1]."""
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1), dtype=np.float32)).div_(127.5).sub_(1.0)


def pil_to_tensor(img: Image.Image, channels: int | None = None) -> torch.Tensor:
    """PIL image -> [C, H, W] float in [-1, 1] (see :func:`image_to_array`)."""
    return array_to_tensor(image_to_array(img, channels))


def load_image(path: str | os.PathLike, channels: int | None = None) -> torch.Tensor:
    """An image file as [C, H, W] float in [-1, 1] (see :func:`image_to_array`)."""
    return array_to_tensor(read_image(path, channels))


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
    return [path for path, _ in image_inputs(paths)]


def image_inputs(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(file, name relative to the folder it was found in) for every input: files given directly
    (checked to be regular files: a FIFO would block), image files found in folders
    (recursively, sorted, symlink loops entered once)."""
    out: list[tuple[Path, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in walk_files(p):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    out.append((f, f.relative_to(p)))
        else:
            try:
                regular_file(p, "input")
            except FileNotFoundError:
                raise FileNotFoundError(f"input not found: {p}") from None
            out.append((p, Path(p.name)))
    return out


def output_names(relative: Sequence[Path], suffix: str) -> list[str]:
    """One distinct output file name per input (inputs named relative to the folder they were
    found in): ``<stem><suffix>.png``; inputs whose names would collide (``a/x.png`` and
    ``b/x.jpg``; case-insensitively, as on macOS and Windows) get their extension and then their
    subfolder into the name (``x_jpg<suffix>.png``, ``b_x_jpg<suffix>.png``), and any that still
    collide a counter."""
    def collide(names: list[str]) -> list[bool]:
        counts: dict[str, int] = {}
        for n in names:
            counts[n.lower()] = counts.get(n.lower(), 0) + 1
        return [counts[n.lower()] > 1 for n in names]

    def with_ext(rel: Path) -> str:
        return f"{rel.stem}_{rel.suffix.lstrip('.')}"

    def with_folder(rel: Path) -> str:
        return "_".join([*rel.parent.parts, with_ext(rel)])

    names = [f"{rel.stem}{suffix}.png" for rel in relative]
    for longer in (with_ext, with_folder):
        clash = collide(names)
        names = [f"{longer(rel)}{suffix}.png" if c else n for rel, n, c in zip(relative, names, clash)]
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, k = name, 2
        while candidate.lower() in taken:
            candidate = f"{name[:-len(suffix) - 4]}_{k}{suffix}.png"
            k += 1
        taken.add(candidate.lower())
        out.append(candidate)
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
