"""The pack's socket types and the inputs several nodes share."""

from __future__ import annotations

import logging

from comfy_api.v0_0_2 import io

CATEGORY = "UNIT"

UNITModel = io.Custom("UNIT_MODEL")
UNITLatent = io.Custom("UNIT_LATENT")

SEED_MAX = 2**63 - 1


def model_input() -> io.Input:
    return UNITModel.Input("model", tooltip="A UNIT model (from Load UNIT Model or Train UNIT).")


def domain_input(name: str, tooltip: str, default: str = "A") -> io.Input:
    return io.Combo.Input(name, options=["A", "B"], default=default, tooltip=tooltip)


def mode_input() -> io.Input:
    return io.Combo.Input(
        "mode", options=["mean", "sample"], default="mean",
        tooltip="mean: the mean of q(z|x), deterministic. sample: mean + N(0, I) noise drawn with the seed "
                "(how UNIT samples during training).",
    )


def seed_input() -> io.Input:
    return io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                        tooltip="Seed of the noise; only used when mode is 'sample'.")


def tile_input() -> io.Input:
    return io.Int.Input(
        "tile_size", default=0, min=0, max=8192, step=64, optional=True,
        tooltip="0 = automatic: images too large for memory are translated in overlapping, smoothly "
                "blended tiles. A number forces tiles of that many pixels (a multiple of the model's stride).")


RESIZE_CHOICES = {"as is": "none", "training size": "training"}


def resize_input() -> io.Input:
    return io.Combo.Input(
        "resize", options=list(RESIZE_CHOICES), default="as is", optional=True,
        tooltip="as is: translate at the image's own size (a warning is logged when it is 2x or more away from "
                "the size the model was trained at). training size: resize so the shorter side equals the "
                "model's training size, translate, and resize the result back to the input's size. Use it "
                "for small images or a model trained on small images (a 16 px digit with a 32 px model).")


def resize_argument(resize: str) -> str:
    if resize not in RESIZE_CHOICES:
        raise ValueError(f"resize must be one of {list(RESIZE_CHOICES)}, got {resize!r}")
    return RESIZE_CHOICES[resize]


def warn_scale(model, image, resize: str) -> None:
    """Log (once per call) when images are far from the model's training scale."""
    if resize != "none":
        return
    from ..core.inference import scale_warning

    message = scale_warning(model, *image.shape[-2:])
    if message:
        logging.warning("[unit-nodes] %s", message)


def tile_argument(tile_size: int):
    return "auto" if int(tile_size) == 0 else int(tile_size)


def tile_progress():
    """A per-tile progress callback: ComfyUI's progress bar, and Cancel between tiles."""
    from comfy import model_management
    from comfy.utils import ProgressBar

    bars = {}

    def progress(done: int, total: int) -> None:
        bar = bars.get(total) or bars.setdefault(total, ProgressBar(total))
        bar.update_absolute(done, total)
        model_management.throw_exception_if_processing_interrupted()

    return progress
