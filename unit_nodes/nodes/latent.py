"""Encode to Shared Latent, Decode to Domain, Sample Shared Latent, Interpolate Latents, Strip."""

from __future__ import annotations

from comfy import model_management
from comfy_api.v0_0_2 import io

from ..core import inference
from .layout import core_to_image, domain_key, image_to_core
from .models import check_handle, on_device
from .sockets import CATEGORY, SEED_MAX, UNITLatent, domain_input, mode_input, model_input, seed_input, tile_argument, tile_input, tile_progress

LATENT_TOOLTIP = "A code in UNIT's shared latent space, with the domain it came from and the image size to restore."


def check_latent(value, what: str = "latent") -> inference.SharedLatent:
    if not isinstance(value, inference.SharedLatent):
        raise ValueError(f"{what} must be a UNIT_LATENT (from Encode to Shared Latent or Sample Shared Latent), "
                         f"got {type(value).__name__}")
    return value


def _store(latent: inference.SharedLatent) -> inference.SharedLatent:
    return latent.to(model_management.intermediate_device())


class EncodeToSharedLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITEncode",
            display_name="Encode to Shared Latent",
            category=CATEGORY,
            description="Encodes images of one domain into UNIT's shared latent space (any size, any batch).",
            inputs=[
                model_input(),
                io.Image.Input("image", tooltip="Images of the chosen domain; RGBA loses its alpha, "
                                                "RGB is converted for gray models."),
                domain_input("domain", "The domain the images belong to (A or B of the model)."),
                mode_input(),
                seed_input(),
            ],
            outputs=[UNITLatent.Output(display_name="latent", tooltip=LATENT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, model, image, domain, mode="mean", seed=0) -> io.NodeOutput:
        handle = check_handle(model)
        x, d = image_to_core(image), domain_key(domain)
        with on_device(handle) as m:
            latent = inference.encode(m, x, d, sample=mode == "sample", seed=seed)
        return io.NodeOutput(_store(latent))


class DecodeToDomain(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITDecode",
            display_name="Decode to Domain",
            category=CATEGORY,
            description="Decodes shared latent codes into images of domain A or B, at the encoded images' size.",
            inputs=[
                model_input(),
                UNITLatent.Input("latent", tooltip=LATENT_TOOLTIP),
                domain_input("domain", "The domain to render the codes in: the source domain reconstructs, "
                                       "the other one translates.", default="B"),
                tile_input(),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The decoded images (RGB, original size).")],
        )

    @classmethod
    def execute(cls, model, latent, domain, tile_size=0) -> io.NodeOutput:
        handle = check_handle(model)
        latent, d = check_latent(latent), domain_key(domain)
        expected = handle.model.config.latent_channels
        if latent.code.shape[1] != expected:
            raise ValueError(f"latent has {latent.code.shape[1]} channels but this model's latent space has {expected}: "
                             f"decode with the model that encoded it")
        with on_device(handle) as m:
            out = inference.decode(m, latent, d, tile=tile_argument(tile_size), progress=tile_progress())
        return io.NodeOutput(core_to_image(out, model_management.intermediate_device()))


class SampleSharedLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITSamplePrior",
            display_name="Sample Shared Latent",
            category=CATEGORY,
            description="Draws codes from UNIT's N(0, I) prior; decoding them shows what each domain's generator makes of noise.",
            inputs=[
                model_input(),
                io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                             tooltip="Seed of the random codes."),
                io.Int.Input("width", default=64, min=1, max=4096, step=1, tooltip="Width in pixels of the decoded images."),
                io.Int.Input("height", default=64, min=1, max=4096, step=1, tooltip="Height in pixels of the decoded images."),
                io.Int.Input("batch_size", default=4, min=1, max=256, tooltip="How many codes to draw."),
            ],
            outputs=[UNITLatent.Output(display_name="latent", tooltip=LATENT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, model, seed, width, height, batch_size) -> io.NodeOutput:
        handle = check_handle(model)
        latent = inference.prior_latent(handle.model, int(batch_size), int(height), int(width), seed=int(seed))
        return io.NodeOutput(_store(latent))


class InterpolateLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITInterpolateLatents",
            display_name="Interpolate Latents",
            category=CATEGORY,
            description="Mixes two shared latent codes: (1 - factor) * from + factor * to.",
            inputs=[
                UNITLatent.Input("latent_from", tooltip="The code at factor 0."),
                UNITLatent.Input("latent_to", tooltip="The code at factor 1 (same image size as latent_from)."),
                io.Float.Input("factor", default=0.5, min=-1.0, max=2.0, step=0.05,
                               tooltip="0 gives latent_from, 1 gives latent_to; outside 0..1 extrapolates."),
            ],
            outputs=[UNITLatent.Output(display_name="latent", tooltip=LATENT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, latent_from, latent_to, factor) -> io.NodeOutput:
        l0, l1 = check_latent(latent_from, "latent_from"), check_latent(latent_to, "latent_to")
        return io.NodeOutput(_store(inference.interpolate(l0, l1, float(factor))))


class LatentInterpolationStrip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITInterpolationStrip",
            display_name="Latent Interpolation Strip",
            category=CATEGORY,
            description="Evenly spaced codes from one latent to another, both ends included, as one batch.",
            inputs=[
                UNITLatent.Input("latent_from", tooltip="The first code of the strip."),
                UNITLatent.Input("latent_to", tooltip="The last code of the strip (same image size as latent_from)."),
                io.Int.Input("steps", default=8, min=2, max=256, tooltip="Number of codes in the strip, ends included."),
            ],
            outputs=[UNITLatent.Output(display_name="latent", tooltip="The strip as a batch of codes, in order.")],
        )

    @classmethod
    def execute(cls, latent_from, latent_to, steps) -> io.NodeOutput:
        l0, l1 = check_latent(latent_from, "latent_from"), check_latent(latent_to, "latent_to")
        return io.NodeOutput(_store(inference.interpolation_path(l0, l1, int(steps))))
