"""Losses of the UNIT objective, kept outside the models (as in diffusers / CycleGAN).

* ``kl_unit_variance``: KL(N(mu, I) || N(0, I)) = 0.5 * sum(mu^2); like the reference
  implementation we use its per-element mean, mean(mu^2), so lambda1 = 0.1 has the
  paper's meaning independent of the latent size.
* ``l1``: negative log-likelihood of a Laplacian decoder, up to constants.
* ``GANLoss(mode)``: least squares (default), the original non-saturating log loss or the
  hinge loss, over one or several discriminator outputs (multi-scale PatchGAN).
* ``r1_penalty``: the zero-centred gradient penalty on real images (R1, Mescheder et al. 2018).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import GAN_MODES
from .networks import reframe


def kl_unit_variance(mu: torch.Tensor) -> torch.Tensor:
    return mu.pow(2).mean()


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


def block_l1(x: torch.Tensor, y: torch.Tensor, block: int) -> torch.Tensor:
    """L1 between the means of ``block`` x ``block`` tiles of x and y (a partial tile at the edge is
    averaged over the pixels it has); ``block`` 1 is the plain L1."""
    if block == 1:
        return l1(x, y)
    pool = dict(kernel_size=block, stride=block, ceil_mode=True)
    return l1(F.avg_pool2d(x, **pool), F.avg_pool2d(y, **pool))


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and between the vertical neighbour differences of x and y (the
    gradient difference loss), the mean of the two."""
    dx = l1(x[..., :, 1:] - x[..., :, :-1], y[..., :, 1:] - y[..., :, :-1])
    dy = l1(x[..., 1:, :] - x[..., :-1, :], y[..., 1:, :] - y[..., :-1, :])
    return 0.5 * (dx + dy)


def gaussian_window(size: int, sigma: float, channels: int, dtype, device) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel, one per channel, for a depthwise convolution."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).to(dtype=dtype, device=device)
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def structural_similarity(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of ``[N, C, H, W]`` batches in [-1, 1], on the images
    mapped to [0, 1] (data range 1, K1 0.01, K2 0.03), Gaussian window, valid convolution, mean
    over channels and pixels; in the inputs' dtype, differentiable (``eval``'s SSIM and the
    ``lambda_ssim`` loss)."""
    # Under autocast the convolutions would run in bf16 / fp16, where E[x^2] - E[x]^2 cancels to noise
    # and a variance can come out negative (a training step's loss went to -inf at step 3).
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = (x + 1) / 2, (y + 1) / 2
        c = x.shape[1]
        w = gaussian_window(window, sigma, c, x.dtype, x.device)
        mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
        sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
        syy = F.conv2d(y * y, w, groups=c) - mu_y**2
        sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
        c1, c2 = 0.01**2, 0.03**2
        s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
        return s.mean(dim=(1, 2, 3))


def focal_frequency(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """The focal frequency loss (Jiang et al. 2021) between x and y: the mean over the orthonormal
    2-D spectrum of w * |F(x) - F(y)|^2, w = |F(x) - F(y)|^alpha scaled to a largest value of 1 in
    each image's channel and held fixed (no gradient), so the frequencies furthest off weigh most."""
    diff = torch.fft.fft2(x.float(), norm="ortho") - torch.fft.fft2(y.float(), norm="ortho")
    power = diff.real.square() + diff.imag.square()
    weight = power.sqrt().pow(alpha)
    weight = (weight / weight.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).detach()
    return (weight * power).mean()


def feature_matching(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over D's layers of the L1 between its activations of real images and of their
    paired reconstructions; the real side is a fixed target."""
    return sum(l1(f.float(), r.detach().float()) for r, f in zip(real, fake, strict=True)) / len(real)


def r1_penalty(real_outputs: Sequence[Sequence[torch.Tensor]], real_inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over images of |grad_x sum(D(x))|^2 for each domain's real batch, summed over the
    domains: the R1 penalty of Mescheder et al. (2018), which keeps D flat on the real data so
    that its gradient does not push translations past it. ``real_outputs[i]`` are D_i's logit
    maps (all scales) of ``real_inputs[i]``, which must require grad; the graph is kept, so the
    penalty trains D."""
    total = 0.0
    for outputs, x in zip(real_outputs, real_inputs, strict=True):
        score = sum(o.float().sum() for o in outputs)
        (grad,) = torch.autograd.grad(score, x, create_graph=True)
        total = total + grad.float().pow(2).flatten(1).sum(1).mean()
    return total


class GANLoss(nn.Module):
    """Adversarial loss over a list of logit maps (one per discriminator scale)."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"GAN loss mode must be one of {GAN_MODES}, got {mode!r}")
        self.mode = mode

    def _one(self, logits: torch.Tensor, target_real: bool) -> torch.Tensor:
        logits = logits.float()  # losses in fp32 under autocast
        if self.mode == "hinge":
            # D's side of the hinge loss (Lim & Ye 2017): real logits pushed above +1, fake
            # below -1; nothing is gained past the margin
            return F.relu(1.0 - logits).mean() if target_real else F.relu(1.0 + logits).mean()
        if self.mode == "lsgan":
            target = 1.0 if target_real else 0.0
            return (logits - target).pow(2).mean()
        target = torch.ones_like(logits) if target_real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    @staticmethod
    def _scales(outputs: Sequence[torch.Tensor] | torch.Tensor) -> Sequence[torch.Tensor]:
        return [outputs] if isinstance(outputs, torch.Tensor) else outputs

    def forward(self, outputs: Sequence[torch.Tensor] | torch.Tensor, target_real: bool) -> torch.Tensor:
        return sum(self._one(o, target_real) for o in self._scales(outputs))

    def discriminator_loss(self, real_outputs, fake_outputs) -> torch.Tensor:
        return self(real_outputs, True) + self(fake_outputs, False)

    def generator_loss(self, fake_outputs) -> torch.Tensor:
        if self.mode == "hinge":
            # the generator raises D's logits on its output without a margin
            return sum(-o.float().mean() for o in self._scales(fake_outputs))
        return self(fake_outputs, True)


class UNITObjective:
    """The UNIT objective of Liu et al. (2017), eqs. 2-7, with the config's lambda0..4.

    For each domain i with image x_i, code mu_i = E_i(x_i) and z_i = mu_i + eta:

    * L_VAE_i  = lambda1 * KL(q_i(z|x_i) || N(0, I)) + lambda2 * |x_i - G_i(z_i)|_1          (eq. 3)
    * L_GAN_i  = lambda0 * GAN(D_i on real x_i vs the translation G_i(z_j) of x_j)             (eq. 4)
    * L_CC_i   = lambda3 * (KL(q_i(z|x_i)) + KL(q_j(z|x_i translated into j)))
                 + lambda4 * |x_i - G_i(E_j(G_j(z_i)))|_1                                      (eq. 5)

    D minimises its GAN terms (``discriminator``); E and G minimise the sum of all terms
    against the frozen D (``translator``). ``cycle_domains`` can drop one side's cycle L1.
    Additions to the paper, 0 by default: ``lambda_identity`` * |x_ij - x_i|_1, a colour
    anchor that keeps each translation close to its input (on the means of ``identity_pool``-pixel
    blocks, where that is above 1); ``lambda_fm`` * feature matching
    of each image with its reconstruction and cycle reconstruction in D_i's hidden layers.
    """

    def __init__(self, config):
        self.config = config
        self.gan = GANLoss(config.gan_mode)

    def discriminator(self, real_a, fake_a, real_b, fake_b, gan_weight: float | None = None,
                      recon_a=None, recon_b=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D_a, D_b outputs on real images and on (detached) translations into their domain.
        ``gan_weight``: lambda0 at this step (default ``config.lambda_gan``; see ``Trainer.gan_weight_at``).
        ``recon_a``/``recon_b`` (needed when lambda_gan_recon > 0): D_i's outputs on the (detached)
        reconstructions of domain i, a second kind of fake weighted ``config.lambda_gan_recon``."""
        d_a = self.gan.discriminator_loss(real_a, fake_a)
        d_b = self.gan.discriminator_loss(real_b, fake_b)
        loss, terms = self._gan_weight(gan_weight) * (d_a + d_b), {"d_a": d_a, "d_b": d_b}
        if self.config.lambda_gan_recon:
            if recon_a is None or recon_b is None:
                raise ValueError("lambda_gan_recon > 0 needs D's outputs on the reconstructions")
            terms["d_rec_a"], terms["d_rec_b"] = self.gan(recon_a, False), self.gan(recon_b, False)
            loss = loss + self.config.lambda_gan_recon * (terms["d_rec_a"] + terms["d_rec_b"])
        return loss, terms

    def _gan_weight(self, gan_weight: float | None) -> float:
        return self.config.lambda_gan if gan_weight is None else gan_weight

    def translator(self, x_a, x_b, f: dict[str, torch.Tensor], d_a_on_ba, d_b_on_ab,
                   features: dict[str, list[torch.Tensor]] | None = None,
                   gan_weight: float | None = None,
                   d_on_recon: tuple | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``f``: the TranslatorPass outputs; ``d_a_on_ba``: D_a's outputs on x_ba (translations into A);
        ``features`` (needed when lambda_fm > 0): for each domain i, D_i's hidden activations of
        the batch [x_i; x_ii; x_iji] (image, reconstruction, cycle reconstruction); ``gan_weight``:
        lambda0 at this step (default ``config.lambda_gan``); D's outputs may be None when it is 0;
        ``d_on_recon`` (when lambda_gan_recon > 0 outside a warm start): D_a's outputs on x_aa and
        D_b's on x_bb."""
        cfg = self.config
        x_a, x_b = x_a.float(), x_b.float()
        t = {
            "kl_a": kl_unit_variance(f["mu_a"].float()), "kl_b": kl_unit_variance(f["mu_b"].float()),
            "kl_ab": kl_unit_variance(f["mu_ab"].float()), "kl_ba": kl_unit_variance(f["mu_ba"].float()),
            "recon_a": l1(f["x_aa"].float(), x_a), "recon_b": l1(f["x_bb"].float(), x_b),
            "cycle_a": l1(f["x_aba"].float(), x_a), "cycle_b": l1(f["x_bab"].float(), x_b),
        }
        if d_a_on_ba is None or d_b_on_ab is None:  # a warm start's step: no adversarial term at all
            if self._gan_weight(gan_weight) != 0:
                raise ValueError("the GAN terms need D's outputs on the translations unless their weight is 0")
            t["g_gan_a"] = t["g_gan_b"] = torch.zeros((), device=x_a.device)
        else:
            t["g_gan_a"], t["g_gan_b"] = self.gan.generator_loss(d_a_on_ba), self.gan.generator_loss(d_b_on_ab)
        vae = cfg.lambda_kl * (t["kl_a"] + t["kl_b"]) + cfg.lambda_recon * (t["recon_a"] + t["recon_b"])
        gan = self._gan_weight(gan_weight) * (t["g_gan_a"] + t["g_gan_b"])
        w_a, w_b = float("a" in cfg.cycle_domains), float("b" in cfg.cycle_domains)
        cc = (cfg.lambda_cc_kl * (t["kl_a"] + t["kl_b"] + t["kl_ab"] + t["kl_ba"])
              + cfg.lambda_cc_recon * (w_a * t["cycle_a"] + w_b * t["cycle_b"]))
        loss = vae + gan + cc
        if cfg.lambda_identity:
            # the anchor is the input in the other domain's frame (config.frame_scale)
            anchor_a = reframe(x_a, cfg.frame_scale, cfg.frame_fill("b"))
            anchor_b = reframe(x_b, 1.0 / cfg.frame_scale, cfg.frame_fill("a"))
            t["identity_a"] = block_l1(f["x_ab"].float(), anchor_a, cfg.identity_pool)
            t["identity_b"] = block_l1(f["x_ba"].float(), anchor_b, cfg.identity_pool)
            loss = loss + cfg.lambda_identity * (t["identity_a"] + t["identity_b"])
        # the fidelity losses beside the paper's L1: each on both reconstructions and, as cycle_domains
        # says, both cycle reconstructions (the cycle part scaled by edges_cycle_scale for the edge loss)
        for name, weight, distance, cycle_scale in (
                ("edges", cfg.lambda_edges, gradient_l1, cfg.edges_cycle_scale),
                ("freq", cfg.lambda_freq, focal_frequency, 1.0),
                ("ssim", cfg.lambda_ssim, lambda y, x: 1 - structural_similarity(y, x).mean(), 1.0)):
            if not weight:
                continue
            for d, x, w in (("a", x_a, w_a), ("b", x_b, w_b)):
                t[f"{name}_{d}"] = distance(f[f"x_{d}{d}"].float(), x)
                t[f"{name}_cycle_{d}"] = distance(f[f"x_{d}{'b' if d == 'a' else 'a'}{d}"].float(), x)
                loss = loss + weight * (t[f"{name}_{d}"] + cycle_scale * w * t[f"{name}_cycle_{d}"])
        if cfg.lambda_gan_recon and d_on_recon is not None:
            t["g_gan_rec_a"], t["g_gan_rec_b"] = (self.gan.generator_loss(o) for o in d_on_recon)
            loss = loss + cfg.lambda_gan_recon * (t["g_gan_rec_a"] + t["g_gan_rec_b"])
        elif cfg.lambda_gan_recon and self._gan_weight(gan_weight) != 0:
            raise ValueError("lambda_gan_recon > 0 needs D's outputs on the reconstructions")
        if cfg.lambda_fm:
            if features is None:
                raise ValueError("lambda_fm > 0 needs D's features of the images and their reconstructions")
            for d, w in (("a", w_a), ("b", w_b)):
                real, rec, cyc = zip(*(h.chunk(3) for h in features[d]))
                t[f"fm_{d}"] = feature_matching(real, rec)
                t[f"fm_cycle_{d}"] = feature_matching(real, cyc)
                loss = loss + cfg.lambda_fm * (t[f"fm_{d}"] + w * t[f"fm_cycle_{d}"])
        return loss, t
