"""Load UNIT Model and Save UNIT Model."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui

from ..core.weights import MODEL_FILE, save_model
from . import models
from .layout import check_save_name
from .sockets import CATEGORY, UNITModel, model_input


class LoadUNITModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITLoadModel",
            display_name="Load UNIT Model",
            category=CATEGORY,
            description="Loads a UNIT translation model (two domains, A and B, sharing one latent space).",
            inputs=[
                io.Combo.Input(
                    "model_name", options=models.model_names(),
                    tooltip="A model in models/unit (a .safetensors file, or a folder with model.safetensors "
                            "as Train UNIT writes it) or a bundled pair from the pack's weights/ folder. "
                            "Ignored when hub_repo is set.",
                ),
                io.String.Input("hub_repo", default="", optional=True,
                                tooltip="Optional Hugging Face repo id 'org/name' holding model.safetensors; "
                                        "when set it replaces model_name. Downloaded once into the Hugging Face cache."),
                io.String.Input("revision", default="", optional=True,
                                tooltip="Hub revision (commit hash, tag or branch) to pin; empty means 'main'."),
                io.String.Input("subfolder", default="", optional=True,
                                tooltip="Folder inside the Hub repo that holds model.safetensors; empty for the root."),
            ],
            outputs=[UNITModel.Output(display_name="model", tooltip="The loaded UNIT model.")],
        )

    @classmethod
    def validate_inputs(cls, model_name, hub_repo=""):
        # ComfyUI 0.3.75 does not check V3 dropdown values itself: a model that is gone must
        # still be a node error at queue time, not a failure halfway through the graph.
        if (hub_repo or "").strip():
            return True  # checked when it runs: resolving a repo id may download
        try:
            models.find_model_file(model_name)
        except (ValueError, FileNotFoundError) as exc:
            return str(exc)
        return True

    @classmethod
    def fingerprint_inputs(cls, model_name, hub_repo="", revision="", subfolder=""):
        try:
            return models.file_fingerprint(models.find_model_file(model_name, hub_repo, revision, subfolder))
        except Exception as exc:  # the error itself is raised by execute, with its message
            return f"error:{exc}"

    @classmethod
    def execute(cls, model_name, hub_repo="", revision="", subfolder="") -> io.NodeOutput:
        path = models.find_model_file(model_name, hub_repo, revision, subfolder)
        model = models.load_cached(path)
        name = (hub_repo or "").strip() or model_name
        return io.NodeOutput(models.UNITModelHandle(model, name, str(path)))


class SaveUNITModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITSaveModel",
            display_name="Save UNIT Model",
            category=CATEGORY,
            description="Writes a UNIT model to models/unit/<name>/ (model.safetensors + config.json).",
            inputs=[
                model_input(),
                io.String.Input("save_name", default="my-unit-model",
                                tooltip="Folder name inside models/unit; letters, digits, '-', '_', '.', no path separators."),
                io.Boolean.Input("overwrite", default=False,
                                 tooltip="Replace an existing model of that name (the write is atomic either way)."),
            ],
            outputs=[io.String.Output(display_name="path", tooltip="The model.safetensors file written.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, model, save_name, overwrite=False) -> io.NodeOutput:
        handle = models.check_handle(model)
        name = check_save_name(save_name)
        folder = models.save_dir() / name
        if (folder / MODEL_FILE).exists() and not overwrite:
            raise ValueError(f"{folder / MODEL_FILE} already exists; choose another save_name or enable overwrite")
        path = save_model(handle.model, folder, include_discriminators=False,
                          metadata={"saved_from": handle.name})
        models.remember(path, handle.model)
        text = f"saved {handle.name} to {path}"
        return io.NodeOutput(str(path), ui=ui.PreviewText(text))
