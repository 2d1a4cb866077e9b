"""The pack's ComfyExtension: the node list ComfyUI registers (V3 schema, comfy_api.v0_0_2)."""

from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

from . import models
from .examples import install_example_inputs
from .latent import DecodeToDomain, EncodeToSharedLatent, InterpolateLatents, LatentInterpolationStrip, SampleSharedLatent
from .loaders import LoadUNITModel, SaveUNITModel
from .train import TrainUNIT
from .translate import CycleReconstruct, TranslateImage

NODES: list[type[io.ComfyNode]] = [
    LoadUNITModel,
    EncodeToSharedLatent,
    DecodeToDomain,
    TranslateImage,
    CycleReconstruct,
    SampleSharedLatent,
    InterpolateLatents,
    LatentInterpolationStrip,
    TrainUNIT,
    SaveUNITModel,
]


class UNITExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> ComfyExtension:
    models.register_models_folder()  # before any schema lists the models folder
    install_example_inputs()  # before Load Image lists the input folder
    return UNITExtension()
