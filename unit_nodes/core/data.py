"""Data sets for training and evaluating UNIT: digit sets, emoji, unpaired image folders.

Every image this module hands out is a float tensor ``[C, S, S]`` (or a batch
``[N, C, S, S]``) in ``[-1, 1]``. Every Dataset's item is ``(image, label)``: the
class for digits, the file's index for emoji and folders, so one training loop
can take any of them.

Nothing here downloads. Files are read from a data root (``root=`` argument, else
``default_data_root()``) laid out as::

    mnist/mnist.npz                      or  MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    usps/zip.train.gz, usps/zip.test.gz  or  usps/usps.bz2, usps/usps.t.bz2 (or at the root)
    bsds500/train/*.jpg                  (for MNIST-M, built here and cached)
    emoji/google/64/*.png, emoji/twitter/64/*.png
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from .files import walk_files
from .images import UnreadableImageError, open_image, read_image
from .tensors import match_channels

SPLITS = ("train", "test")
DIGIT_DOMAINS = ("mnist", "usps", "mnistm")
EMOJI_STYLES = ("google", "twitter")
DOMAIN_NAMES = ("mnist", "usps", "mnistm", "emoji-google", "emoji-twitter")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

DEFAULT_DIGIT_SIZE = 32
DEFAULT_EMOJI_SIZE = 64
DEFAULT_FOLDER_SIZE = 256
EMOJI_TEST_EVERY = 8
MNISTM_FORMAT_VERSION = 1

_EXPECTED_LAYOUT = {
    "mnist": (
        "mnist/mnist.npz (arrays x_train, y_train, x_test, y_test; uint8 28x28), or torchvision's "
        "layout MNIST/raw/{train,t10k}-images-idx3-ubyte[.gz] and "
        "MNIST/raw/{train,t10k}-labels-idx1-ubyte[.gz]. Public source: "
        "http://yann.lecun.com/exdb/mnist/ (torchvision.datasets.MNIST(root, download=True) "
        "writes the second layout)"
    ),
    "usps": (
        "usps/zip.train.gz and usps/zip.test.gz (text rows: label, then 256 values in [-1, 1]), "
        "or torchvision's usps.bz2 / usps.t.bz2 (libsvm rows) in usps/ or in the root. Public "
        "source: the zipcode data of 'The Elements of Statistical Learning' "
        "(https://hastie.su.domains/ElemStatLearn/data.html), or "
        "torchvision.datasets.USPS(root, download=True)"
    ),
    "bsds500": (
        "bsds500/train/*.jpg (the 200 training photos of BSDS500, images/train). Public source: "
        "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html"
    ),
    "emoji": (
        "emoji/google/64/*.png and emoji/twitter/64/*.png (RGBA 64x64, one file per code point, "
        "same file name = same emoji). Public source: the npm packages "
        "emoji-datasource-google and emoji-datasource-twitter (img/<style>/64/)"
    ),
}


# ----------------------------------------------------------------------------- roots


def default_data_root() -> Path:
    """``$UNIT_DATA_ROOT`` if set, else ``<repo>/../shared/data`` if it exists, else
    ``~/.cache/unit_nodes/data``."""
    env = os.environ.get("UNIT_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    shared = repo.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return Path.home() / ".cache" / "unit_nodes" / "data"


def default_mnistm_cache_dir() -> Path:
    return Path.home() / ".cache" / "unit_nodes" / "mnistm"


def _root(root) -> Path:
    return default_data_root() if root is None else Path(root).expanduser()


def _missing(what: str, root: Path, tried: Sequence[Path]) -> FileNotFoundError:
    tried_text = ", ".join(str(p) for p in tried)
    return FileNotFoundError(
        f"{what} data not found under data root {root} (looked for: {tried_text}). "
        f"Expected layout: {_EXPECTED_LAYOUT[what]}. Pass root= or set UNIT_DATA_ROOT."
    )


def _check_split(split: str, allowed: Sequence[str] = SPLITS) -> None:
    if split not in allowed:
        raise ValueError(f"split must be one of {list(allowed)}, got {split!r}")


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    from .weights import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, np.savez would append ".npz"
            np.savez(f, **arrays)

    atomic_write(path, write)


# ----------------------------------------------------------------------------- MNIST

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an idx file (the MNIST container format), optionally gzip-compressed."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4]!r})")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 1
    if len(data) - offset < count * dtype.itemsize:
        raise ValueError(f"{path} is truncated: header says {dims}, file has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def _find(base: Path, stem: str) -> Optional[Path]:
    for name in (stem, stem + ".gz"):
        if (base / name).is_file():
            return base / name
    return None


@functools.lru_cache(maxsize=4)
def _mnist_cached(root_str: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = Path(root_str)
    npz = root / "mnist" / "mnist.npz"
    if npz.is_file():
        try:
            with np.load(npz) as d:
                x, y = np.ascontiguousarray(d[f"x_{split}"], dtype=np.uint8), d[f"y_{split}"].astype(np.int64)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"{npz} is truncated or damaged ({type(exc).__name__}: {exc}); replace it. "
                             f"Expected: {_EXPECTED_LAYOUT['mnist']}") from None
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{npz} holds x_{split} {x.shape} and y_{split} {y.shape}; expected [N, 28, 28] and [N]")
        return x, y
    prefix = "train" if split == "train" else "t10k"
    raw = root / "MNIST" / "raw"
    images = _find(raw, f"{prefix}-images-idx3-ubyte")
    labels = _find(raw, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise _missing("mnist", root, [npz, raw / f"{prefix}-images-idx3-ubyte[.gz]",
                                       raw / f"{prefix}-labels-idx1-ubyte[.gz]"])
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"MNIST idx files disagree: images {x.shape} from {images}, labels {y.shape} from {labels}")
    return np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int64)


def load_mnist_arrays(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as ``(images uint8 [N, 28, 28], labels int64 [N])`` (read-only: shared cache)."""
    _check_split(split)
    return _read_only(*_mnist_cached(str(_root(root).resolve()), split))


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


# ----------------------------------------------------------------------------- USPS


def _parse_usps_text(lines, path: Path, libsvm: bool) -> tuple[np.ndarray, np.ndarray]:
    labels, rows = [], []
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if libsvm:
            labels.append(int(float(parts[0])) - 1)  # torchvision's files number the classes 1..10
            row = np.full(256, -1.0, dtype=np.float32)  # libsvm may omit entries; they're background
            for item in parts[1:]:
                key, value = item.split(":")
                row[int(key) - 1] = float(value)
            rows.append(row)
        else:
            labels.append(int(float(parts[0])))
            rows.append(np.asarray(parts[1:], dtype=np.float32))
    if not rows or any(len(r) != 256 for r in rows):
        raise ValueError(f"{path}: expected rows of a label and 256 pixel values")
    x = np.stack(rows).reshape(-1, 16, 16)
    return np.clip(x, -1.0, 1.0), np.asarray(labels, dtype=np.int64)


@functools.lru_cache(maxsize=4)
def _usps_cached(root_str: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = Path(root_str)
    text = root / "usps" / f"zip.{split}.gz"
    try:
        if text.is_file():
            with gzip.open(text, "rt") as f:
                return _parse_usps_text(f, text, libsvm=False)
        bz_name = "usps.bz2" if split == "train" else "usps.t.bz2"
        for candidate in (root / "usps" / bz_name, root / bz_name):
            if candidate.is_file():
                with bz2.open(candidate, "rt") as f:
                    return _parse_usps_text(f, candidate, libsvm=True)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"USPS data under {root} is truncated or damaged ({type(exc).__name__}: {exc}); "
                         f"replace it. Expected: {_EXPECTED_LAYOUT['usps']}") from None
    raise _missing("usps", root, [text, root / "usps" / bz_name, root / bz_name])


def load_usps_arrays(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """USPS as ``(images float32 [N, 16, 16] in [-1, 1], labels int64 [N])`` (read-only: shared cache)."""
    _check_split(split)
    return _read_only(*_usps_cached(str(_root(root).resolve()), split))


# ----------------------------------------------------------------------------- MNIST-M


def list_bsds_images(root=None) -> list[Path]:
    """The BSDS500 training photos, sorted by file name."""
    root = _root(root)
    folder = root / "bsds500" / "train"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg")) if folder.is_dir() else []
    if not files:
        raise _missing("bsds500", root, [folder / "*.jpg"])
    return files


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of a float batch ``[N, C, H, W]``."""
    if images.shape[-2:] == (size, size):
        return images
    out = []
    for chunk in images.split(8192):  # bounds peak memory for 60k-image sets
        out.append(F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True))
    return torch.cat(out)


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
    _check_split(split)
    root = _root(root)
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
    _check_split(split)
    root = _root(root)
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


# ----------------------------------------------------------------------------- emoji


def _emoji_folder(style: str, root: Path) -> Path:
    if style not in EMOJI_STYLES:
        raise ValueError(f"emoji style must be one of {list(EMOJI_STYLES)}, got {style!r}")
    folder = root / "emoji" / style / "64"
    if not folder.is_dir() or not any(folder.glob("*.png")):
        raise _missing("emoji", root, [folder / "*.png"])
    return folder


def emoji_names(style: str = "google", split: str = "all", root=None) -> list[str]:
    """Sorted emoji file names of one style. The fixed split: 0-based positions in the sorted
    list that are divisible by 8 are 'test', the rest 'train'; 'all' is everything."""
    _check_split(split, SPLITS + ("all",))
    names = sorted(p.name for p in _emoji_folder(style, _root(root)).glob("*.png"))
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
    root = _root(root)
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


# ----------------------------------------------------------------------------- datasets


class ArrayImageDataset(Dataset):
    """Images held in memory. Items are ``(image float [C, S, S] in [-1, 1], label int)``.

    ``data`` is either uint8 ``[N, C, S, S]`` in [0, 255] (converted per item, to keep 60k
    colour images small) or float in [-1, 1]. ``channels`` forces 1 (luma) or 3 (gray
    broadcast) channels.
    """

    def __init__(self, data: torch.Tensor, labels: torch.Tensor, channels: Optional[int] = None, name: str = ""):
        if data.ndim != 4 or len(data) != len(labels):
            raise ValueError(f"need data [N, C, S, S] and N labels, got {tuple(data.shape)} and {len(labels)}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
        self._data = data
        self.labels = labels.long()
        self.channels = channels or data.shape[1]
        self.name = name

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        return self._data.shape[-1]

    def _to_float(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(127.5).sub_(1.0)
        return match_channels(x, self.channels)

    def __getitem__(self, index: int):
        return self._to_float(self._data[index : index + 1])[0].clone(), int(self.labels[index])

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, C, S, S]`` and labels for a list/tensor of indices (no per-item overhead)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return self._to_float(self._data[indices]).contiguous(), self.labels[indices]

    @property
    def images(self) -> torch.Tensor:
        """All images as one float tensor ``[N, C, S, S]`` in [-1, 1] (materialised)."""
        return self._to_float(self._data)


class DigitDataset(ArrayImageDataset):
    """MNIST, USPS or MNIST-M resized to ``size`` (C=1 for mnist/usps, 3 for mnistm unless
    ``channels`` is given). Labels are the digit classes 0..9."""

    def __init__(self, name: str, split: str = "train", size: int = DEFAULT_DIGIT_SIZE, root=None,
                 channels: Optional[int] = None, limit: Optional[int] = None, seed: int = 0, cache_dir=None):
        if name not in DIGIT_DOMAINS:
            raise ValueError(f"digit set must be one of {list(DIGIT_DOMAINS)}, got {name!r}")
        _check_split(split)
        if name == "mnistm":
            x, y = load_mnistm_arrays(split, size, root, seed=seed, limit=limit, cache_dir=cache_dir)
            data = torch.tensor(x).permute(0, 3, 1, 2).contiguous()
        else:
            x, y = load_mnist_arrays(split, root) if name == "mnist" else load_usps_arrays(split, root)
            if limit is not None:
                x, y = x[:limit], y[:limit]
            t = torch.tensor(x, dtype=torch.float32).unsqueeze(1)
            t = t.div_(127.5).sub_(1.0) if x.dtype == np.uint8 else t
            data = resize_batch(t, size).clamp_(-1.0, 1.0)
        super().__init__(data, torch.tensor(y, dtype=torch.long), channels, name=name)
        self.split = split


class EmojiDataset(ArrayImageDataset):
    """One emoji style (``'google'`` or ``'twitter'``), RGB on white, labels = file index in
    the sorted list of names; ``self.names[i]`` is item i's file name."""

    def __init__(self, style: str, split: str = "train", size: int = DEFAULT_EMOJI_SIZE, root=None,
                 channels: Optional[int] = None):
        images, labels, names = load_emoji_arrays(style, split, size, root)
        super().__init__(images, labels, channels, name=f"emoji-{style}")
        self.names = names
        self.split = split


# ----------------------------------------------------------------------------- folders


class ImageFolderDataset(Dataset):
    """Unpaired training images from a folder (recursive): png, jpg, jpeg, webp, bmp.

    Each image's shorter side is resized to ``load_size`` (default ``size``), then a
    ``size x size`` crop is taken: the centre, or, with ``random_crop``/``hflip`` and an
    explicit ``generator``, a random one. Without a generator an item depends only on its
    index. Items are ``(image float [channels, size, size] in [-1, 1], index)``.

    With DataLoader workers each worker gets a copy of ``generator``; seed it per worker
    (``worker_init_fn``) if crops should differ between workers.
    """

    def __init__(self, root, size: int = DEFAULT_FOLDER_SIZE, channels: int = 3, load_size: Optional[int] = None,
                 random_crop: bool = False, hflip: bool = False, generator: Optional[torch.Generator] = None):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        if size < 1 or (load_size is not None and load_size < size):
            raise ValueError(f"need size >= 1 and load_size >= size, got size={size}, load_size={load_size}")
        if (random_crop or hflip) and generator is None:
            raise ValueError("random_crop/hflip need an explicit torch.Generator (generator=...), "
                             "so that items stay reproducible by default")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist (or is not a folder)")
        self.size, self.channels = int(size), int(channels)
        self.load_size = int(load_size or size)
        self.random_crop, self.hflip, self.generator = random_crop, hflip, generator
        self.files = self._scan()
        self._unreadable: set[Path] = set()

    def _scan(self) -> list[Path]:
        candidates, skipped = [], 0
        for path in walk_files(self.root):  # no symlink loop, no FIFO
            if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("._"):
                candidates.append(path)
            else:
                skipped += 1
        if skipped:
            warnings.warn(f"{self.root}: skipped {skipped} non-image file(s) "
                          f"(accepted extensions: {', '.join(IMAGE_EXTENSIONS)})")
        files = []
        for path in candidates:
            try:
                with open_image(path) as img:  # refuses decompression bombs from the header
                    img.verify()
                files.append(path)
            except UnreadableImageError as err:
                warnings.warn(f"skipping image: {err}")
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
                warnings.warn(f"skipping unreadable image {path}: {err}")
        if not files:
            raise ValueError(f"image folder {self.root} contains no readable images "
                             f"(accepted extensions: {', '.join(IMAGE_EXTENSIONS)}, searched recursively)")
        return files

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> torch.Tensor:
        """The image at ``index`` as float ``[C, size, size]`` in [-1, 1]."""
        path = self.files[index]
        try:
            arr = read_image(path, self.channels)
        except (OSError, ValueError) as err:
            raise OSError(f"cannot read image {path}: {err}") from err
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().unsqueeze(0)
        h, w = x.shape[-2:]
        scale = self.load_size / min(h, w)
        new_h, new_w = max(self.load_size, round(h * scale)), max(self.load_size, round(w * scale))
        if (new_h, new_w) != (h, w):
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        if self.random_crop:
            top = int(torch.randint(0, new_h - self.size + 1, (1,), generator=self.generator))
            left = int(torch.randint(0, new_w - self.size + 1, (1,), generator=self.generator))
        else:
            top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        x = x[0, :, top : top + self.size, left : left + self.size]
        if self.hflip and bool(torch.rand((), generator=self.generator) < 0.5):
            x = x.flip(-1)
        return (x / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()

    def __getitem__(self, index: int):
        # A file that passed the scan can still fail to decode (e.g. a truncated JPEG);
        # a long training run should go on, so take the next readable image instead.
        for step in range(len(self.files)):
            candidate = (index + step) % len(self.files)
            try:
                return self.load(candidate), candidate
            except OSError as err:
                if self.files[candidate] not in self._unreadable:
                    self._unreadable.add(self.files[candidate])
                    warnings.warn(f"skipping unreadable image: {err}")
        raise OSError(f"no image in {self.root} could be decoded")


# ----------------------------------------------------------------------------- registry


def load_domain(name: str, split: str = "train", size: Optional[int] = None, root=None,
                channels: Optional[int] = None, **options) -> Dataset:
    """A Dataset by name: 'mnist', 'usps', 'mnistm', 'emoji-google', 'emoji-twitter', or a
    folder path (used as is, or its ``<split>`` subfolder when that exists).

    ``size`` defaults to 32 for digits, 64 for emoji, 256 for folders. ``options`` go to the
    dataset class (e.g. ``limit``, ``seed``, ``cache_dir`` for digits; ``random_crop``,
    ``generator`` for folders).
    """
    if name in DIGIT_DOMAINS:
        return DigitDataset(name, split, size or DEFAULT_DIGIT_SIZE, root, channels, **options)
    if name.startswith("emoji-") and name[len("emoji-"):] in EMOJI_STYLES:
        return EmojiDataset(name[len("emoji-"):], split, size or DEFAULT_EMOJI_SIZE, root, channels, **options)
    path = Path(name).expanduser()
    if path.is_dir():
        folder = path / split if (path / split).is_dir() else path
        return ImageFolderDataset(folder, size or DEFAULT_FOLDER_SIZE, channels or 3, **options)
    if os.sep in name or "/" in name or path.exists():
        raise FileNotFoundError(f"image folder {path} does not exist (or is not a folder)")
    raise ValueError(f"unknown domain {name!r}: use one of {list(DOMAIN_NAMES)} or the path of an image folder")
