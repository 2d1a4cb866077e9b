"""Tensor conventions shared by inference, tiling, training data and the nodes: the value
range of images ([-1, 1] for the networks, [0, 1] outside), the one channel conversion (luma
for colour to gray), and where a model's weights live."""

from __future__ import annotations

import torch
from torch import nn


def to_model_range(images01: torch.Tensor) -> torch.Tensor:
    return images01 * 2.0 - 1.0


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    return ((images + 1.0) * 0.5).clamp(0.0, 1.0)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` [B, C, H, W] with ``channels`` channels: RGBA drops alpha, RGB -> gray is ITU-R
    BT.601 luma, gray -> RGB repeats the channel."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 4:  # alpha carries no colour; callers composite first if they care
        x, c = x[:, :3], 3
        if channels == 3:
            return x
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    raise ValueError(f"images have {x.shape[1]} channel(s); the model's domain expects {channels}")


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of a UNIT model's translator weights (what its inputs must be)."""
    p = next(model.enc.parameters())
    return p.device, p.dtype
