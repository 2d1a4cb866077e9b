"""Train UNIT: two image folders -> models/unit/<name>/, with progress, previews, Cancel and resume."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import folder_paths
import torch
from comfy import model_management
from comfy.cli_args import args as comfy_args
from comfy.utils import ProgressBar
from comfy_api.v0_0_2 import io

from ..core import run
from ..core.config import FRAME_SCALE_RANGE, PRESET_TRAINING, PRESETS, ConfigError, frame_scale_allowed
from ..core.progress import BreakdownWatch, CollapseWatch, StepTimer
from ..core.data import ImageFolderDataset
from ..core.files import RunLock, remove_stale_temp_files
from ..core.framing import FrameScaleError, measure_framing
from ..core.checkpoint import CHECKPOINT_FILE
from ..core.trainer import check_training_fits
from ..core.weights import CONFIG_FILE, MODEL_FILE, load_model, read_config, save_model
from . import models
from .layout import check_save_name, image_to_pil, preview_rows_to_image, training_folder, training_roots, within
from .sockets import CATEGORY, SEED_MAX, UNITModel

CHECKPOINT_EVERY = 500  # steps between crash-safety checkpoints (Cancel always saves one)
# bf16 autocast where it pays (CUDA with bf16, CPUs with AMX or AVX512-BF16), exact fp32 elsewhere: the CLI's
# default too, so a node run and `train` with the same settings compute the same way.
PRECISION = "auto"
PREVIEW_MIN_WIDTH = 384  # small training images are enlarged in the progress preview
PREVIEW_IMAGES = 2  # per direction
CHANNELS = {"rgb": 3, "gray": 1}


def resolve_folder(value: str, what: str) -> Path:
    """A subfolder of ComfyUI's input directory, or a folder under the operator's UNIT_TRAIN_ROOTS."""
    return training_folder(value, what, folder_paths.get_input_directory())


# Bundled example training sets, chosen by name in folder_a / folder_b. The names are a closed
# list looked up before any path handling, so a name is never read as a path and the sets work
# wherever the input folders are restricted to.
PACK_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FOLDERS = {
    "examples/emoji-google": PACK_ROOT / "workflows" / "inputs" / "emoji-google",
    "examples/emoji-twitter": PACK_ROOT / "workflows" / "inputs" / "emoji-twitter",
}


def bundled_example_folder(value: str, what: str) -> Path | None:
    """The folder of a bundled example set named by ``value`` (EXAMPLE_FOLDERS), else None."""
    name = str(value or "").strip()
    if name not in EXAMPLE_FOLDERS:
        return None
    folder = EXAMPLE_FOLDERS[name]
    if not folder.is_dir():
        raise ValueError(f"{what} {name!r} is a bundled example set, but its folder {folder} is missing "
                         f"from this copy of the pack (install the pack from its repository)")
    return folder


# Labels for UNITConfig.cycle_domains (its comment says when to drop a side).
CYCLE_CHOICES = {"both (paper)": "ab", "A->B->A only": "a", "B->A->B only": "b"}


def requested_fields(image_size, channels, learning_rate, steps, cycle="both (paper)", colour_anchor=0.0,
                     frame_scale=1.0) -> dict:
    """The UNITConfig fields the node's inputs ask for (run.py's ``requested``). A
    ``learning_rate`` of 0 asks for none: the preset's rate, init_model's, or the resumed run's own.
    ``colour_anchor`` is always asked for: it is what this queue trains with, whatever an
    init_model was trained with. ``frame_scale`` is asked for when it is not 1, so that fine-tuning
    a pair that has one (the bundled emoji pair) keeps it by default."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {list(CHANNELS)}, got {channels!r}")
    if cycle not in CYCLE_CHOICES:
        raise ValueError(f"cycle must be one of {list(CYCLE_CHOICES)}, got {cycle!r}")
    if not math.isfinite(float(colour_anchor)) or float(colour_anchor) < 0:
        raise ValueError(f"colour_anchor must be a finite number >= 0 (0: no anchor, the paper), got {colour_anchor}")
    if not frame_scale_allowed(frame_scale):
        lo, hi = FRAME_SCALE_RANGE
        raise ValueError(f"frame_scale must be between {lo:g} and {hi:g} (1: no resize, the paper; 0 measures it from "
                         f"the folders), got {frame_scale}")
    fields = dict(channels_a=CHANNELS[channels], channels_b=CHANNELS[channels], image_size=int(image_size),
                  total_steps=max(1, int(steps)), cycle_domains=CYCLE_CHOICES[cycle],
                  lambda_identity=float(colour_anchor))
    if float(frame_scale) != 1.0:  # 1 asks for nothing: an init_model's or resumed run's own value stays
        fields["frame_scale"] = float(frame_scale)
    if float(learning_rate) != 0:
        fields["lr"] = float(learning_rate)
    return fields


def requested_config(preset_name, requested: dict, init_model):
    """The config the node's inputs describe: the preset's, or init_model's architecture
    (run.init_config), with the inputs' fields (``requested_fields``) on top."""
    try:
        if init_model is not None:
            base = models.check_handle(init_model, "init_model").model.config
            return run.init_config(base, requested, source="init_model")
        return run.new_run_config(preset_name, requested)
    except run.RunSettingsError:
        raise
    except ConfigError as exc:
        raise ValueError(f"these training settings do not fit the architecture: {exc}") from exc


def resume_request(cfg, requested: dict) -> dict:
    """What a queue of the node asks of the run it resumes: the fields its inputs asked for
    (``requested``: steps, size, channels, cycle, colour anchor, the rate unless learning_rate is
    0, ...), the preset's name and the architecture. The preset's training settings stay the
    run's own, as on a CLI resume: a preset whose recipe changed after the run began (emoji64
    gained lambda_edges in session 35) still resumes it, while another preset or architecture
    is refused, naming the field. Of the schedule only what the inputs asked for is compared
    (lr_policy and its parameters stay the run's own): no schedule field is an architecture field."""
    asked = set(requested) | set(run.ARCHITECTURE_FIELDS) | {"preset"}
    return {k: v for k, v in cfg.to_dict().items() if k in asked}


def _dataset_within_roots(folder: Path, what: str, size: int, channels: int) -> ImageFolderDataset:
    """The folder's images, without those a symlink brings in from outside the allowed roots."""
    dataset = ImageFolderDataset(folder, size=size, channels=channels)
    if folder in EXAMPLE_FOLDERS.values():  # the pack's own example sets, chosen by name
        return dataset
    roots = training_roots(folder_paths.get_input_directory())
    inside = [f for f in dataset.files if within(f, roots)]
    if len(inside) < len(dataset.files):
        if not inside:
            raise ValueError(f"{what}: every image in {folder} is a link to a file outside the folders Train UNIT "
                             f"may read")
        dataset.files = inside
    return dataset


def show_progress_text(node_id, text: str, shown: dict, every_s: float = 1.0) -> None:
    """Steps, seconds per step and time left under the node, at most once a second."""
    now = time.monotonic()
    if node_id is None or now - shown["at"] < every_s:
        return
    shown["at"] = now
    from server import PromptServer

    PromptServer.instance.send_progress_text(text, node_id)


def first_images(dataset, count: int) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(min(count, len(dataset)))])


class TrainUNIT(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="UNITTrain",
            display_name="Train UNIT",
            category=CATEGORY,
            description="Trains a UNIT model on two unpaired image folders and saves it to models/unit/<save_name>/. "
                        "Cancel keeps a checkpoint; queueing again with the same save_name resumes. The defaults "
                        "(emoji64, 2950 steps, batch 2) took 22.9 min on a 2-core AVX2 CPU (a Zen 3 EPYC, fp32, both "
                        "cores free; measured), 5.9 min on a 2-core AMD EPYC with AVX-512 and AVX512-BF16 (bf16; 7.5 in "
                        "fp32 there, what AVX-512 without BF16 computes in; measured) and 6.8 min on a 2-core CPU with "
                        "AMX (bf16, as on GPUs with bf16; measured); longer when the cores are shared; "
                        "about 2.7 min on an H200 GPU (1500 of its steps took 82 s, measured); "
                        "the node shows seconds per step and the time left while it runs.",
            inputs=[
                io.String.Input("folder_a", default="examples/emoji-google",
                                tooltip="Images of domain A: a subfolder of ComfyUI's input directory (or a folder under "
                                        "one the server lists in UNIT_TRAIN_ROOTS), searched recursively for "
                                        "png/jpg/jpeg/webp/bmp. The name examples/emoji-google or examples/emoji-twitter "
                                        "picks a small example set bundled with the pack (32 emoji of one style)."),
                io.String.Input("folder_b", default="examples/emoji-twitter",
                                tooltip="Images of domain B, like folder_a; the two sets need not be paired."),
                io.String.Input("save_name", default="my-unit-model",
                                tooltip="Model folder in models/unit. If it holds an unfinished run (checkpoint.safetensors), "
                                        "training resumes from it."),
                io.Int.Input("steps", default=PRESET_TRAINING["emoji64"]["steps"], min=1, max=10_000_000,
                             tooltip="Total training iterations (a resumed run continues up to this number). Measured "
                                     "recommendations: emoji64 2950 at batch 2 (22.9 min measured on a free 2-core AVX2 CPU, about 2.7 "
                                     "min on an H200 GPU), digits32 3000, image256 100000 (GPU only). Longer emoji64 runs: at batch 2 "
                                     "the preset's rate (8e-4) stayed healthy in 3 of 3 runs held for 7500-12500 steps "
                                     "(the former 1.6e-3 broke down in 2 of 3 past ~6000); the best pair in ~90 minutes on "
                                     "2 CPU cores is still batch 4 with learning_rate 1.6e-3 for 22000 steps (the bundled "
                                     "pair). The node shows seconds per step and the time left."),
                io.Int.Input("batch_size", default=PRESET_TRAINING["emoji64"]["batch_size"], min=1, max=512,
                             tooltip="Images per domain per iteration: emoji64 2, digits32 16, image256 1 (the "
                                     "paper's). On a CPU a step costs about in proportion (emoji64 batch 2: 0.54-0.61x "
                                     "batch 4), and at equal time more small steps scored better (batch 2 x 2950: FID "
                                     "96.2 / 86.9, batch 4 x 1800: 96.6 / 90.3); on a GPU an emoji64 step at batch 64 "
                                     "costs about what one at batch 4 does (H200: 13.6 against 15.9 steps/s), with "
                                     "better L1/SSIM and the same FID at 1800 steps. Resuming a run takes the batch "
                                     "size it was trained at (another value is refused, naming it)."),
                io.Int.Input("image_size", default=64, min=8, max=2048, step=4,
                             tooltip="Training resolution: images are resized (shorter side) and centre-cropped to this square. "
                                     "The model later translates images of any size."),
                io.Float.Input("learning_rate", default=0.0, min=0.0, max=1e-1, step=1e-5, round=1e-7,
                               tooltip="Adam learning rate. 0 (default): the recipe's own rate: the preset's (emoji64 "
                                       "8e-4 for its batch of 2: level with 1.6e-3 at 2950 steps and stable in long runs; "
                                       "at batch 4 use 1.6e-3, which scored best there at 2000 steps: mean FID 95.5, against "
                                       "97.5 for 8e-4, 104.4 for 4e-4 and 113 for 2e-4; digits32 and image256 the paper's 1e-4), "
                                       "init_model's, or a resumed run's own. Queueing a resumed run with a lower "
                                       "value decays the rate from its current step on."),
                io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                             tooltip="Seed of the initial weights, the data order and the training noise. "
                                     "Set 'control after generate' to fixed to train the same run again. Runs "
                                     "differ by seed: of four emoji64 default runs on a GPU (bf16, the former rate 1.6e-3), "
                                     "one (seed 3) broke down into swapped colours (the same seed trained normally on a CPU); the node's "
                                     "progress text says so when the reconstruction error jumps to 3x its best. If the "
                                     "preview shows it, train again with another seed. Since session 38 emoji64 rolls a "
                                     "sudden breakdown back to a healthy copy of the run from at most 200 steps before and "
                                     "goes on (spike_rollback 4; the log says when)."),
                io.Combo.Input("preset", options=sorted(PRESETS), default="emoji64",
                               tooltip="Recipe: emoji64 (default: fast 64 px RGB, the measured best translation per "
                                       "minute on a CPU; its edge loss, lambda_edges 600, took the default emoji run's "
                                       "mean FID from 88.6 to 80.7 on two seeds), digits32 (32 px gray digits), image256 (the paper's 256 px "
                                       "photo model: days on a CPU, hours on a GPU). Ignored with init_model."),
                io.Combo.Input("channels", options=list(CHANNELS), default="rgb",
                               tooltip="Colour of both domains: rgb, or gray (1 channel)."),
                io.Int.Input("preview_every", default=100, min=0, max=1_000_000,
                             tooltip="Show input | translation | cycle on the node every N steps (0: only at the end)."),
                UNITModel.Input("init_model", optional=True,
                                tooltip="Optional model to fine-tune from instead of random weights (its architecture is kept)."),
                io.Combo.Input("cycle", options=list(CYCLE_CHOICES), default="both (paper)", optional=True,
                               tooltip="Cycle-consistency images: both directions as in the paper, or only one when the "
                                       "other translation discards information (e.g. textured photo -> clean drawing: "
                                       "keep only the drawing's cycle)."),
                io.Float.Input("colour_anchor", default=0.0, min=0.0, max=1000.0, step=1.0, round=0.01, optional=True,
                               tooltip="Weight of an L1 between each translation and its own input (config field "
                                       "lambda_identity; the reconstruction's weight is 100). 0 (default, the paper): "
                                       "translations are free to change colours. For pairs that share layout and "
                                       "palette, such as two emoji styles, 30 lowered the default emoji run's FID by "
                                       "1.6 on two seeds, and by 2.5-4.4 with 200 emoji per folder (2.1 over an 87-minute "
                                       "run; measured); "
                                       "keep 0 when colours must change (day -> night, "
                                       "gray digits -> coloured ones), since the anchor holds every translation to its "
                                       "input's colours. It replaces an init_model's own value; resuming a run takes the value it "
                                       "was started with (another is refused, naming lambda_identity)."),
                io.Float.Input("frame_scale", default=1.0, min=0.0, max=FRAME_SCALE_RANGE[1], step=0.001, round=0.0001, optional=True,
                               tooltip="How much larger objects are drawn in folder B than in folder A (config field "
                                       "frame_scale): every translation is resized by it (A -> B by the value, B -> A "
                                       "by its inverse), since the networks cannot resize a whole image. 1 (default, "
                                       "the paper): no resize, or the init_model's own value. 0: measure it from the two folders (objects on a plain "
                                       "background, such as emoji, icons or digits; refused for photos), and each "
                                       "folder's background colour, which then fills the border a shrunk translation "
                                       "uncovers (otherwise each image's own border colour). Measured: "
                                       "USPS digits 1.35x MNIST's, Twitter emoji 1.059x Google's. Resuming a run takes "
                                       "the value it was started with."),
            ],
            outputs=[
                UNITModel.Output("model", display_name="model", tooltip="The trained model (also saved in models/unit)."),
                io.Image.Output("preview", display_name="preview",
                                tooltip="Rows of input | translation | cycle for both directions, after the last step."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, folder_a, folder_b, save_name, steps, batch_size, image_size, learning_rate, seed,
                preset, channels, preview_every, init_model=None, cycle="both (paper)",
                colour_anchor=0.0, frame_scale=1.0) -> io.NodeOutput:
        name = check_save_name(save_name)
        if not math.isfinite(float(learning_rate)) or learning_rate < 0:
            raise ValueError(f"learning_rate must be >= 0 (0: the recipe's own rate), got {learning_rate}")
        dir_a = bundled_example_folder(folder_a, "folder_a") or resolve_folder(folder_a, "folder_a")
        dir_b = bundled_example_folder(folder_b, "folder_b") or resolve_folder(folder_b, "folder_b")
        out = models.save_dir() / name
        ckpt = out / CHECKPOINT_FILE
        if (out / MODEL_FILE).exists() and not ckpt.exists():
            raise ValueError(f"{out} already holds a model that has no training checkpoint to resume; "
                             f"choose another save_name")
        fills = {}
        if float(frame_scale) == 0:  # measured at 64 px: a ratio of sizes relative to the frame
            sets = [_dataset_within_roots(d, what, 64, CHANNELS[channels]) for d, what in ((dir_a, "folder_a"), (dir_b, "folder_b"))]
            try:
                frame_scale, *measured = measure_framing(*sets, names=("folder_a", "folder_b"))
                fills = dict(zip(("frame_fill_a", "frame_fill_b"), measured))
            except FrameScaleError as exc:
                raise ValueError(f"frame_scale 0 (measure it from the folders): {exc}") from None
            logging.info("Train UNIT (%s): frame_scale %s and backgrounds %s measured from the folders", name,
                         frame_scale, " / ".join(fills.values()))
            if ckpt.exists():  # a resumed run keeps its own fills (a run from before they existed: each image's border)
                own = read_config(ckpt)
                fills = {k: getattr(own, k) for k in fills}
        requested = {**requested_fields(image_size, channels, learning_rate, steps, cycle, colour_anchor, frame_scale),
                     **fills}
        cfg = requested_config(preset, requested, init_model)
        device = model_management.get_torch_device()
        check_training_fits(cfg, int(batch_size), device)

        # ComfyUI runs nodes under inference_mode; training needs autograd. fork_rng keeps the
        # process-wide RNG of other nodes untouched by the seeding and the checkpoint's state.
        # RunLock: one training per run folder (RunFolderBusy, a ValueError, names the other one).
        out.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=[]), \
                RunLock(out, command=f"ComfyUI Train UNIT ({name})"):
            for leftover in (CHECKPOINT_FILE, MODEL_FILE, CONFIG_FILE):  # of a save that was killed
                remove_stale_temp_files(out / leftover)
            if ckpt.exists():
                # A new learning_rate on resume decays (or raises) it from the current step on.
                try:
                    run.check_resume_batch_size(ckpt, int(batch_size))
                    trainer, _ = run.resume_trainer(ckpt, resume_request(cfg, requested), seed=int(seed),
                                                    device=device, precision=PRECISION)
                except run.RunSettingsError as exc:
                    raise ValueError(f"{ckpt} holds a run with other settings: {exc}; use the same settings to "
                                     f"resume it, or another save_name") from None
                cfg = trainer.config
            else:
                init = None if init_model is None else init_model.model
                trainer = run.start_trainer(cfg, int(seed), init, device=device, precision=PRECISION)
            ds_a = _dataset_within_roots(dir_a, "folder_a", cfg.image_size, cfg.channels_a)
            ds_b = _dataset_within_roots(dir_b, "folder_b", cfg.image_size, cfg.channels_b)

            bar = ProgressBar(int(steps))
            bar.update_absolute(min(trainer.step, int(steps)), int(steps))
            last = {}
            timer, shown = StepTimer(trainer.step), {"at": 0.0}
            breakdown, collapse = BreakdownWatch(), CollapseWatch.for_config(trainer.config, start_step=trainer.step)

            def on_step(report) -> None:
                model_management.throw_exception_if_processing_interrupted()  # Cancel: fit saves, then re-raises
                timer.update(report.step)
                phase_start = trainer.config.phase(report.step - 1)[0]  # of the step just taken
                for alarm in (breakdown.update(report.step, report.losses),
                              collapse.update(report.step, report.losses, phase_start=phase_start)):
                    if alarm:
                        logging.warning("Train UNIT (%s): %s", name, alarm)
                note = trainer.spike_guard and trainer.spike_guard.note_for(report.step)
                if note:
                    logging.warning("Train UNIT (%s): %s", name, note)
                text = timer.describe(report.step, report.total_steps)
                if breakdown.broke_at is not None:
                    text += (f"; looks broken down since step {breakdown.broke_at} (reconstruction error jumped): "
                             f"check the preview, train again with another seed if it shows swapped colours")
                if collapse.collapsed_at is not None:
                    text += (f"; looks collapsed since step {collapse.collapsed_at} (D rejects every translation): "
                             f"check the preview, train again with another seed if its translations look all alike "
                             f"or washed out / colour-inverted")
                show_progress_text(cls.hidden.unique_id, text, shown,
                                   every_s=0.0 if report.step == report.total_steps else 1.0)
                preview = None
                if (preview_every and report.step % preview_every == 0) or report.step == report.total_steps:
                    rows = trainer.preview(*report.batch, count=PREVIEW_IMAGES)
                    last["rows"] = rows
                    pil = image_to_pil(preview_rows_to_image(rows), PREVIEW_MIN_WIDTH)
                    preview = ("JPEG", pil, comfy_args.preview_size)
                bar.update_absolute(report.step, report.total_steps, preview)

            trainer.fit(ds_a, ds_b, int(steps), int(batch_size), callback=on_step,
                        checkpoint_path=ckpt, checkpoint_every=CHECKPOINT_EVERY)
            rows = last.get("rows")
            if rows is None:  # nothing left to train: preview the first images
                rows = trainer.preview(first_images(ds_a, PREVIEW_IMAGES), first_images(ds_b, PREVIEW_IMAGES),
                                       count=PREVIEW_IMAGES)
            path = save_model(trainer.export_model(), out, include_discriminators=False,
                              metadata=run.export_metadata(trainer, dir_a, dir_b))
        del trainer
        model_management.soft_empty_cache()
        model = load_model(path, device=model_management.unet_offload_device(), discriminators=False)
        models.remember(path, model)
        preview_image = preview_rows_to_image(rows).to(model_management.intermediate_device())
        return io.NodeOutput(models.UNITModelHandle(model, name, str(path)), preview_image)
