"""The Google and Twitter emoji sets: the fixed train/test split by file name, RGBA composited
on white, the aligned pairs for paired evaluation, and the Dataset of one style."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from .arrays import ArrayImageDataset, resize_batch
from .roots import SPLITS, check_split, missing_data, resolve_root

EMOJI_STYLES = ("google", "twitter")
DEFAULT_EMOJI_SIZE = 64
EMOJI_TEST_EVERY = 8


def _emoji_folder(style: str, root: Path) -> Path:
    if style not in EMOJI_STYLES:
        raise ValueError(f"emoji style must be one of {list(EMOJI_STYLES)}, got {style!r}")
    folder = root / "emoji" / style / "64"
    if not folder.is_dir() or not any(folder.glob("*.png")):
        raise missing_data("emoji", root, [folder / "*.png"])
    return folder


def emoji_names(style: str = "google", split: str = "all", root=None) -> list[str]:
    """Sorted emoji file names of one style. The fixed split: 0-based positions in the sorted
    list that are divisible by 8 are 'test', the rest 'train'; 'all' is everything."""
    check_split(split, SPLITS + ("all",))
    names = sorted(p.name for p in _emoji_folder(style, resolve_root(root)).glob("*.png"))
    if split == "all":
        return names
    want_test = split == "test"
    return [n for i, n in enumerate(names) if (i % EMOJI_TEST_EVERY == 0) == want_test]


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """``[..., 4]`` uint8 RGBA -> ``[..., 3]`` float32 RGB in [0, 255] over a white background."""
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return rgb * alpha + 255.0 * (1.0 - alpha)


@functools.lru_cache(maxsize=2)
def _emoji_rgba_cached(folder_str: str, names: tuple[str, ...]) -> np.ndarray:
    folder = Path(folder_str)
    out = np.empty((len(names), 64, 64, 4), dtype=np.uint8)
    for i, name in enumerate(names):
        with Image.open(folder / name) as img:
            img = img.convert("RGBA")
            if img.size != (64, 64):
                img = img.resize((64, 64), Image.Resampling.BICUBIC)
            out[i] = np.asarray(img)
    out.setflags(write=False)
    return out


def load_emoji_arrays(style: str = "google", split: str = "train", size: int = DEFAULT_EMOJI_SIZE,
                      root=None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Emoji of one style as ``(images float [N, 3, size, size] in [-1, 1], labels, names)``.

    RGBA is composited on white. ``labels[i]`` is the position of ``names[i]`` in the sorted
    list of all names of that style, so the same emoji has the same label in both styles.
    """
    root = resolve_root(root)
    all_names = emoji_names(style, "all", root)
    names = emoji_names(style, split, root)
    index = {n: i for i, n in enumerate(all_names)}
    rgba = _emoji_rgba_cached(str(_emoji_folder(style, root).resolve()), tuple(all_names))
    rows = np.asarray([index[n] for n in names], dtype=np.int64)
    rgb = composite_on_white(rgba[rows])
    images = torch.from_numpy(rgb).permute(0, 3, 1, 2).div_(127.5).sub_(1.0)
    images = resize_batch(images.contiguous(), size).clamp_(-1.0, 1.0)
    return images, torch.from_numpy(rows), names


def emoji_pairs(split: str = "test", size: int = DEFAULT_EMOJI_SIZE,
                root=None) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Aligned emoji for paired evaluation: ``(names, google [N,3,S,S], twitter [N,3,S,S])``,
    only names present in both styles, row i of both tensors the same emoji."""
    g_images, _, g_names = load_emoji_arrays("google", split, size, root)
    t_images, _, t_names = load_emoji_arrays("twitter", split, size, root)
    t_index = {n: i for i, n in enumerate(t_names)}
    g_rows = [i for i, n in enumerate(g_names) if n in t_index]
    names = [g_names[i] for i in g_rows]
    t_rows = [t_index[n] for n in names]
    return names, g_images[g_rows], t_images[t_rows]


class EmojiDataset(ArrayImageDataset):
    """One emoji style (``'google'`` or ``'twitter'``), RGB on white, labels = file index in
    the sorted list of names; ``self.names[i]`` is item i's file name."""

    def __init__(self, style: str, split: str = "train", size: int = DEFAULT_EMOJI_SIZE, root=None,
                 channels: Optional[int] = None):
        images, labels, names = load_emoji_arrays(style, split, size, root)
        super().__init__(images, labels, channels, name=f"emoji-{style}")
        self.names = names
        self.split = split
