"""The three digit domains (MNIST, USPS, MNIST-M) as one Dataset, resized to a common side."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .arrays import ArrayImageDataset, resize_batch
from .digit_files import DEFAULT_DIGIT_SIZE, load_mnist_arrays, load_usps_arrays
from .mnistm import load_mnistm_arrays
from .roots import check_split

DIGIT_DOMAINS = ("mnist", "usps", "mnistm")


class DigitDataset(ArrayImageDataset):
    """MNIST, USPS or MNIST-M resized to ``size`` (C=1 for mnist/usps, 3 for mnistm unless
    ``channels`` is given). Labels are the digit classes 0..9."""

    def __init__(self, name: str, split: str = "train", size: int = DEFAULT_DIGIT_SIZE, root=None,
                 channels: Optional[int] = None, limit: Optional[int] = None, seed: int = 0, cache_dir=None):
        if name not in DIGIT_DOMAINS:
            raise ValueError(f"digit set must be one of {list(DIGIT_DOMAINS)}, got {name!r}")
        check_split(split)
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
