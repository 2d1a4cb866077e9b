"""Tiled inference for images too large for one pass.

The networks are fully convolutional, so an image can be processed in overlapping tiles:

* every tile is cut with a *context* halo of at least the network's receptive radius
  (clipped at the image border), run through the network, and only its core is kept. With
  per-pixel layers (batch norm in eval mode, no norm) the core then equals the whole-image
  result up to float rounding: every output pixel saw exactly the input it sees whole;
* neighbouring cores overlap by ``overlap`` px and are blended with raised-cosine ramps
  normalised by the summed weights, so whatever still differs between tiles (instance
  norm statistics, per-tile noise) fades across the overlap instead of making a seam;
* tile offsets are multiples of the network stride, so every tile sees the same
  down-sampling grid as the whole image.

Instance norm normalises by per-image statistics, which a tile only sees in part. With
``norm_stats='global'`` those statistics are measured once on the whole image, down-scaled
to fit in one pass, and every tile is normalised with them instead of its own.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import UNITConfig
from .networks import pad_to_multiple
from .tensors import match_channels, model_device_dtype

DEFAULT_TILE = 512
MIN_TILE = 64


# --- geometry ---------------------------------------------------------------------------
def receptive_radius(config: UNITConfig, part: str = "translate") -> int:
    """Upper bound (image px, rounded up to the stride) on how far an output pixel looks into
    its input, for ``part`` = 'translate' (E then G), 'encode' or 'decode'."""
    if part not in ("translate", "encode", "decode"):
        raise ValueError(f"part must be 'translate', 'encode' or 'decode', got {part!r}")
    top = config.stride  # scale of the latent grid in image px
    res = 2 * config.n_res_blocks * top  # residual blocks: two 3x3 convs each, at the latent scale
    enc = 3 + sum(2 * 2**i for i in range(config.n_downsample)) + res
    dec = res + 3
    for i in range(config.n_downsample):
        new = top // 2 ** (i + 1)  # scale after this up-sampling step
        # 5x5 conv + nearest rounding | 3x3 conv + bilinear's one low-res neighbour | 4x4 transpose
        dec += 2 * new if config.upsample == "transpose" else 3 * new
    r = {"translate": enc + dec, "encode": enc, "decode": dec}[part]
    return _round_up(r, config.stride)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px, neighbours overlapping by
    at least ``overlap`` px, every start a multiple of ``align`` (``length`` and ``tile`` must be
    multiples of ``align``)."""
    if tile >= length:
        return [0]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def balanced_tile(length: int, tile: int, overlap: int, align: int = 1) -> int:
    """The tile side (<= ``tile``, a multiple of ``align``) that covers ``length`` px with the
    fewest tiles, spread evenly. Cutting ``tile``-sized tiles and pushing the last one back to
    the border can make it overlap its neighbour by most of a tile, and every tile also computes
    a halo: evening them out keeps the extra work to what the count of tiles requires."""
    if tile >= length:
        return length
    count = -(-(length - overlap) // (tile - overlap))
    return min(tile, _round_up(-(-(length + (count - 1) * overlap) // count), align))


def ramp_window(size: int, ramp_before: int, ramp_after: int, device=None) -> torch.Tensor:
    """1-D weights: raised-cosine rise over ``ramp_before`` px, 1 inside, fall over ``ramp_after``.

    sin^2 rising against cos^2 falling over the same span sums to exactly 1, so overlapping
    tiles placed ``tile - overlap`` apart form a partition of unity; weights stay > 0 so the
    normalisation never divides by zero even where spacing is irregular.
    """
    w = torch.ones(size, device=device)
    if ramp_before > 0:
        t = (torch.arange(ramp_before, device=device) + 0.5) / ramp_before
        w[:ramp_before] = torch.sin(t * math.pi / 2) ** 2
    if ramp_after > 0:
        t = (torch.arange(ramp_after, device=device) + 0.5) / ramp_after
        w[size - ramp_after:] = torch.cos(t * math.pi / 2) ** 2
    return w


# --- memory estimate and the automatic decision ----------------------------------------------
def estimate_translation_bytes(config: UNITConfig, height: int, width: int, batch: int = 1,
                               dtype_bytes: int = 4) -> int:
    """Peak activation memory of one whole-image translation (inference, no autograd).

    The peak sits in the last up-sampling stage: the 2x-upsampled map (2c channels at full
    resolution), its reflect-padded copy and the conv output (c channels), plus the input and
    output images. The factor 1.75 covers the rest (oneDNN scratch and weight reorders): it is
    calibrated on the measured peak-RSS increase of a 512 px image256 translation on CPU,
    2270 B/px NCHW and 1690 B/px channels_last (docs/PERFORMANCE.md).
    """
    c = config.base_channels
    per_pixel = (2 * c + 2 * c + c + 6) if config.n_downsample > 0 else 3 * c
    return int(per_pixel * dtype_bytes * height * width * batch * 1.75)


def available_memory_bytes(device: torch.device | str) -> int:
    """Memory a translation may use on ``device``: half the free GPU memory on CUDA, a quarter
    of MemAvailable (capped at 4 GiB) on CPU: the rest of the process and machine need room."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        avail = 8 << 30
    return int(min(avail * 0.25, 4 << 30))


BUDGET_ENV = "UNIT_TILE_BUDGET_MB"


def budget_from_environment() -> int | None:
    """The memory budget in bytes that ``UNIT_TILE_BUDGET_MB`` sets, or None when it is unset."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return None
    try:
        mb = float(text)
    except ValueError:
        mb = math.nan
    if not math.isfinite(mb) or mb <= 0:
        raise ValueError(f"the environment variable {BUDGET_ENV}={text!r} must be a positive number of "
                         f"megabytes (e.g. 2048), or unset for an automatic budget")
    return int(mb * (1 << 20))


def auto_tile(
    config: UNITConfig,
    height: int,
    width: int,
    batch: int = 1,
    device: torch.device | str = "cpu",
    max_pixels: int | None = None,
    memory_budget: int | None = None,
    dtype_bytes: int = 4,
) -> int | None:
    """The tile size to use for an image of ``height`` x ``width``, or None to run it whole.

    Tiles are used when ``height * width`` exceeds ``max_pixels`` (if given) or the estimated
    peak memory exceeds ``memory_budget`` (default: :func:`available_memory_bytes`). The tile is
    the largest multiple of the stride (<= 1024 px) whose halo-padded tile fits the budget.
    Override the budget with the environment variable UNIT_TILE_BUDGET_MB.
    """
    if memory_budget is None:
        memory_budget = budget_from_environment()
        if memory_budget is None:
            memory_budget = available_memory_bytes(device)
    whole = estimate_translation_bytes(config, height, width, batch, dtype_bytes)
    too_many = max_pixels is not None and height * width > max_pixels
    if not too_many and whole <= memory_budget:
        return None
    s = config.stride
    ctx = receptive_radius(config)
    tile = 1024
    while tile > MIN_TILE:
        side = tile + 2 * ctx
        if estimate_translation_bytes(config, side, side, batch, dtype_bytes) <= memory_budget and (
            max_pixels is None or tile * tile <= max_pixels
        ):
            break
        tile //= 2
    return max(_round_up(tile, s), _round_up(MIN_TILE, s))


# --- the tiled map ---------------------------------------------------------------------------
def tiled_map(
    fn: Callable[[torch.Tensor, tuple[int, int, int, int]], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    context: int,
    align: int = 1,
    scale: tuple[int, int] = (1, 1),
    out_device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Apply a fully convolutional ``fn`` to ``x`` [B, C, H, W] tile by tile and blend.

    ``fn(crop, (top, left, bottom, right))`` receives a crop of ``x`` (with halo) and its box in
    ``x`` and must return the output for that crop, whose size is the crop's times
    ``scale = (num, den)``. H, W, ``tile``, ``overlap`` and ``context`` must be multiples of
    ``align`` (the caller pads). The result lives on ``out_device`` (default: ``x``'s device),
    so a GPU can translate tiles of an image held in CPU memory. ``progress(done, total)`` is
    called after each tile (a node's progress bar; it may raise to cancel).
    """
    num, den = scale
    b, _, h, w = x.shape
    for name, v in (("height", h), ("width", w), ("tile", tile), ("overlap", overlap), ("context", context)):
        if v % align:
            raise ValueError(f"tiled_map: {name} {v} is not a multiple of the alignment {align}")
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise ValueError(f"tile must be >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    out_device = x.device if out_device is None else torch.device(out_device)
    th, tw = balanced_tile(h, tile, overlap, align), balanced_tile(w, tile, overlap, align)
    ys, xs = tile_starts(h, th, overlap, align), tile_starts(w, tw, overlap, align)
    out = None
    weight_sum = torch.zeros(h * num // den, w * num // den, device=out_device)
    for yi, y0 in enumerate(ys):
        for xi, x0 in enumerate(xs):
            top, left = max(0, y0 - context), max(0, x0 - context)
            bottom, right = min(h, y0 + th + context), min(w, x0 + tw + context)
            y = fn(x[:, :, top:bottom, left:right], (top, left, bottom, right))
            # keep the core: drop the halo in output units
            cy0, cx0 = (y0 - top) * num // den, (x0 - left) * num // den
            ch, cw = th * num // den, tw * num // den
            core = y[:, :, cy0:cy0 + ch, cx0:cx0 + cw].to(out_device, torch.float32)
            if out is None:
                out = torch.zeros(b, y.shape[1], h * num // den, w * num // den, device=out_device)
            ov = overlap * num // den
            wy = ramp_window(ch, ov if yi > 0 else 0, ov if yi + 1 < len(ys) else 0, out_device)
            wx = ramp_window(cw, ov if xi > 0 else 0, ov if xi + 1 < len(xs) else 0, out_device)
            wgt = wy[:, None] * wx[None, :]
            oy, ox = y0 * num // den, x0 * num // den
            out[:, :, oy:oy + ch, ox:ox + cw].addcmul_(core, wgt)
            weight_sum[oy:oy + ch, ox:ox + cw] += wgt
            del y, core
            if progress is not None:
                progress(yi * len(xs) + xi + 1, len(ys) * len(xs))
    out /= weight_sum
    return out


# --- global instance-norm statistics ----------------------------------------------------------
class _FixedStatsNorm:
    """Replaces an InstanceNorm2d's forward by normalisation with given per-(B, C) statistics."""

    def __init__(self, module: nn.InstanceNorm2d, mean: torch.Tensor, var: torch.Tensor):
        self.module, self.mean, self.var = module, mean, var

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        mean = self.mean.to(x.dtype)[:, :, None, None]
        inv = torch.rsqrt(self.var.to(x.dtype) + m.eps)[:, :, None, None]
        y = (x - mean) * inv
        if m.affine:
            y = y * m.weight[None, :, None, None] + m.bias[None, :, None, None]
        return y


@contextlib.contextmanager
def record_instance_norm_stats(model: nn.Module):
    """Within the block, every InstanceNorm2d of ``model`` records the per-(B, C) mean and
    (biased) variance of its input; yields the dict module -> list of (mean, var) per call."""
    stats: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    handles = []

    def hook(module, inputs):
        x = inputs[0]
        var, mean = torch.var_mean(x.float(), dim=(2, 3), correction=0)
        stats.setdefault(module, []).append((mean, var))

    for m in model.modules():
        if isinstance(m, nn.InstanceNorm2d):
            handles.append(m.register_forward_pre_hook(hook))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def fixed_instance_norm_stats(stats: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]):
    """Within the block, each recorded InstanceNorm2d normalises with its recorded statistics
    (its first recorded call: each norm runs once per translation)."""
    try:
        for m, calls in stats.items():
            m.forward = _FixedStatsNorm(m, *calls[0])
        yield
    finally:
        for m in stats:
            m.__dict__.pop("forward", None)


def has_instance_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.InstanceNorm2d) for m in model.modules())


def downscale_for_stats(x: torch.Tensor, max_side: int, align: int) -> torch.Tensor:
    """``x`` area-downscaled so its longer side is <= ``max_side`` (a multiple of ``align``)."""
    h, w = x.shape[-2:]
    f = max(h, w) / max_side
    if f <= 1:
        return x
    nh = max(align, _round_up(int(round(h / f)), align))
    nw = max(align, _round_up(int(round(w / f)), align))
    return F.interpolate(x, size=(nh, nw), mode="area")


# --- tiled encode / decode / translate ----------------------------------------------------------
NORM_STATS = ("tile", "global")


# The halo already gives every tile the context it needs, so the blend only has to hide what
# still differs between tiles (float rounding, instance-norm statistics): a narrow one does,
# and every pixel of overlap is computed twice.
MAX_DEFAULT_OVERLAP = 64


def _check_tiling_args(tile: int, overlap: int | None, norm_stats: str, stride: int) -> tuple[int, int]:
    if not isinstance(tile, int) or tile < stride:
        raise ValueError(f"tile must be an integer >= the network stride {stride}, got {tile!r}")
    tile = _round_up(tile, stride)
    overlap = min(tile // 4, MAX_DEFAULT_OVERLAP) if overlap is None else int(overlap)
    if overlap < 0 or overlap >= tile:
        raise ValueError(f"overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    if norm_stats not in NORM_STATS:
        raise ValueError(f"norm_stats must be one of {NORM_STATS}, got {norm_stats!r}")
    return tile, _round_up(overlap, stride) if overlap else 0


def _global_stats_context(model, x: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor],
                          norm_stats: str, stats_size: int, align: int):
    """Fixed instance-norm statistics measured by ``run`` on a down-scaled ``x`` (or nothing)."""
    if norm_stats != "global" or not has_instance_norm(model):
        return contextlib.nullcontext()
    small = downscale_for_stats(x, stats_size, align)
    with record_instance_norm_stats(model) as stats:
        run(small)
    return fixed_instance_norm_stats(stats)


@torch.inference_mode()
def translate_tiled(
    model,
    images: torch.Tensor,
    source: str,
    target: str,
    tile: int = DEFAULT_TILE,
    overlap: int | None = None,
    context: int | None = None,
    sample: bool = False,
    seed: int | None = None,
    norm_stats: str = "global",
    stats_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """G_target(E_source(x)) tile by tile; same contract as ``inference.translate``.

    ``tile``: core tile side in px (rounded up to the stride; tiles are evened out to cover the
    image with as few as that size allows); ``overlap``: blend width (default tile/4, at most
    64 px); ``context``: halo per side (default: the receptive radius);
    ``norm_stats``: 'global' normalises instance-norm layers with statistics of the whole
    image down-scaled to ``stats_size`` px, 'tile' with each tile's own.
    """
    cfg = model.config
    s = cfg.stride
    tile, overlap = _check_tiling_args(tile, overlap, norm_stats, s)
    context = receptive_radius(cfg) if context is None else _round_up(int(context), s)
    device, dtype = model_device_dtype(model)
    x = match_channels(images.to(dtype=dtype), cfg.channels(source))
    x, (h, w) = pad_to_multiple(x, s)
    noise = None
    if sample:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(int(seed) if seed is not None else torch.seed())
        lat = (x.shape[0], cfg.latent_channels, x.shape[2] // s, x.shape[3] // s)
        noise = (torch.randn(lat, generator=gen) * float(cfg.latent_noise)).to(device=device, dtype=dtype)

    def run_whole(small: torch.Tensor) -> torch.Tensor:
        mu = model.encode(small.to(device), source)
        if noise is not None:  # the generator's statistics are those of noisy codes
            eta = torch.randn(mu.shape, generator=gen.manual_seed(gen.initial_seed()), dtype=mu.dtype) * float(cfg.latent_noise)
            mu = mu + eta.to(device)
        return model.decode(mu, target)

    def run_tile(crop: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        mu = model.encode(crop.to(device), source)
        if noise is not None:
            t, l, b, r = box
            mu = mu + noise[:, :, t // s:b // s, l // s:r // s]
        return model.decode(mu, target)

    with _global_stats_context(model, x, run_whole, norm_stats, stats_size, s):
        out = tiled_map(run_tile, x, tile, overlap, context, align=s, out_device=device, progress=progress)
    # the change of frame is one resize of the whole image, not of each tile
    return model.reframe_into(out[..., :h, :w].to(dtype), source, target)


@torch.inference_mode()
def encode_tiled(model, images: torch.Tensor, domain: str, tile: int = DEFAULT_TILE,
                 overlap: int | None = None, context: int | None = None,
                 norm_stats: str = "global", stats_size: int = 1024,
                 progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """The mean code E_domain(x) computed tile by tile: (code, (H, W) of the image)."""
    cfg = model.config
    s = cfg.stride
    tile, overlap = _check_tiling_args(tile, overlap, norm_stats, s)
    context = receptive_radius(cfg, "encode") if context is None else _round_up(int(context), s)
    device, dtype = model_device_dtype(model)
    x = match_channels(images.to(dtype=dtype), cfg.channels(domain))
    x, size = pad_to_multiple(x, s)

    def run(crop, box=None):
        return model.encode(crop.to(device), domain)

    with _global_stats_context(model, x, run, norm_stats, stats_size, s):
        code = tiled_map(run, x, tile, overlap, context, align=s, scale=(1, s), out_device=device, progress=progress)
    return code.to(dtype), size


@torch.inference_mode()
def decode_tiled(model, code: torch.Tensor, domain: str, tile: int = DEFAULT_TILE,
                 overlap: int | None = None, context: int | None = None,
                 norm_stats: str = "global", stats_size: int = 1024,
                 progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """G_domain(code) tile by tile; ``tile``, ``overlap``, ``context`` are in image px."""
    cfg = model.config
    s = cfg.stride
    tile, overlap = _check_tiling_args(tile, overlap, norm_stats, s)
    context = receptive_radius(cfg, "decode") if context is None else _round_up(int(context), s)
    device, dtype = model_device_dtype(model)

    def run(crop, box=None):
        return model.decode(crop.to(device=device, dtype=dtype), domain)

    z = code
    with _global_stats_context(model, z, run, norm_stats, max(1, stats_size // s), 1):
        out = tiled_map(run, z, tile // s, overlap // s, context // s, align=1, scale=(s, 1), out_device=device,
                        progress=progress)
    return out.to(dtype)
