"""Tensor conventions shared by inference, tiling, training data and the nodes: the value
range of images ([-1, 1] for the networks, [0, 1] outside), the one channel conversion (luma
for colour to gray), and where a model's weights live."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def zoom_about_centre(x: torch.Tensor, factor: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Each image of ``x`` [B, C, H, W] with its content resized by ``factor[i]`` about the image
    centre, H and W kept (> 1 enlarges and crops, < 1 shrinks; uncovered pixels follow
    ``padding_mode`` of ``grid_sample``). Bilinear and differentiable; returned in x's dtype."""
    # the sampling grid in fp32 whatever x is: in bf16 its coordinates would be off by up to a quarter pixel
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor.to(device=x.device, dtype=torch.float32)  # output reads input at 1/f
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.to(x.dtype)


def border_ring(x: torch.Tensor) -> torch.Tensor:
    """[..., C, 2 (H + W) - 4]: the outermost ring of pixels of each image of ``x`` [..., C, H, W]."""
    return torch.cat([x[..., 0, :], x[..., -1, :], x[..., 1:-1, 0], x[..., 1:-1, -1]], dim=-1)


def border_colour(x: torch.Tensor) -> torch.Tensor:
    """[N, C, 1, 1]: each image's border colour, the per-channel median of its outermost ring."""
    return border_ring(x).median(dim=-1).values[..., None, None]
