"""UNIT networks: encoders and generators with explicitly shared blocks, PatchGAN critics.

Weight sharing is structural: the last ``n_shared`` residual blocks of E_a and E_b are one
``nn.ModuleList`` object held by both encoders, and likewise the first ``n_shared`` blocks
of G_a and G_b. A gradient step on either domain therefore moves the shared latent space
for both, which is what ties the two VAEs to one code (Liu et al., 2017, Sec. 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .config import UPSAMPLE_KERNEL, UNITConfig
from .tensors import border_colour, zoom_about_centre

DOMAINS = ("a", "b")


def check_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    return domain


def other_domain(domain: str) -> str:
    return "b" if check_domain(domain) == "a" else "a"


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same parameters, same results) that stays fast on channels_last.

    The stock kernel views the input as [1, B*C, H, W] and batch-normalises that, which is
    free for NCHW but copies a channels_last tensor in and out: more than the convolutions
    gain from channels_last on CPU. For channels_last inputs each image is batch-normalised
    on its own instead (per-image batch-norm statistics are instance-norm statistics), in
    place in its layout (measured in docs/PERFORMANCE.md). Only on CPU: on a GPU that costs a
    kernel launch per image, and an emoji64 training step at batch 64 ran 6.7x slower on an H200."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or self.track_running_stats or x.device.type != "cpu" or x.is_contiguous()
                or not x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x)
        w, b = (self.weight, self.bias) if self.affine else (None, None)
        if x.shape[0] == 1:
            return F.batch_norm(x, None, None, w, b, True, 0.0, self.eps)
        return torch.cat([F.batch_norm(xi, None, None, w, b, True, 0.0, self.eps) for xi in x.split(1)])


class ReflectionPad2d(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` that pads in the input's own dtype under autocast.

    CPU autocast lists reflection_pad2d as an fp32 op, so under bf16 every activation would be
    cast to fp32 for the pad and back to bf16 for the next convolution: two copies around each
    conv (13 % of a bf16 emoji64 step) for a forward result that is the same either way (padding
    only moves numbers). Only the backward differs: the gradients of mirrored border pixels are
    summed in bf16 instead of fp32 before the conv below reads them in bf16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x)
        return super().forward(x)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


class ConvBlock(nn.Sequential):
    """reflect-pad -> conv -> norm -> activation (reflect padding avoids border artefacts)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: str, act: str = "relu"):
        pad = (kernel - 1) // 2
        layers: list[nn.Module] = []
        if pad:
            layers.append(ReflectionPad2d(pad))
        layers.append(nn.Conv2d(cin, cout, kernel, stride, 0, bias=norm != "batch"))
        layers.append(make_norm(norm, cout))
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "lrelu":
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        elif act == "tanh":
            layers.append(nn.Tanh())
        elif act != "none":
            raise ValueError(f"unknown activation {act!r}")
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(channels, channels, 3, 1, norm, "relu"),
            ConvBlock(channels, channels, 3, 1, norm, "none"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """E_i: image in [-1, 1] -> mean of q(z|x). ``shared`` is the same object in E_a and E_b."""

    def __init__(self, in_channels: int, config: UNITConfig, shared: nn.ModuleList):
        super().__init__()
        c = config.base_channels
        layers: list[nn.Module] = [ConvBlock(in_channels, c, 7, 1, config.norm)]
        for _ in range(config.n_downsample):
            layers.append(ConvBlock(c, 2 * c, 4, 2, config.norm))
            c *= 2
        for _ in range(config.n_res_blocks - config.n_shared):
            layers.append(ResBlock(c, config.norm))
        self.private = nn.Sequential(*layers)
        self.shared = shared
        self.code_gain = float(config.code_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.private(x)
        for block in self.shared:
            h = block(h)
        return self.scale_code(h)

    def scale_code(self, h: torch.Tensor) -> torch.Tensor:
        """The last shared block's output -> the mean of q(z|x) (``config.code_gain``)."""
        return h * self.code_gain if self.code_gain != 1.0 else h


class Upsample(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str, mode: str):
        super().__init__()
        self.mode = mode
        k = UPSAMPLE_KERNEL[mode]
        if mode == "transpose":
            self.conv = nn.Sequential(
                nn.ConvTranspose2d(cin, cout, k, 2, 1, bias=norm != "batch"),
                make_norm(norm, cout),
                nn.ReLU(inplace=True),
            )
        else:
            # resize, then convolve: no checkerboard artefacts (Odena et al., 2016)
            self.conv = ConvBlock(cin, cout, k, 1, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode != "transpose":
            x = F.interpolate(x, scale_factor=2, mode=self.mode, align_corners=False if self.mode == "bilinear" else None)
        return self.conv(x)


class Generator(nn.Module):
    """G_i: shared code -> image in [-1, 1]. ``shared`` is the same object in G_a and G_b."""

    def __init__(self, out_channels: int, config: UNITConfig, shared: nn.ModuleList):
        super().__init__()
        self.shared = shared
        c = config.latent_channels
        layers: list[nn.Module] = [ResBlock(c, config.norm) for _ in range(config.n_res_blocks - config.n_shared)]
        for _ in range(config.n_downsample):
            layers.append(Upsample(c, c // 2, config.norm, config.upsample))
            c //= 2
        layers.append(ConvBlock(c, out_channels, 7, 1, "none", "tanh"))
        self.private = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for block in self.shared:
            z = block(z)
        return self.private(z)


def _dis_conv(config: UNITConfig, *args, **kwargs) -> nn.Conv2d:
    conv = nn.Conv2d(*args, **kwargs)
    if config.dis_spectral_norm:
        conv = nn.utils.parametrizations.spectral_norm(conv)
    return conv


def _dis_layers(in_channels: int, config: UNITConfig) -> list[nn.Module]:
    """Per-scale PatchGAN layers; the last one maps to one real/fake logit per patch."""
    layers: list[nn.Module] = []
    c_in, c = in_channels, config.dis_channels
    for i in range(config.dis_layers):
        norm = "none" if i == 0 else config.dis_norm
        layers.append(
            nn.Sequential(
                _dis_conv(config, c_in, c, 4, 2, 1, bias=norm != "batch"),
                make_norm(norm, c),
                nn.LeakyReLU(0.2, inplace=True),
            )
        )
        c_in, c = c, min(2 * c, 8 * config.dis_channels)
    layers.append(_dis_conv(config, c_in, 1, 1, 1, 0))
    return layers


class Discriminator(nn.Module):
    """Multi-scale PatchGAN. ``shared_tails[s]`` holds the layers shared with the other domain."""

    def __init__(self, in_channels: int, config: UNITConfig, shared_tails: nn.ModuleList | None):
        super().__init__()
        n_shared = config.dis_shared_layers
        self.private = nn.ModuleList()
        for _ in range(config.dis_scales):
            layers = _dis_layers(in_channels, config)
            self.private.append(nn.Sequential(*layers[: len(layers) - n_shared]))
        self.shared = shared_tails  # ModuleList of Sequential per scale, or None

    def _scales(self, x: torch.Tensor):
        """(input, layers) per scale: the image pooled once more for each coarser scale, and
        that scale's private head followed by its shared tail."""
        for s, head in enumerate(self.private):
            tail = self.shared[s] if self.shared is not None else ()
            yield x, [*head, *tail]
            if s + 1 < len(self.private):
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for h, layers in self._scales(x):
            for layer in layers:
                h = layer(h)
            outs.append(h)
        return outs

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations of every layer but the logit layer, at every scale (for feature
        matching); the same computation as ``forward`` up to the logits."""
        feats = []
        for h, layers in self._scales(x):
            for layer in layers[:-1]:
                h = layer(h)
                feats.append(h)
        return feats


def _shared_dis_tails(config: UNITConfig) -> nn.ModuleList | None:
    n = config.dis_shared_layers
    if n == 0:
        return None
    # input channels of the first layer never matter for the tail, so any value works here
    return nn.ModuleList(nn.Sequential(*_dis_layers(1, config)[-n:]) for _ in range(config.dis_scales))


def reframe(x: torch.Tensor, factor: float, fill: tuple[float, ...] | None = None) -> torch.Tensor:
    """``x`` with its content resized by ``factor`` about the image centre, H and W kept: > 1
    enlarges (the border is cropped), < 1 shrinks. Pixels the shrunk image no longer covers take
    ``fill`` (one value per channel, the target domain's background: config.frame_fill_a/b) or,
    without one, each image's border colour (the median of its outermost ring: white around an
    emoji, black around a digit); extending the edge pixels instead smears objects that touch the
    border outward (the Twitter test emoji shrunk that way: FID 83.1 against Google; with the border
    colour 75.9, with white 73.15). Bilinear, differentiable."""
    if factor == 1.0:
        return x
    if fill is None:
        colour = border_colour(x)
    else:
        if len(fill) != x.shape[1]:
            raise ValueError(f"a fill of {len(fill)} value(s) for images of {x.shape[1]} channel(s)")
        colour = torch.tensor(fill, device=x.device, dtype=x.dtype)[None, :, None, None]
    return zoom_about_centre(x - colour, torch.full((x.shape[0],), float(factor))) + colour


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # a spectrally normalised conv computes .weight from .original on every access:
            # initialising the computed tensor would change nothing
            normalised = parametrize.is_parametrized(m, "weight")
            weight = m.parametrizations.weight.original if normalised else m.weight
            nn.init.kaiming_normal_(weight, a=0.0, mode="fan_in", nonlinearity="relu")
            sn = m.parametrizations.weight[0] if normalised else None
            if hasattr(sn, "_power_method"):
                # and its power-iteration vectors still belong to the old weight: converge them
                # to the new one as registration does (15 iterations). A torch without this
                # (private) method converges them over the first training steps instead.
                with torch.no_grad():
                    sn._power_method(sn._reshape_weight_to_matrix(weight), 15)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def mirror_private_layers(model: "UNIT") -> None:
    """Copy E_a's and G_a's private parameters into E_b and G_b wherever the shapes match
    (all of them when both domains have the same channel count; otherwise all but the
    image-side convolution). The copies are values, not shared tensors."""
    for part in (model.enc, model.gen):
        source = part["a"].private.state_dict()
        target = part["b"].private.state_dict()
        for name, value in target.items():
            if name in source and source[name].shape == value.shape:
                value.copy_(source[name])


class UNIT(nn.Module):
    """Two coupled VAEs (E_a, G_a), (E_b, G_b) over one shared latent space, and their critics.

    ``UNIT(config)`` is the whole architecture: the config is saved with the weights and
    rebuilds the model exactly. Discriminators are optional so that inference-only files
    stay small; the trainer attaches fresh ones when fine-tuning from such a file.
    """

    def __init__(self, config: UNITConfig, discriminators: bool = True):
        super().__init__()
        config.validate()
        self.config = config
        lat = config.latent_channels
        shared_enc = nn.ModuleList(ResBlock(lat, config.norm) for _ in range(config.n_shared))
        shared_gen = nn.ModuleList(ResBlock(lat, config.norm) for _ in range(config.n_shared))
        self.enc = nn.ModuleDict({d: Encoder(config.channels(d), config, shared_enc) for d in DOMAINS})
        self.gen = nn.ModuleDict({d: Generator(config.channels(d), config, shared_gen) for d in DOMAINS})
        init_weights(self.enc)
        init_weights(self.gen)
        if config.mirrored_init:
            mirror_private_layers(self)
        self.dis: nn.ModuleDict | None = None
        if discriminators:
            self.attach_discriminators()

    def attach_discriminators(self) -> None:
        tails = _shared_dis_tails(self.config)
        self.dis = nn.ModuleDict({d: Discriminator(self.config.channels(d), self.config, tails) for d in DOMAINS})
        init_weights(self.dis)
        ref = next(self.enc.parameters())
        self.dis.to(device=ref.device)

    @property
    def has_discriminators(self) -> bool:
        return self.dis is not None

    # --- the method ------------------------------------------------------------------
    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Mean of q(z|x) for an image of ``domain``; H and W must be multiples of the stride."""
        return self.enc[check_domain(domain)](x)

    @staticmethod
    def sample(mu: torch.Tensor, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
        """z = mu + eta, eta ~ N(0, scale^2 I): the unit-variance reparameterisation of the paper
        at scale 1 (config.latent_noise)."""
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + noise * scale if scale != 1.0 else mu + noise

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        return self.gen[check_domain(domain)](z)

    def frame_factor(self, source: str, target: str) -> float:
        """The resize a code of ``source`` gets when decoded into ``target`` (config.frame_scale):
        1 within a domain and for codes of no single domain ('prior', 'mixed')."""
        if source == target or source not in DOMAINS:
            return 1.0
        scale = float(self.config.frame_scale)
        return scale if check_domain(target) == "b" else 1.0 / scale

    def reframe_into(self, x: torch.Tensor, source: str, target: str) -> torch.Tensor:
        """``x``, decoded into ``target`` from a code of ``source``, in ``target``'s frame."""
        return reframe(x, self.frame_factor(source, target), self.config.frame_fill(check_domain(target)))

    def translate(self, x: torch.Tensor, source: str, target: str | None = None) -> torch.Tensor:
        target = other_domain(source) if target is None else check_domain(target)
        return self.reframe_into(self.decode(self.encode(x, source), target), source, target)

    def forward(self, x: torch.Tensor, source: str = "a") -> torch.Tensor:
        return self.translate(x, source)

    # --- bookkeeping ---------------------------------------------------------------
    def translator_parameters(self):
        """Parameters of E_a, E_b, G_a, G_b, each shared tensor once."""
        seen: set[int] = set()
        for module in (self.enc, self.gen):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def discriminator_parameters(self):
        if self.dis is None:
            return iter(())
        return self.dis.parameters()  # nn.Module.parameters() already yields shared tensors once

    def num_parameters(self) -> dict[str, int]:
        count = lambda ps: sum(p.numel() for p in ps)  # noqa: E731
        return {
            "translator": count(self.translator_parameters()),
            "discriminators": count(self.discriminator_parameters()),
        }


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H, W up to a multiple of the network stride; returns (padded, (H, W)).

    Sides are also padded to at least max(8, 2 * stride) px, the smallest input whose
    feature maps every reflect-padded layer can handle. Reflect padding is used where the
    image is large enough (no artificial border), replicate for tiny strips.
    """
    h, w = x.shape[-2:]
    floor = -(-max(8, 2 * multiple) // multiple) * multiple
    th = max(-(-h // multiple) * multiple, floor)
    tw = max(-(-w // multiple) * multiple, floor)
    ph, pw = th - h, tw - w
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def latent_size(h: int, w: int, stride: int) -> tuple[int, int]:
    return math.ceil(h / stride), math.ceil(w / stride)
