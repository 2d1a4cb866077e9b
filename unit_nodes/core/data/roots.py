"""Where the data sets live: the data root, the layout expected under it, and the error that
names both when a file is missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

SPLITS = ("train", "test")

EXPECTED_LAYOUT = {
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


def default_data_root() -> Path:
    """``$UNIT_DATA_ROOT`` if set, else ``<repo>/../shared/data`` if it exists, else
    ``~/.cache/unit_nodes/data``."""
    env = os.environ.get("UNIT_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[3]
    shared = repo.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return Path.home() / ".cache" / "unit_nodes" / "data"


def resolve_root(root) -> Path:
    """``root`` as a Path, or the default data root when it is None."""
    return default_data_root() if root is None else Path(root).expanduser()


def missing_data(what: str, root: Path, tried: Sequence[Path]) -> FileNotFoundError:
    """The error for a data set ``what`` (a key of EXPECTED_LAYOUT) not found under ``root``."""
    tried_text = ", ".join(str(p) for p in tried)
    return FileNotFoundError(
        f"{what} data not found under data root {root} (looked for: {tried_text}). "
        f"Expected layout: {EXPECTED_LAYOUT[what]}. Pass root= or set UNIT_DATA_ROOT."
    )


def check_split(split: str, allowed: Sequence[str] = SPLITS) -> None:
    if split not in allowed:
        raise ValueError(f"split must be one of {list(allowed)}, got {split!r}")
