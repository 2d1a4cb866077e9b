"""Losses of the UNIT objective, kept outside the models (as in diffusers / CycleGAN).

* ``kl_unit_variance``: KL(N(mu, I) || N(0, I)) = 0.5 * sum(mu^2); like the reference
  implementation we use its per-element mean, mean(mu^2), so lambda1 = 0.1 has the
  paper's meaning independent of the latent size.
* ``l1``: negative log-likelihood of a Laplacian decoder, up to constants.
* ``GANLoss(mode)``: least squares (default) or the original non-saturating log loss,
  over one or several discriminator outputs (multi-scale PatchGAN).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def kl_unit_variance(mu: torch.Tensor) -> torch.Tensor:
    return mu.pow(2).mean()


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


class GANLoss(nn.Module):
    """Adversarial loss over a list of logit maps (one per discriminator scale)."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "nonsaturating"):
            raise ValueError(f"GAN loss mode must be 'lsgan' or 'nonsaturating', got {mode!r}")
        self.mode = mode

    def _one(self, logits: torch.Tensor, target_real: bool) -> torch.Tensor:
        logits = logits.float()  # losses in fp32 under autocast
        if self.mode == "lsgan":
            target = 1.0 if target_real else 0.0
            return (logits - target).pow(2).mean()
        target = torch.ones_like(logits) if target_real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def forward(self, outputs: Sequence[torch.Tensor] | torch.Tensor, target_real: bool) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        return sum(self._one(o, target_real) for o in outputs)

    def discriminator_loss(self, real_outputs, fake_outputs) -> torch.Tensor:
        return self(real_outputs, True) + self(fake_outputs, False)

    def generator_loss(self, fake_outputs) -> torch.Tensor:
        return self(fake_outputs, True)
