"""Data loaders against the real data sets in ../shared/data (skipped where absent)."""

from __future__ import annotations

import bz2
import gzip
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import unit_nodes
from unit_nodes.core import data

ROOT = data.default_data_root()


def need(*parts: str) -> Path:
    path = ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (data root {ROOT}; set UNIT_DATA_ROOT "
                    f"or provide ../shared/data)")
    return path


def check_range(x: torch.Tensor) -> None:
    assert x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert float(x.min()) < -0.9 and float(x.max()) > 0.9  # uses the range, not a sliver of it


# ----------------------------------------------------------------------------- roots


def test_default_data_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIT_DATA_ROOT", str(tmp_path))
    assert data.default_data_root() == tmp_path
    monkeypatch.delenv("UNIT_DATA_ROOT")
    repo_shared = Path(unit_nodes.__file__).resolve().parents[1].parent / "shared" / "data"
    expected = repo_shared if repo_shared.is_dir() else Path.home() / ".cache" / "unit_nodes" / "data"
    assert data.default_data_root() == expected


@pytest.mark.parametrize(
    "loader, words",
    [
        (lambda r: data.load_mnist_arrays("train", r), ["mnist/mnist.npz", "MNIST/raw", "yann.lecun.com"]),
        (lambda r: data.load_usps_arrays("test", r), ["usps/zip.test.gz", "usps.t.bz2"]),
        (lambda r: data.list_bsds_images(r), ["bsds500/train", "BSDS500"]),
        (lambda r: data.emoji_names("google", "all", r), ["emoji/google/64", "emoji-datasource"]),
    ],
)
def test_missing_files_name_path_and_layout(tmp_path, loader, words):
    with pytest.raises(FileNotFoundError) as err:
        loader(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    for word in words:
        assert word in message


# ----------------------------------------------------------------------------- MNIST


def test_mnist_counts_labels_and_tensors():
    need("mnist", "mnist.npz")
    x_train, y_train = data.load_mnist_arrays("train")
    x_test, y_test = data.load_mnist_arrays("test")
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and len(y_test) == 10000 and len(y_train) == 60000
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))

    ds = data.DigitDataset("mnist", "test")
    assert len(ds) == 10000
    images = ds.images
    assert images.shape == (10000, 1, 32, 32)
    check_range(images)
    assert ds.labels.dtype == torch.long and int(ds.labels.min()) == 0 and int(ds.labels.max()) == 9
    image, label = ds[3]
    assert image.shape == (1, 32, 32) and label == int(y_test[3])
    # The 32 px image is the 28 px digit, bilinearly resized, in [-1, 1].
    by_hand = F.interpolate(torch.tensor(x_test[3]).float()[None, None] / 127.5 - 1, size=(32, 32),
                            mode="bilinear", align_corners=False)[0]
    assert torch.allclose(image, by_hand, atol=1e-5)

    rgb = data.DigitDataset("mnist", "test", size=28, channels=3, limit=50)
    assert len(rgb) == 50 and rgb.images.shape == (50, 3, 28, 28)
    assert torch.equal(rgb.images[:, 0], rgb.images[:, 2])
    assert torch.equal(rgb.images[:, 0], torch.tensor(x_test[:50]).float() / 127.5 - 1)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def test_mnist_torchvision_idx_layout(tmp_path):
    need("mnist", "mnist.npz")
    x, y = data.load_mnist_arrays("test")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", x[:20])  # compressed and plain both occur
    _write_idx(raw / "t10k-labels-idx1-ubyte", y[:20].astype(np.uint8))
    x2, y2 = data.load_mnist_arrays("test", root=tmp_path)
    assert np.array_equal(x2, x[:20]) and np.array_equal(y2, y[:20])
    ds = data.DigitDataset("mnist", "test", root=tmp_path)
    assert ds.images.shape == (20, 1, 32, 32)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_mnist_arrays("train", root=tmp_path)

    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x12\x34\x56\x78" + b"\0" * 16)
    with pytest.raises(ValueError, match="not an idx file"):
        data.read_idx(bad)


# ----------------------------------------------------------------------------- USPS


def test_usps_counts_labels_and_tensors():
    need("usps", "zip.train.gz")
    x_train, y_train = data.load_usps_arrays("train")
    x_test, y_test = data.load_usps_arrays("test")
    assert x_train.shape == (7291, 16, 16) and x_test.shape == (2007, 16, 16)
    assert float(x_train.min()) == -1.0 and float(x_train.max()) == 1.0
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))

    ds = data.DigitDataset("usps", "test")
    assert len(ds) == 2007 and ds.images.shape == (2007, 1, 32, 32)
    check_range(ds.images)
    assert torch.equal(ds.labels, torch.tensor(y_test))
    assert data.DigitDataset("usps", "train", size=16, limit=10).images.shape == (10, 1, 16, 16)
    assert torch.equal(data.DigitDataset("usps", "train", size=16, limit=10).images[:, 0],
                       torch.tensor(x_train[:10]))


def test_usps_torchvision_bz2_layout(tmp_path):
    need("usps", "zip.test.gz")
    x, y = data.load_usps_arrays("test")
    lines = []
    for image, label in zip(x[:15], y[:15]):
        values = " ".join(f"{i + 1}:{v:.4f}" for i, v in enumerate(image.reshape(-1)))
        lines.append(f"{label + 1} {values}\n")  # torchvision's files count classes from 1
    with bz2.open(tmp_path / "usps.t.bz2", "wt") as f:
        f.writelines(lines)
    x2, y2 = data.load_usps_arrays("test", root=tmp_path)
    assert np.array_equal(y2, y[:15])
    assert np.allclose(x2, x[:15], atol=1e-4)


# ----------------------------------------------------------------------------- MNIST-M


def test_mnistm_is_deterministic_cached_and_prefix_stable(tmp_path):
    need("mnist", "mnist.npz")
    need("bsds500", "train")
    a, labels = data.load_mnistm_arrays("train", 32, seed=3, limit=300, cache_dir=tmp_path / "a")
    b, _ = data.load_mnistm_arrays("train", 32, seed=3, limit=300, cache_dir=tmp_path / "b")
    c, _ = data.load_mnistm_arrays("train", 32, seed=4, limit=300, cache_dir=tmp_path / "a")
    t, _ = data.load_mnistm_arrays("test", 32, seed=3, limit=300, cache_dir=tmp_path / "a")
    assert a.shape == (300, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # built twice from scratch
    assert not np.array_equal(a, c)
    assert np.array_equal(labels, data.load_mnist_arrays("train")[1][:300])
    assert not np.array_equal(a[:50], t[:50])
    assert a.std() > 30  # coloured photo texture, not flat digits

    short, _ = data.load_mnistm_arrays("train", 32, seed=3, limit=120, cache_dir=tmp_path / "a")
    assert np.array_equal(short, a[:120])

    path = data.mnistm_cache_path("train", 32, seed=3, limit=300, cache_dir=tmp_path / "a")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    mtime = path.stat().st_mtime_ns
    again, _ = data.load_mnistm_arrays("train", 32, seed=3, limit=300, cache_dir=tmp_path / "a")
    assert np.array_equal(again, a) and path.stat().st_mtime_ns == mtime
    # A cache hit reads the file: a marked cache comes back as is, not rebuilt.
    marked = a.copy()
    marked[0] = 7
    np.savez(path, images=marked, labels=labels)
    from_cache, _ = data.load_mnistm_arrays("train", 32, seed=3, limit=300, cache_dir=tmp_path / "a")
    assert np.array_equal(from_cache, marked)

    ds = data.DigitDataset("mnistm", "train", seed=3, limit=300, cache_dir=tmp_path / "b")
    assert ds.images.shape == (300, 3, 32, 32)
    check_range(ds.images)
    assert torch.allclose(ds[5][0], torch.from_numpy(a[5]).permute(2, 0, 1).float() / 127.5 - 1)
    assert data.DigitDataset("mnistm", "train", seed=3, limit=10, channels=1, cache_dir=tmp_path / "b").images.shape \
        == (10, 1, 32, 32)


def test_mnistm_blend_formula_by_hand():
    need("mnist", "mnist.npz")
    photo_path = need("bsds500", "train")
    digit = data.load_mnist_arrays("test")[0][:1]
    resized = F.interpolate(torch.tensor(digit).float()[None], size=(32, 32), mode="bilinear",
                            align_corners=False).round().clamp(0, 255)[0, 0].numpy().astype(np.int64)

    flat = np.empty((40, 60, 3), dtype=np.uint8)
    flat[:] = (200, 30, 120)
    out = data.build_mnistm(digit, [flat], 32, seed=0)[0].astype(np.int64)
    assert np.array_equal(out, np.abs(np.array([200, 30, 120])[None, None, :] - resized[..., None]))
    stroke = np.unravel_index(resized.argmax(), resized.shape)
    v = resized[stroke]
    assert v > 250 and tuple(out[stroke]) == (v - 200, v - 30, v - 120)

    photo = np.asarray(Image.open(sorted(photo_path.glob("*.jpg"))[0]).convert("RGB"))
    out = data.build_mnistm(digit, [photo], 32, seed=11)[0].astype(np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(photo, (32, 32), axis=(0, 1))  # [Y, X, 3, 32, 32]
    background = resized == 0
    first = tuple(np.argwhere(background)[0])
    candidates = np.argwhere(np.all(windows[:, :, :, first[0], first[1]] == out[first], axis=-1))
    matches = [(y, x) for y, x in candidates
               if np.array_equal(out, np.abs(windows[y, x].transpose(1, 2, 0).astype(np.int64) - resized[..., None]))]
    assert len(matches) >= 1  # some 32x32 crop of the photo gives exactly |crop - digit|


# ----------------------------------------------------------------------------- emoji


def test_emoji_split_counts_and_alignment():
    need("emoji", "google", "64")
    need("emoji", "twitter", "64")
    everything = data.emoji_names("google", "all")
    test = data.emoji_names("google", "test")
    train = data.emoji_names("google", "train")
    assert len(everything) == 3786 and everything == sorted(everything)
    assert len(test) == 474 and len(train) == 3786 - 474
    assert test == everything[::8]
    assert set(train) | set(test) == set(everything) and not set(train) & set(test)

    ds = data.EmojiDataset("google", "test")
    assert len(ds) == 474 and ds.images.shape == (474, 3, 64, 64)
    check_range(ds.images)
    assert ds.labels.tolist() == list(range(0, 3786, 8))
    assert ds.names == test

    # Composited on white, checked against the PNG itself.
    rgba = np.asarray(Image.open(ROOT / "emoji" / "google" / "64" / test[10]).convert("RGBA")).astype(np.float64)
    by_hand = rgba[..., :3] * rgba[..., 3:] / 255 + 255 * (1 - rgba[..., 3:] / 255)
    assert np.allclose(ds[10][0].permute(1, 2, 0).numpy(), by_hand / 127.5 - 1, atol=1e-5)
    assert float(ds.images[:, :, 0, 0].mean()) > 0.9  # corners are mostly transparent -> white

    names, google, twitter = data.emoji_pairs("test", size=32)
    assert names == test and google.shape == twitter.shape == (474, 3, 32, 32)
    assert data.EmojiDataset("twitter", "test").names == names
    assert not torch.equal(google, twitter)


# ----------------------------------------------------------------------------- folders


def _real_images(n: int) -> list[np.ndarray]:
    photos = sorted(need("bsds500", "train").glob("*.jpg"))[:n]
    return [np.asarray(Image.open(p).convert("RGB")) for p in photos]


def test_image_folder_formats_nesting_and_skips(tmp_path):
    photos = _real_images(4)
    emoji_png = need("emoji", "google", "64") / data.emoji_names("google", "all")[100]
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(photos[0]).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(photos[1]).save(tmp_path / "sub" / "b.PNG")
    Image.fromarray(photos[2]).save(tmp_path / "sub" / "deeper" / "c.webp", quality=95)
    Image.fromarray(photos[3][..., 0]).save(tmp_path / "sub" / "d_gray.bmp")
    Image.open(emoji_png).save(tmp_path / "e_rgba.png")
    (tmp_path / "notes.txt").write_text("not an image")
    good = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "sub" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + good[100:400])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.ImageFolderDataset(tmp_path, size=48, channels=3)
    messages = [str(w.message) for w in caught]
    assert any("skipped 1 non-image" in m for m in messages)
    assert any("corrupt.png" in m for m in messages)
    assert sorted(p.name for p in ds.files) == ["a.jpg", "b.PNG", "c.webp", "d_gray.bmp", "e_rgba.png"]

    for i in range(len(ds)):
        image, index = ds[i]
        assert index == i and image.shape == (3, 48, 48) and image.dtype == torch.float32
        assert float(image.min()) >= -1 and float(image.max()) <= 1
        assert torch.equal(image, ds[i][0])  # deterministic per index

    gray = ds[[p.name for p in ds.files].index("d_gray.bmp")][0]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])

    rgba = np.asarray(Image.open(emoji_png).convert("RGBA"))
    assert rgba[0, 0, 3] == 0
    emoji = ds[[p.name for p in ds.files].index("e_rgba.png")][0]
    assert torch.allclose(emoji[:, 0, 0], torch.ones(3))  # transparent corner -> white

    one = data.ImageFolderDataset(tmp_path / "sub" / "deeper", size=32, channels=1)
    assert len(one) == 1 and one[0][0].shape == (1, 32, 32)


def test_image_folder_resize_shorter_side_then_center_crop(tmp_path):
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 14:46] = 255  # white centre band, black sides
    Image.fromarray(wide).save(tmp_path / "wide.png")
    image = data.ImageFolderDataset(tmp_path, size=10)[0][0]
    assert image.shape == (3, 10, 10)
    # 20x60 -> 10x30 (band at columns 7..23); the centre crop is columns 10..20, inside the band
    assert torch.allclose(image, torch.ones_like(image), atol=1e-5)
    tall = data.ImageFolderDataset(tmp_path, size=10, load_size=20)[0][0]
    assert tall.shape == (3, 10, 10) and torch.allclose(tall, torch.ones_like(tall), atol=1e-5)

    with pytest.raises(ValueError, match="generator"):
        data.ImageFolderDataset(tmp_path, size=10, load_size=20, random_crop=True)
    crops = data.ImageFolderDataset(tmp_path, size=10, load_size=20, random_crop=True,
                                    generator=torch.Generator().manual_seed(0))
    draws = [crops[0][0] for _ in range(30)]
    assert len({tuple(d[0, 5].tolist()) for d in draws}) > 1
    assert any(float(d.min()) == -1.0 for d in draws)  # some crops reach the black sides
    again = data.ImageFolderDataset(tmp_path, size=10, load_size=20, random_crop=True,
                                    generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(d, again[0][0]) for d in draws)  # same generator seed, same sequence


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        data.ImageFolderDataset(tmp_path / "nope", size=16)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=re.escape(str(empty))):
        data.ImageFolderDataset(empty, size=16)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no readable images"), pytest.warns(UserWarning, match="skipped 1"):
        data.ImageFolderDataset(empty, size=16)


# ----------------------------------------------------------------------------- registry


def test_load_domain_registry(tmp_path):
    need("mnist", "mnist.npz")
    need("emoji", "twitter", "64")
    mnist = data.load_domain("mnist", "test", limit=5)
    assert isinstance(mnist, data.DigitDataset) and mnist.images.shape == (5, 1, 32, 32)
    usps = data.load_domain("usps", "test", 28, channels=3)
    assert usps.images.shape == (2007, 3, 28, 28)
    emoji = data.load_domain("emoji-twitter", "test", 32)
    assert emoji.images.shape == (474, 3, 32, 32)

    (tmp_path / "train").mkdir()
    Image.fromarray(_real_images(1)[0]).save(tmp_path / "train" / "x.jpg")
    Image.fromarray(_real_images(2)[1]).save(tmp_path / "y.jpg")
    folder = data.load_domain(str(tmp_path), "train", 24, channels=1)
    assert isinstance(folder, data.ImageFolderDataset) and len(folder) == 1 and folder[0][0].shape == (1, 24, 24)
    assert len(data.load_domain(str(tmp_path), "test", 24)) == 2  # no test/ subfolder: the whole folder

    with pytest.raises(ValueError) as err:
        data.load_domain("svhn")
    for name in data.DOMAIN_NAMES:
        assert name in str(err.value)
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        data.load_domain(str(tmp_path / "does-not-exist"))


# ----------------------------------------------------------------------------- small folders (bench)


def test_small_emoji_folders_draw_only_training_emoji_reproducibly(tmp_path):
    """bench/make_small_emoji_folders.py builds issue 10's small-folder experiment: n training emoji
    per style (never a test emoji), the same files for the same seed, and it never overwrites."""
    import subprocess
    import sys

    need("emoji", "google", "64")
    script = Path(__file__).resolve().parents[1] / "bench" / "make_small_emoji_folders.py"

    def make(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), "--n", "7", "--out", str(out), "--data-root", str(ROOT),
                               *extra], capture_output=True, text=True)

    assert make(tmp_path / "one").returncode == 0
    assert make(tmp_path / "two").returncode == 0
    test_names = set(data.emoji_names("google", "test", ROOT))
    for style in ("google", "twitter"):
        picked = sorted(p.name for p in (tmp_path / "one" / style).iterdir())
        assert len(picked) == 7 and not set(picked) & test_names
        assert picked == sorted(p.name for p in (tmp_path / "two" / style).iterdir())
        same = (tmp_path / "one" / style / picked[0]).read_bytes()
        assert same == (ROOT / "emoji" / style / "64" / picked[0]).read_bytes()
    assert sorted(p.name for p in (tmp_path / "one" / "google").iterdir()) != \
        sorted(p.name for p in (tmp_path / "one" / "twitter").iterdir())  # independent draws
    again = make(tmp_path / "one")
    assert again.returncode != 0 and "exists" in again.stderr
    huge = subprocess.run([sys.executable, str(script), "--n", "100000", "--out", str(tmp_path / "five"),
                           "--data-root", str(ROOT)], capture_output=True, text=True)
    assert huge.returncode != 0 and "--n must be in 1..3312" in huge.stderr
    assert not (tmp_path / "five").exists()  # nothing half-made
    mine = tmp_path / "six.partial"
    mine.mkdir()
    (mine / "keep.txt").write_text("the user's")
    taken = make(tmp_path / "six")
    assert taken.returncode != 0 and "six.partial exists" in taken.stderr
    assert (mine / "keep.txt").read_text() == "the user's" and not (tmp_path / "six").exists()
