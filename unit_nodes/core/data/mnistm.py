"""MNIST-M (Ganin & Lempitsky 2015): MNIST digits blended with crops of the BSDS500 photos,
built here on first use and cached under a name that fixes every input of the build."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .arrays import resize_batch
from .digit_files import DEFAULT_DIGIT_SIZE, load_mnist_arrays
from .roots import check_split, missing_data, resolve_root

MNISTM_FORMAT_VERSION = 1


def default_mnistm_cache_dir() -> Path:
    return Path.home() / ".cache" / "unit_nodes" / "mnistm"


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    from ..weights import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, np.savez would append ".npz"
            np.savez(f, **arrays)

    atomic_write(path, write)


def list_bsds_images(root=None) -> list[Path]:
    """The BSDS500 training photos, sorted by file name."""
    root = resolve_root(root)
    folder = root / "bsds500" / "train"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg")) if folder.is_dir() else []
    if not files:
        raise missing_data("bsds500", root, [folder / "*.jpg"])
    return files


def build_mnistm(digits: np.ndarray, photos: Sequence[np.ndarray], size: int, seed: int,
                 count: Optional[int] = None) -> np.ndarray:
    """Blend MNIST digits with random photo crops as in Ganin & Lempitsky (2015).

    ``digits``: uint8 ``[N, h, w]``; ``photos``: uint8 ``[H, W, 3]`` arrays. Each digit is
    resized to ``size`` (rounded back to uint8) and put on 3 channels; the output is
    ``|crop - digit|`` per channel, computed without uint8 wrap-around, for a uniformly
    random ``size x size`` crop of a uniformly random photo. Returns uint8
    ``[count, size, size, 3]`` (``count`` defaults to N). The random draws are made for
    all N digits, so the first ``count`` images equal the start of the full set.
    """
    n = len(digits)
    count = n if count is None else min(int(count), n)
    for i, photo in enumerate(photos):
        if photo.ndim != 3 or photo.shape[2] != 3 or min(photo.shape[:2]) < size:
            raise ValueError(f"photo {i} has shape {photo.shape}; need RGB of at least {size}x{size}")
    if not photos:
        raise ValueError("build_mnistm needs at least one photo")
    rng = np.random.default_rng(np.random.SeedSequence([seed, size]))
    which = rng.integers(0, len(photos), size=n)[:count]
    uy = rng.random(n)[:count]
    ux = rng.random(n)[:count]

    resized = resize_batch(torch.tensor(digits[:count], dtype=torch.float32).unsqueeze(1), size)
    digits_s = resized.round_().clamp_(0, 255).to(torch.uint8).squeeze(1).numpy()

    out = np.empty((count, size, size, 3), dtype=np.uint8)
    offsets = np.arange(size)
    for k, photo in enumerate(photos):
        idx = np.nonzero(which == k)[0]
        if idx.size == 0:
            continue
        h, w = photo.shape[:2]
        y0 = np.minimum((uy[idx] * (h - size + 1)).astype(np.int64), h - size)
        x0 = np.minimum((ux[idx] * (w - size + 1)).astype(np.int64), w - size)
        rows = (y0[:, None] + offsets[None, :])[:, :, None]
        cols = (x0[:, None] + offsets[None, :])[:, None, :]
        crops = photo[rows, cols].astype(np.int16)  # [n_k, S, S, 3]
        out[idx] = np.abs(crops - digits_s[idx][..., None].astype(np.int16)).astype(np.uint8)
    return out


def _mnistm_key(split: str, size: int, seed: int, limit: Optional[int], photo_names: Sequence[str], n: int) -> str:
    payload = json.dumps(
        {"version": MNISTM_FORMAT_VERSION, "split": split, "size": size, "seed": seed,
         "limit": limit, "n": n, "bsds": list(photo_names)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def mnistm_cache_path(split: str = "train", size: int = DEFAULT_DIGIT_SIZE, seed: int = 0, limit: Optional[int] = None,
                      root=None, cache_dir=None) -> Path:
    """Where ``load_mnistm_arrays`` keeps (or would keep) this variant."""
    check_split(split)
    root = resolve_root(root)
    names = [p.name for p in list_bsds_images(root)]
    n_full = len(load_mnist_arrays(split, root)[0])
    n = n_full if limit is None else min(limit, n_full)
    key = _mnistm_key(split, size, seed, limit, names, n)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_mnistm_cache_dir()
    return cache / f"mnistm-{split}-{size}px-seed{seed}-n{n}-{key}.npz"


def load_mnistm_arrays(split: str = "train", size: int = DEFAULT_DIGIT_SIZE, root=None, seed: int = 0,
                       limit: Optional[int] = None, cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-M as ``(images uint8 [N, size, size, 3], labels int64 [N])``.

    Built from MNIST and BSDS500 on first use, then read from the cache. ``limit`` keeps
    the first ``limit`` digits (the same images as the start of the full set).
    """
    check_split(split)
    root = resolve_root(root)
    path = mnistm_cache_path(split, size, seed, limit, root, cache_dir)
    x_mnist, y_mnist = load_mnist_arrays(split, root)
    n = len(x_mnist) if limit is None else min(limit, len(x_mnist))
    if path.is_file():
        try:
            with np.load(path) as d:
                images, labels = d["images"], d["labels"]
            if images.shape == (n, size, size, 3) and images.dtype == np.uint8 and labels.shape == (n,):
                return images, labels.astype(np.int64)
            warnings.warn(f"MNIST-M cache {path} has unexpected shapes {images.shape}/{labels.shape}; rebuilding")
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"MNIST-M cache {path} is unreadable ({err}); rebuilding")
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in list_bsds_images(root)]
    split_seed = seed * 2 + (0 if split == "train" else 1)  # train and test draw different crops
    images = build_mnistm(x_mnist, photos, size, split_seed, count=n)
    labels = y_mnist[:n].astype(np.int64)
    _atomic_save_npz(path, images=images, labels=labels)
    return images, labels
