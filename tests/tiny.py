"""Tiny models and data for fast tests on 2 CPU cores."""

from __future__ import annotations

import torch

from unit_nodes.core.config import preset


def tiny_config(**overrides):
    cfg = dict(image_size=16, base_channels=8, n_downsample=2, n_res_blocks=2, n_shared=1,
               dis_channels=16, dis_layers=2, dis_scales=1)
    cfg.update(overrides)
    return preset("digits32", **cfg)


def shapes_and_inversions(n: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Domain A: random gray rectangles on black; domain B: the same kind of images inverted.

    The known mapping A -> B is x -> -x (in [-1, 1]); the two sets are drawn independently
    (unpaired), so training never sees which B image matches which A image.
    """
    g = torch.Generator().manual_seed(seed)

    def draw(count: int) -> torch.Tensor:
        x = -torch.ones(count, 1, size, size)
        for i in range(count):
            h, w = torch.randint(4, size - 2, (2,), generator=g).tolist()
            top = torch.randint(0, size - h + 1, (1,), generator=g).item()
            left = torch.randint(0, size - w + 1, (1,), generator=g).item()
            x[i, :, top:top + h, left:left + w] = 1.0
        return x

    return draw(n), -draw(n)


class TensorImages(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]
