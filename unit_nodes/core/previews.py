"""What a training run shows of itself: rows of input, translation and cycle reconstruction
for a few images of each domain."""

from __future__ import annotations

import torch

from .inference import cycle_reconstruct
from .networks import UNIT
from .tensors import match_channels, to_unit_range


@torch.no_grad()
def preview_rows(model: UNIT, x_a: torch.Tensor, x_b: torch.Tensor, count: int, device: torch.device) -> torch.Tensor:
    """Rows of (input | translation | cycle) for both directions, in [0, 1], [N, 3, H, W*3]:
    the first ``count`` images of A, then of B, through ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    rows = []
    try:
        for x, src in ((x_a[:count], "a"), (x_b[:count], "b")):
            x = x.to(device)
            t, c = cycle_reconstruct(model, x, src)
            rows.append(torch.cat([match_channels(v, 3) for v in (x, t, c)], dim=-1))
    finally:
        model.train(was_training)
    return to_unit_range(torch.cat(rows)).cpu()
