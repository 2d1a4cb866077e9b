"""The MNIST and USPS files: the idx container, USPS's text and libsvm rows, and the arrays
read from them (cached per data root and split, handed out read-only)."""

from __future__ import annotations

import bz2
import functools
import gzip
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from .roots import EXPECTED_LAYOUT, check_split, missing_data, resolve_root

DEFAULT_DIGIT_SIZE = 32  # the side the digit sets are resized to unless asked otherwise

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
                             f"Expected: {EXPECTED_LAYOUT['mnist']}") from None
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{npz} holds x_{split} {x.shape} and y_{split} {y.shape}; expected [N, 28, 28] and [N]")
        return x, y
    prefix = "train" if split == "train" else "t10k"
    raw = root / "MNIST" / "raw"
    images = _find(raw, f"{prefix}-images-idx3-ubyte")
    labels = _find(raw, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise missing_data("mnist", root, [npz, raw / f"{prefix}-images-idx3-ubyte[.gz]",
                                           raw / f"{prefix}-labels-idx1-ubyte[.gz]"])
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"MNIST idx files disagree: images {x.shape} from {images}, labels {y.shape} from {labels}")
    return np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int64)


def load_mnist_arrays(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as ``(images uint8 [N, 28, 28], labels int64 [N])`` (read-only: shared cache)."""
    check_split(split)
    return _read_only(*_mnist_cached(str(resolve_root(root).resolve()), split))


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


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
                         f"replace it. Expected: {EXPECTED_LAYOUT['usps']}") from None
    raise missing_data("usps", root, [text, root / "usps" / bz_name, root / bz_name])


def load_usps_arrays(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """USPS as ``(images float32 [N, 16, 16] in [-1, 1], labels int64 [N])`` (read-only: shared cache)."""
    check_split(split)
    return _read_only(*_usps_cached(str(resolve_root(root).resolve()), split))
