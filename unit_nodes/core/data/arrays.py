"""Images held in memory as one tensor: the Dataset the digit and emoji sets build on, and the
batch resize they share."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..tensors import match_channels


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of a float batch ``[N, C, H, W]``."""
    if images.shape[-2:] == (size, size):
        return images
    out = []
    for chunk in images.split(8192):  # bounds peak memory for 60k-image sets
        out.append(F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True))
    return torch.cat(out)


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
