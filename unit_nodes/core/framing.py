"""How large each domain draws its objects in the frame: the measurement behind config.frame_scale.

Two sets of objects on plain backgrounds (emoji styles, icons, digits) often differ in how much of
the frame an object fills: Twitter's emoji are drawn 1.06x larger than Google's. A convolutional
translator cannot resize a whole image, so the pair's config carries the ratio and every
translation is resized by it (``networks.reframe``). The measure is unpaired: each domain's mean
radius of gyration of its foreground, the foreground being what differs from the image's border
colour. Photos have no plain background and no such ratio: they are refused, not guessed.
"""

from __future__ import annotations

import torch

from .config import FRAME_SCALE_BOUNDS, frame_scale_allowed
from .tensors import border_ring

# how far (in [-1, 1] units, any channel) a pixel must be from the border colour to count as object
FOREGROUND_TOLERANCE = 0.08
# a domain has a plain background when at least this share of its images' outermost pixels is one colour
# (objects may touch the border: Twitter's emoji often fill the frame)
PLAIN_BORDER_SHARE = 0.5


class FrameScaleError(ValueError):
    """The images do not allow the measure (no plain background, no object); the message says which."""


def background_colour(images: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The domain's background colour [C] (the median of all border pixels) and the share of
    border pixels within FOREGROUND_TOLERANCE of it."""
    ring = border_ring(images.float()).transpose(0, 1).reshape(images.shape[1], -1)  # [C, N * ring]
    colour = ring.median(dim=-1).values
    share = float(((ring - colour[:, None]).abs().amax(0) <= FOREGROUND_TOLERANCE).float().mean())
    return colour, share


def colour_hex(colour: torch.Tensor) -> str:
    """A colour [C] in [-1, 1] as the "#rrggbb" of config.frame_fill_a/b (gray for one channel)."""
    values = [round((float(v) + 1.0) * 127.5) for v in colour.clamp(-1, 1)]
    values = values * 3 if len(values) == 1 else values
    return "#" + "".join(f"{v:02x}" for v in values)


def object_radii(images: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Per image [N, C, H, W] in [-1, 1]: the radius of gyration of its foreground (the pixels
    that differ from ``background`` [C]) as a fraction of the shorter side; NaN without one."""
    x = images.float()
    fg = ((x - background[None, :, None, None]).abs().amax(1) > FOREGROUND_TOLERANCE).float()  # [N, H, W]
    h, w = fg.shape[-2:]
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    mass = fg.sum((1, 2))
    safe = mass.clamp_min(1)
    cy = (fg * ys).sum((1, 2)) / safe
    cx = (fg * xs).sum((1, 2)) / safe
    d2 = (ys - cy[:, None, None]) ** 2 + (xs - cx[:, None, None]) ** 2
    radius = ((fg * d2).sum((1, 2)) / safe).sqrt() / min(h, w)
    return torch.where(mass > 0, radius, torch.full_like(radius, float("nan")))


def estimate_frame_scale(images_a: torch.Tensor, images_b: torch.Tensor, names=("A", "B")) -> float:
    """How much larger objects are drawn in B than in A (config.frame_scale): the ratio of the two
    domains' mean object radii. Raises FrameScaleError when a domain has no plain background (fewer
    than half of its border pixels of one colour) or no object, or when the ratio is outside the
    field's bounds (config.FRAME_SCALE_RANGE)."""
    return _estimate(images_a, images_b, names)[0]


def _estimate(images_a: torch.Tensor, images_b: torch.Tensor, names) -> tuple[float, list[torch.Tensor]]:
    """``estimate_frame_scale`` and the two background colours [C] it measured the objects against."""
    means, colours = [], []
    for images, name in ((images_a, names[0]), (images_b, names[1])):
        colour, share = background_colour(images)
        if share < PLAIN_BORDER_SHARE:
            raise FrameScaleError(
                f"domain {name}: only {share:.0%} of the images' border pixels share one colour; the frame scale is "
                f"a measure for objects on a plain background (emoji, icons, digits), not for photos: "
                f"leave frame_scale at 1")
        radii = object_radii(images, colour)
        usable = radii[~radii.isnan()]
        if len(usable) == 0:
            raise FrameScaleError(f"domain {name}: no image shows anything but its background colour")
        means.append(float(usable.mean()))
        colours.append(colour)
    scale = means[1] / means[0]
    if not frame_scale_allowed(scale):
        raise FrameScaleError(f"objects in {names[1]} measure {scale:.3g}x those in {names[0]}, outside the "
                              f"{FRAME_SCALE_BOUNDS} a translation may resize by: are these two domains of one kind of object?")
    return scale, colours


def _sample(dataset, limit: int) -> torch.Tensor:
    """Up to ``limit`` images of a dataset (items ``(image, label)``), evenly spaced over it."""
    n = len(dataset)
    picks = range(n) if n <= limit else (i * n // limit for i in range(limit))
    return torch.stack([dataset[i][0] for i in picks])


def measure_framing(dataset_a, dataset_b, names=("A", "B"), limit: int = 2000) -> tuple[float, str, str]:
    """From up to ``limit`` images of each training set (read once): the frame scale rounded to 4
    decimals (the value a config records) and each domain's background colour as
    config.frame_fill_a/b; raises FrameScaleError as ``estimate_frame_scale`` does."""
    scale, (colour_a, colour_b) = _estimate(_sample(dataset_a, limit), _sample(dataset_b, limit), names)
    return round(scale, 4), colour_hex(colour_a), colour_hex(colour_b)
