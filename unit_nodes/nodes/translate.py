"""Translate (encode + decode in one step) and Cycle Reconstruct."""

from __future__ import annotations

from comfy import model_management
from comfy_api.v0_0_2 import io

from ..core import inference
from ..core.networks import other_domain
from .layout import core_to_image, domain_key, image_to_core, unit_to_image
from .models import check_handle, on_device
from .sockets import (CATEGORY, domain_input, mode_input, model_input, resize_argument, resize_input, seed_input,
                      tile_argument, tile_input, tile_progress, warn_scale)

SOURCE_TOOLTIP = "The domain the input images belong to; they are translated to the other one."


class TranslateImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITTranslate",
            display_name="Translate (UNIT)",
            category=CATEGORY,
            description="Translates images from one domain to the other: G_target(E_source(x)).",
            inputs=[
                model_input(),
                io.Image.Input("image", tooltip="Images of the source domain, any size and batch; "
                                                "RGBA loses its alpha, RGB is converted for gray models."),
                domain_input("source_domain", SOURCE_TOOLTIP),
                mode_input(),
                seed_input(),
                tile_input(),
                resize_input(),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The translated images, same size as the input.")],
        )

    @classmethod
    def execute(cls, model, image, source_domain, mode="mean", seed=0, tile_size=0, resize="as is") -> io.NodeOutput:
        handle = check_handle(model)
        x, source = image_to_core(image), domain_key(source_domain, "source_domain")
        resize = resize_argument(resize)
        warn_scale(handle.model, x, resize)
        with on_device(handle) as m:
            y = inference.translate(m, x, source, other_domain(source), sample=mode == "sample", seed=seed,
                                    tile=tile_argument(tile_size), progress=tile_progress(), resize=resize)
        return io.NodeOutput(core_to_image(y, model_management.intermediate_device()))


class CycleReconstruct(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITCycleReconstruct",
            display_name="Cycle Reconstruct (UNIT)",
            category=CATEGORY,
            description="Translates to the other domain and back; the error map shows what the round trip loses.",
            inputs=[
                model_input(),
                io.Image.Input("image", tooltip="Images of the source domain, any size and batch."),
                domain_input("source_domain", SOURCE_TOOLTIP),
                resize_input(),
            ],
            outputs=[
                io.Image.Output("translated", display_name="translated", tooltip="The images translated to the other domain."),
                io.Image.Output("cycled", display_name="cycled", tooltip="The translations translated back to the source domain."),
                io.Image.Output("error_map", display_name="error_map",
                                tooltip="|input - cycled| per pixel (0 black = identical, 1 white = opposite), "
                                        "in the source domain's channels."),
                io.Float.Output("mean_error", display_name="mean_error",
                                tooltip="Mean of the error map over all pixels and images (0..1)."),
            ],
        )

    @classmethod
    def execute(cls, model, image, source_domain, resize="as is") -> io.NodeOutput:
        handle = check_handle(model)
        x, source = image_to_core(image), domain_key(source_domain, "source_domain")
        resize = resize_argument(resize)
        warn_scale(handle.model, x, resize)
        with on_device(handle) as m:
            translated, cycled = inference.cycle_reconstruct(m, x, source, resize=resize)
            error, mean_error = inference.abs_error_map(x, cycled)
        dev = model_management.intermediate_device()
        return io.NodeOutput(core_to_image(translated, dev), core_to_image(cycled, dev), unit_to_image(error, dev), mean_error)
