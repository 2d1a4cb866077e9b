"""A training domain by name: a digit set, an emoji style, or the path of an image folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from torch.utils.data import Dataset

from .digit_files import DEFAULT_DIGIT_SIZE
from .digits import DIGIT_DOMAINS, DigitDataset
from .emoji import DEFAULT_EMOJI_SIZE, EMOJI_STYLES, EmojiDataset
from .folders import DEFAULT_FOLDER_SIZE, ImageFolderDataset

DOMAIN_NAMES = ("mnist", "usps", "mnistm", "emoji-google", "emoji-twitter")


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
