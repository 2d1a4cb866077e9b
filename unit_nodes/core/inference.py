"""Inference on images of any size: encode to the shared latent, decode to a domain, cycle.

Images are float tensors [B, C, H, W] in [-1, 1]. Inputs are reflect-padded up to the
network stride and every output is cropped back to the input's size, so any H, W works.
A gray model accepts RGB input (converted by luminance) and an RGB model accepts gray
input (broadcast), so graphs need no manual conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import tiling
from .networks import UNIT, check_domain, other_domain, pad_to_multiple
from .tensors import match_channels, model_device_dtype, to_model_range, to_unit_range

TileArg = int | str | None  # a tile side in px, 'auto' (tile only when too big) or None (never)

# A model learns its features at the scale of its training images: a USPS digit of 16 px fed to
# a 32 px digit model is read as a quarter-size digit, and an independent classifier then reads
# 40 % of the translations (87 % when the same images are first resized to 32 px). Inputs whose
# shorter side is this factor or more away from the training size get a warning.
SCALE_WARNING_FACTOR = 2.0
RESIZE_MODES = ("none", "training")


@dataclass
class SharedLatent:
    """A code in UNIT's shared latent space, with what is needed to decode it to full size.

    ``code``: [B, C_latent, h, w]; ``source``: the domain it was encoded from ('a', 'b' or
    'prior'); ``image_size``: the (H, W) of the original image, restored on decode.
    """

    code: torch.Tensor
    source: str
    image_size: tuple[int, int]

    @property
    def batch_size(self) -> int:
        return self.code.shape[0]

    def to(self, device) -> "SharedLatent":
        return SharedLatent(self.code.to(device), self.source, self.image_size)


def optimize_for_inference(model: UNIT) -> UNIT:
    """Put ``model`` (in place) in eval mode with channels_last weights, the faster layout for
    its convolutions on CPU (docs/PERFORMANCE.md; on CUDA translation in this layout is not yet
    measured, and training in it is slower there); inputs need no change (a conv with
    channels_last weights gives channels_last outputs). Results equal the default layout's up
    to float rounding; saving and training such a model work unchanged."""
    model.eval()
    return model.to(memory_format=torch.channels_last)


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"images must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"images must be floating point in [-1, 1], got dtype {x.dtype}")


def resolve_tile(model: UNIT, tile: TileArg, height: int, width: int, batch: int) -> int | None:
    """The tile side to use (None: whole image) for ``tile`` = int | 'auto' | None | 0."""
    if tile is None or tile == 0:
        return None
    if tile == "auto":
        device, _ = model_device_dtype(model)
        return tiling.auto_tile(model.config, height, width, batch, device)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a positive integer (px), 'auto' or None, got {tile!r}")
    if tile >= height and tile >= width:
        return None
    return tile


@torch.inference_mode()
def encode(
    model: UNIT,
    images: torch.Tensor,
    domain: str,
    sample: bool = False,
    seed: int | None = None,
    tile: TileArg = "auto",
    overlap: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SharedLatent:
    """The mean of q(z|x) (default) or, with ``sample=True``, z = mean + eta, eta ~ N(0, I) times
    config.latent_noise (the noise the model was trained with).

    ``tile``: see :func:`translate`."""
    check_domain(domain)
    _check_images(images)
    device, dtype = model_device_dtype(model)
    side = resolve_tile(model, tile, images.shape[-2], images.shape[-1], images.shape[0])
    if side is not None:
        mu, size = tiling.encode_tiled(model, images, domain, side, overlap, progress=progress)
    else:
        x = match_channels(images.to(device=device, dtype=dtype), model.config.channels(domain))
        x, size = pad_to_multiple(x, model.config.stride)
        mu = model.encode(x, domain)
    if sample:
        gen = torch.Generator(device=mu.device)
        gen.manual_seed(int(seed) if seed is not None else torch.seed())
        mu = UNIT.sample(mu, gen, float(model.config.latent_noise))
    return SharedLatent(mu, domain, size)


@torch.inference_mode()
def decode(
    model: UNIT,
    latent: SharedLatent,
    domain: str,
    tile: TileArg = "auto",
    overlap: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """G_domain(code), cropped to the encoded image's size. ``tile``: see :func:`translate`."""
    check_domain(domain)
    device, dtype = model_device_dtype(model)
    s = model.config.stride
    b, _, hl, wl = latent.code.shape
    side = resolve_tile(model, tile, hl * s, wl * s, b)
    if side is not None:
        out = tiling.decode_tiled(model, latent.code, domain, side, overlap, progress=progress)
    else:
        out = model.decode(latent.code.to(device=device, dtype=dtype), domain)
    h, w = latent.image_size
    return model.reframe_into(out[..., :h, :w], latent.source, domain)


def training_scale_size(model: UNIT, height: int, width: int) -> tuple[int, int]:
    """(H, W) with the shorter side at the model's training size and the aspect ratio kept."""
    factor = model.config.image_size / min(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


def scale_warning(model: UNIT, height: int, width: int) -> str | None:
    """A one-line warning when ``height`` x ``width`` images are far from the training scale."""
    size = model.config.image_size
    factor = min(height, width) / size
    if 1 / SCALE_WARNING_FACTOR < factor < SCALE_WARNING_FACTOR:
        return None
    return (f"images of {height}x{width} px are {factor:.3g}x the {size} px this model was trained at; "
            f"translations this far from the training scale are unreliable: resize them to the training "
            f"size (resize 'training') or use a model trained at their scale")


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of [-1, 1] images (antialiased when shrinking)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    out = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out.clamp(-1.0, 1.0).to(images.dtype)


def check_resize(resize: str) -> str:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {list(RESIZE_MODES)}, got {resize!r}")
    return resize


def translate(
    model: UNIT,
    images: torch.Tensor,
    source: str,
    target: str | None = None,
    sample: bool = False,
    seed: int | None = None,
    batch_size: int | None = None,
    tile: TileArg = "auto",
    overlap: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    resize: str = "none",
) -> torch.Tensor:
    """G_target(E_source(x)); ``target`` defaults to the other domain. Batches are chunked.

    ``resize='training'`` translates the images at the model's training scale (shorter side
    resized to ``config.image_size``) and resizes the result back to the input's size.

    Large images are translated in overlapping, blended tiles (see ``tiling``): ``tile`` is
    the tile side in px, 'auto' (default: tiles only when the estimated memory of a
    whole-image pass exceeds the budget of ``tiling.auto_tile``) or None (never tile);
    ``overlap`` is the blend width in px (default tile / 4, at most 64); ``progress(done, total)`` is
    called after each tile of a tiled chunk (it may raise to cancel).
    """
    target = other_domain(source) if target is None else check_domain(target)
    _check_images(images)
    if check_resize(resize) == "training":
        size = tuple(images.shape[-2:])
        scaled = resize_images(images, training_scale_size(model, *size))
        out = translate(model, scaled, source, target, sample, seed, batch_size, tile, overlap, progress)
        return resize_images(out, size)
    chunks = [images] if not batch_size else list(images.split(batch_size))
    outs = []
    for i, chunk in enumerate(chunks):
        chunk_seed = None if seed is None else int(seed) + i
        side = resolve_tile(model, tile, chunk.shape[-2], chunk.shape[-1], chunk.shape[0])
        if side is not None:
            outs.append(tiling.translate_tiled(model, chunk, source, target, side, overlap, sample=sample,
                                               seed=chunk_seed, progress=progress))
        else:
            outs.append(decode(model, encode(model, chunk, source, sample, chunk_seed, tile=None), target, tile=None))
    return torch.cat(outs) if len(outs) > 1 else outs[0]


def cycle_reconstruct(
    model: UNIT,
    images: torch.Tensor,
    source: str,
    sample: bool = False,
    seed: int | None = None,
    tile: TileArg = "auto",
    resize: str = "none",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(translation, cycle): x -> G_other(E_source(x)) -> G_source(E_other(.)).
    ``resize``: see :func:`translate` (both legs run at the training scale)."""
    target = other_domain(source)
    translated = translate(model, images, source, target, sample, seed, tile=tile, resize=resize)
    cycled = translate(model, translated, target, source, sample, None if seed is None else seed + 1, tile=tile,
                       resize=resize)
    return translated, cycled


def reconstruct(model: UNIT, images: torch.Tensor, domain: str) -> torch.Tensor:
    """Within-domain VAE reconstruction G_d(E_d(x))."""
    return translate(model, images, domain, domain)


def prior_latent(
    model: UNIT, batch_size: int, height: int, width: int, seed: int | None = None
) -> SharedLatent:
    """A code drawn from the N(0, I) prior, decodable to an image of ``height`` x ``width``."""
    if batch_size < 1 or height < 1 or width < 1:
        raise ValueError(f"batch_size, height and width must be >= 1, got {batch_size}, {height}, {width}")
    device, dtype = model_device_dtype(model)
    s = model.config.stride
    shape = (batch_size, model.config.latent_channels, -(-height // s), -(-width // s))
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) if seed is not None else torch.seed())
    code = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
    return SharedLatent(code, "prior", (height, width))


def interpolate(l0: SharedLatent, l1: SharedLatent, t: float) -> SharedLatent:
    """Linear interpolation (1 - t) * l0 + t * l1 in the shared space."""
    if l0.code.shape[1:] != l1.code.shape[1:]:
        raise ValueError(
            f"cannot interpolate latents of different sizes: {tuple(l0.code.shape[1:])} vs {tuple(l1.code.shape[1:])}"
            " (encode images of the same size)"
        )
    b0, b1 = l0.batch_size, l1.batch_size
    if b0 != b1 and 1 not in (b0, b1):
        raise ValueError(f"cannot interpolate batches of {b0} and {b1} latents (sizes must match or one be 1)")
    c1 = l1.code.to(l0.code.device, l0.code.dtype)
    code = torch.lerp(l0.code, c1, float(t))
    size = l0.image_size if b0 >= b1 else l1.image_size
    source = l0.source if l0.source == l1.source else "mixed"
    return SharedLatent(code, source, size)


def interpolation_path(l0: SharedLatent, l1: SharedLatent, steps: int) -> SharedLatent:
    """``steps`` codes evenly spaced from ``l0`` to ``l1`` (both ends included) as one batch,
    ordered by position along the path (all of ``l0``'s batch at t=0 first)."""
    if int(steps) < 2:
        raise ValueError(f"an interpolation path needs steps >= 2 (both ends), got {steps}")
    ts = torch.linspace(0.0, 1.0, int(steps)).tolist()
    parts = [interpolate(l0, l1, t) for t in ts]
    return SharedLatent(torch.cat([p.code for p in parts]), parts[0].source, parts[0].image_size)


def abs_error_map(images: torch.Tensor, reconstruction: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(|x - y| per pixel in [0, 1] units, its mean) for images in [-1, 1]; ``images`` are
    first brought to the reconstruction's channels (RGB -> gray, alpha dropped)."""
    _check_images(images)
    _check_images(reconstruction)
    x = match_channels(images.to(reconstruction.device, reconstruction.dtype), reconstruction.shape[1])
    if x.shape != reconstruction.shape:
        raise ValueError(f"cannot compare images of shape {tuple(x.shape)} with {tuple(reconstruction.shape)}")
    err = ((x - reconstruction).abs() * 0.5).clamp(0.0, 1.0)
    return err, float(err.mean())
