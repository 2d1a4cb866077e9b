"""The UNIT node pack inside a real, headless ComfyUI: schema, workflows, training, Cancel, errors.

Models are tiny ones made here (saved into the server's models/unit), so nothing depends on
the bundled weights, except the quality check of a bundled pair, which is skipped (with the
reason) when the pair is not installed.
"""
from __future__ import annotations

import copy
import io
import json
import shutil
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_harness import ComfyUIPromptError, execution_error
from unit_nodes.core import inference
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.checkpoint import CHECKPOINT_FILE
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.sources import bundled_pairs
from unit_nodes.core.weights import load_model, read_config, save_model
from workflow_format import check_links, ui_to_api

pytestmark = pytest.mark.comfyui

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
EXAMPLES = WORKFLOWS / "inputs"
WORKFLOW_NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
NODE_IDS = ["UNITLoadModel", "UNITEncode", "UNITDecode", "UNITTranslate", "UNITCycleReconstruct",
            "UNITSamplePrior", "UNITInterpolateLatents", "UNITInterpolationStrip", "UNITTrain", "UNITSaveModel"]
TINY_RGB, TINY_GRAY = "tiny-rgb", "tiny-gray"
EMOJI_CODES = ["1f601", "1f609", "1f427", "1f437"]
PAIR = "emoji-google-twitter"


def tiny_config(channels: int):
    return preset("digits32", channels_a=channels, channels_b=channels, image_size=16, base_channels=8,
                  n_res_blocks=1, dis_channels=16, dis_layers=2)


@pytest.fixture(scope="module")
def server(comfyui_server):
    problem = comfyui_server.pack_load_problem()
    assert problem is None, f"ComfyUI did not load the pack:\n{problem}"
    unit_dir = comfyui_server.models_dir / "unit"
    for name, channels in ((TINY_RGB, 3), (TINY_GRAY, 1)):
        torch.manual_seed(0)
        save_model(UNIT(tiny_config(channels)), unit_dir / name)
    return comfyui_server  # the pack copied the example images (workflows/inputs) into input/


@pytest.fixture(scope="module")
def object_info(server):
    return server.object_info()


@pytest.fixture(scope="module")
def train_folders(server):
    """Six real MNIST (A) and USPS (B) digits as PNGs in input/unit_train/, or synthetic shapes
    when the data sets are not on this machine."""
    root = server.input_dir / "unit_train"
    a, b = root / "mnist", root / "usps"
    a.mkdir(parents=True), b.mkdir(parents=True)
    try:
        from unit_nodes.core.data import load_mnist_arrays, load_usps_arrays

        mnist = load_mnist_arrays("test")[0][:6]
        usps = ((load_usps_arrays("test")[0][:6] + 1) * 127.5).round().astype(np.uint8)
    except FileNotFoundError:
        g = np.random.default_rng(0)
        mnist = (g.random((6, 28, 28)) > 0.7).astype(np.uint8) * 255
        usps = 255 - (g.random((6, 16, 16)) > 0.7).astype(np.uint8) * 255
    for folder, images in ((a, mnist), (b, usps)):
        for i, arr in enumerate(images):
            Image.fromarray(arr, mode="L").save(folder / f"{i}.png")
    return "unit_train/mnist", "unit_train/usps"


# --- helpers ------------------------------------------------------------------------------
def api_workflow(name: str, model: str | None = TINY_RGB) -> dict:
    workflow = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    for node in workflow.values():
        if node["class_type"] == "UNITLoadModel" and model is not None:
            node["inputs"]["model_name"] = model
    return workflow


def node_of(workflow: dict, class_type: str) -> dict:
    [node] = [n for n in workflow.values() if n["class_type"] == class_type]
    return node


def saved_images(server, entry: dict, node_id: str) -> list[Image.Image]:
    out = []
    for item in entry["outputs"][node_id]["images"]:
        path = server.folder_for_type(item["type"]) / item["subfolder"] / item["filename"]
        with Image.open(path) as img:
            out.append(img.convert("RGB"))
    return out


def as_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def translate_graph(image_node: dict, model: str = TINY_RGB, prefix: str = "unit/t") -> dict:
    return {
        "1": {"class_type": "UNITLoadModel", "inputs": {"model_name": model}},
        "2": image_node,
        "3": {"class_type": "UNITTranslate", "inputs": {"model": ["1", 0], "image": ["2", 0], "source_domain": "A",
                                                      "mode": "mean", "seed": 0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": prefix}},
    }


def train_workflow(folders, save_name: str, steps: int, init_model: str | None = None) -> dict:
    workflow = api_workflow("unit_train_then_translate")
    train = node_of(workflow, "UNITTrain")
    train["inputs"].update(folder_a=folders[0], folder_b=folders[1], save_name=save_name, steps=steps,
                           batch_size=2, image_size=16, preset="digits32", channels="gray", preview_every=1)
    if init_model:
        workflow["90"] = {"class_type": "UNITLoadModel", "inputs": {"model_name": init_model}}
        train["inputs"]["init_model"] = ["90", 0]
    return workflow


# --- the pack as ComfyUI sees it ----------------------------------------------------------
def test_every_node_is_registered_with_tooltips_on_all_inputs_and_outputs(object_info):
    missing = [n for n in NODE_IDS if n not in object_info]
    assert not missing, f"not in /object_info: {missing}"
    for node_id in NODE_IDS:
        info = object_info[node_id]
        assert info["category"] == "UNIT" and info["display_name"] and info["description"], node_id
        for category in ("required", "optional"):
            for name, spec in info["input"].get(category, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert info["output_tooltips"] and all(info["output_tooltips"]), f"{node_id} has outputs without tooltips"
    assert object_info["UNITEncode"]["output"] == ["UNIT_LATENT"]
    assert object_info["UNITLoadModel"]["output"] == ["UNIT_MODEL"]
    assert object_info["UNITCycleReconstruct"]["output"] == ["IMAGE", "IMAGE", "IMAGE", "FLOAT"]
    assert object_info["UNITTrain"]["input"]["optional"]["init_model"][0] == "UNIT_MODEL"


def test_every_seed_declares_its_control_after_generate_widget(object_info):
    """The editor adds a 'control after generate' widget to INT inputs named seed unless they
    say otherwise (older editors always do): each one says so explicitly, so every editor lays
    out the same widgets and the shipped workflows' values land on the right inputs."""
    seeds = []
    for node_id in NODE_IDS:
        for category in ("required", "optional"):
            for name, spec in object_info[node_id]["input"].get(category, {}).items():
                if spec[0] == "INT" and name in ("seed", "noise_seed"):
                    seeds.append(node_id)
                    assert spec[1].get("control_after_generate") is True, f"{node_id}.{name}"
    assert "UNITTrain" in seeds and len(seeds) >= 4


def test_model_dropdown_lists_unit_models_only(server):
    unit_dir = server.models_dir / "unit"
    torch.manual_seed(1)
    save_model(UNIT(tiny_config(1), discriminators=False), unit_dir / "loose-file.safetensors")
    (unit_dir / "not-a-model.pt").write_bytes(b"\x80\x04 pickle")
    (unit_dir / "half-run").mkdir()
    shutil.copy(unit_dir / TINY_GRAY / "model.safetensors", unit_dir / "half-run" / CHECKPOINT_FILE)

    options = server.object_info("UNITLoadModel")["UNITLoadModel"]["input"]["required"]["model_name"][1]["options"]

    assert {TINY_RGB, TINY_GRAY, "loose-file.safetensors"} <= set(options)
    assert not [o for o in options if o.endswith((".pt", CHECKPOINT_FILE)) or o.startswith("half-run")], options
    assert set(bundled_pairs()) <= set(options)


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_ui_workflow_and_its_api_twin_agree(name, object_info):
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    twin = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())

    assert check_links(ui, object_info) == []
    converted = ui_to_api(ui, object_info)

    assert sorted(converted, key=int) == sorted(twin, key=int)
    for node_id, node in converted.items():
        assert node["class_type"] == twin[node_id]["class_type"], node_id
        assert node["inputs"] == twin[node_id]["inputs"], f"{name}: node {node_id} ({node['class_type']})"
    assert any(n["class_type"].startswith("UNIT") for n in twin.values())


def test_workflows_reference_a_bundled_pair_and_shipped_example_images():
    for name in WORKFLOW_NAMES:
        for node in json.loads((WORKFLOWS / "api" / f"{name}.json").read_text()).values():
            if node["class_type"] == "UNITLoadModel":
                assert node["inputs"]["model_name"] == PAIR
            if node["class_type"] == "LoadImage":
                assert (EXAMPLES / node["inputs"]["image"]).is_file(), node["inputs"]["image"]


def test_workflows_are_served_as_templates_of_the_pack(server):
    templates = server._request("GET", "/workflow_templates")
    assert sorted(templates.get("unit-nodes", [])) == WORKFLOW_NAMES, templates
    for name in WORKFLOW_NAMES:
        served = server._request("GET", f"/api/workflow_templates/unit-nodes/{name}.json")
        assert served == json.loads((WORKFLOWS / f"{name}.json").read_text()), name
        # The Templates dialog shows <name>.jpg beside each template as its thumbnail.
        with urllib.request.urlopen(f"{server.url}/api/workflow_templates/unit-nodes/{name}.jpg", timeout=30) as answer:
            assert answer.headers["Content-Type"] == "image/jpeg"
            thumbnail = answer.read()
        assert thumbnail == (WORKFLOWS / f"{name}.jpg").read_bytes(), name
        with Image.open(io.BytesIO(thumbnail)) as image:
            assert image.format == "JPEG" and image.width == image.height >= 256, (name, image.size)


# --- the shipped workflows, run ----------------------------------------------------------
def test_translate_workflow_writes_translation_of_input_size(server):
    entry = server.run(api_workflow("unit_translate_a_to_b"), timeout=120)
    [image] = saved_images(server, entry, "4")
    assert image.size == (64, 64)


def test_cycle_workflow_writes_three_images_and_the_mean_error_of_its_map(server):
    workflow = api_workflow("unit_cycle_reconstruct")
    entry = server.run(workflow, timeout=120)

    [translated] = saved_images(server, entry, "4")
    [cycled] = saved_images(server, entry, "5")
    [error_map] = saved_images(server, entry, "6")
    assert translated.size == cycled.size == error_map.size == (64, 64)
    mean_error = float(entry["outputs"]["7"]["text"][0])
    assert 0.0 < mean_error < 1.0
    assert as_array(error_map).mean() == pytest.approx(mean_error, abs=2 / 255)
    source = as_array(Image.open(EXAMPLES / node_of(workflow, "LoadImage")["inputs"]["image"]).convert("RGB"))
    expected = np.abs(source - as_array(cycled)).mean()  # both through 8-bit PNG: a little rounding
    assert expected == pytest.approx(mean_error, abs=2 / 255)


def test_latent_interpolation_workflow_writes_a_strip_per_domain(server):
    workflow = api_workflow("unit_latent_interpolation")
    steps = node_of(workflow, "UNITInterpolationStrip")["inputs"]["steps"]
    entry = server.run(workflow, timeout=120)

    for node_id in ("9", "10"):
        frames = saved_images(server, entry, node_id)
        assert len(frames) == steps
        assert all(f.size == (64, 64) for f in frames)
        assert np.abs(as_array(frames[-1]) - as_array(frames[0])).mean() > 0


def test_interpolation_strip_ends_are_the_reconstructions_of_its_inputs(server):
    workflow = api_workflow("unit_latent_interpolation")
    workflow["20"] = {"class_type": "UNITTranslate", "inputs": {"model": ["1", 0], "image": ["3", 0],
                                                              "source_domain": "A", "mode": "mean", "seed": 0}}
    workflow["21"] = {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "unit/end_b"}}
    entry = server.run(workflow, timeout=120)

    strip_b = saved_images(server, entry, "10")
    [end_b] = saved_images(server, entry, "21")
    assert np.abs(as_array(strip_b[-1]) - as_array(end_b)).max() <= 1 / 255


def test_sample_prior_workflow_decodes_the_same_codes_in_both_domains(server):
    workflow = api_workflow("unit_sample_prior")
    sample = node_of(workflow, "UNITSamplePrior")["inputs"]
    entry = server.run(workflow, timeout=120)

    model = load_model(server.models_dir / "unit" / TINY_RGB, discriminators=False)
    latent = inference.prior_latent(model, sample["batch_size"], sample["height"], sample["width"], seed=sample["seed"])
    for node_id, domain in (("5", "a"), ("6", "b")):
        images = saved_images(server, entry, node_id)
        assert len(images) == sample["batch_size"]
        assert all(img.size == (sample["width"], sample["height"]) for img in images)
        expected = inference.to_unit_range(inference.decode(model, latent, domain)).permute(0, 2, 3, 1).numpy()
        got = np.stack([as_array(img) for img in images])
        assert np.abs(got - expected).max() <= 1.01 / 255, "the node decodes the seed's prior codes"


def test_train_workflow_writes_a_loadable_model_and_translates_with_it(server, train_folders):
    workflow = train_workflow(train_folders, "trained-tiny", steps=3)
    node_of(workflow, "UNITTrain")["inputs"].update(cycle="A->B->A only", colour_anchor=30.0, frame_scale=0.0)
    entry = server.run(workflow, timeout=170)

    folder = server.models_dir / "unit" / "trained-tiny"
    model = load_model(folder)
    assert model.config.channels_a == model.config.channels_b == 1
    assert model.config.image_size == 16 and model.config.preset == "digits32"
    assert model.config.cycle_domains == "a"  # the optional cycle input reached the trainer
    assert model.config.lambda_identity == 30.0  # and so did the colour anchor
    # frame_scale 0: measured from the two folders (USPS digits fill more of the frame than MNIST's)
    from unit_nodes.core.data import ImageFolderDataset
    from unit_nodes.core.framing import measure_framing

    scale, fill_a, fill_b = measure_framing(*(ImageFolderDataset(server.input_dir / f, 64, 1) for f in train_folders))
    assert model.config.frame_scale == scale != 1.0
    # and each folder's background (the digits' black) as the fill of what a shrunk translation uncovers
    assert (model.config.frame_fill_a, model.config.frame_fill_b) == (fill_a, fill_b)
    assert model.config.frame_fill_a.startswith("#")
    assert json.loads((folder / "config.json").read_text())["image_size"] == 16
    assert Trainer.from_checkpoint(folder / CHECKPOINT_FILE).step == 3
    [translated] = saved_images(server, entry, "4")
    assert translated.size == (64, 64)  # the RGB emoji through a gray model, at the input's size
    [preview] = saved_images(server, entry, "5")
    assert preview.size == (3 * 16, 4 * 16)  # input | translation | cycle; 2 rows per direction
    options = server.object_info("UNITLoadModel")["UNITLoadModel"]["input"]["required"]["model_name"][1]["options"]
    assert "trained-tiny" in options


def test_example_set_names_pick_the_bundled_sets_before_any_folder(server):
    """examples/emoji-google and examples/emoji-twitter are names from a closed list, looked up
    before any path: a folder of that name in input/ is not what gets trained on."""
    decoy = server.input_dir / "examples" / "emoji-google"
    decoy.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 16)).save(decoy / "decoy.png")
    workflow = train_workflow(("examples/emoji-google", "examples/emoji-twitter"), "from-examples", steps=1)
    node_of(workflow, "UNITTrain")["inputs"].update(channels="rgb", preset="emoji64")
    server.run(workflow, timeout=170)

    from safetensors import safe_open

    with safe_open(str(server.models_dir / "unit" / "from-examples" / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
    assert metadata["domain_a_source"] == str(EXAMPLES / "emoji-google")
    assert metadata["domain_b_source"] == str(EXAMPLES / "emoji-twitter")


def _wait_for_training_progress(server, client_id: str, node_id: str, timeout: float = 90) -> None:
    """Block until ComfyUI reports a progress step of ``node_id`` on the websocket."""
    import websocket  # websocket-client

    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}", timeout=timeout)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = ws.recv()
            if isinstance(message, bytes):
                continue  # preview images
            data = json.loads(message)
            if data.get("type") == "progress" and data["data"].get("node") == node_id and data["data"]["value"] >= 1:
                return
        raise AssertionError("no training progress reported")
    finally:
        ws.close()


def test_cancel_keeps_a_resumable_checkpoint_and_the_same_name_resumes(server, train_folders):
    pytest.importorskip("websocket", reason="websocket-client is needed to see training progress")
    workflow = train_workflow(train_folders, "cancelled-run", steps=5000, init_model=TINY_GRAY)
    client_id = uuid.uuid4().hex
    progressed = threading.Event()
    failure = []

    def watch():
        try:
            _wait_for_training_progress(server, client_id, "1")
            progressed.set()
        except Exception as exc:  # reported by the main thread
            failure.append(exc)
            progressed.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.5)  # let the websocket connect before the first progress message
    prompt_id = server.queue_prompt(workflow, client_id=client_id)
    assert progressed.wait(120), "training never reported progress"
    assert not failure, failure
    server.interrupt()
    entry = server.wait_history(prompt_id, timeout=60, raise_on_error=False)

    kinds = [kind for kind, _ in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, entry["status"]
    folder = server.models_dir / "unit" / "cancelled-run"
    assert not (folder / "model.safetensors").exists()
    trainer = Trainer.from_checkpoint(folder / CHECKPOINT_FILE)
    assert 0 < trainer.step < 5000
    assert trainer.config.base_channels == tiny_config(1).base_channels  # fine-tuned from the tiny model

    resumed_to = trainer.step + 2
    node_of(workflow, "UNITTrain")["inputs"]["steps"] = resumed_to
    node_of(workflow, "UNITTrain")["inputs"]["learning_rate"] = 5e-5  # decay on resume
    server.run(workflow, timeout=120)
    resumed = Trainer.from_checkpoint(folder / CHECKPOINT_FILE)
    assert resumed.step == resumed_to
    assert resumed.config.lr == 5e-5 and resumed.schedule_changes == [{"step": trainer.step, "lr": 5e-5, "total_steps": resumed_to}]
    assert read_config(folder).base_channels == 8 and read_config(folder).lr == 5e-5

    # The colour anchor is part of the objective, not of the schedule: a resume may not change it.
    node_of(workflow, "UNITTrain")["inputs"].update(steps=resumed_to + 1, colour_anchor=30.0)
    error = execution_error(server, workflow)
    assert "lambda_identity" in error["exception_message"] and "other settings" in error["exception_message"]
    assert Trainer.from_checkpoint(folder / CHECKPOINT_FILE).step == resumed_to  # the run is untouched


# --- inputs of every shape, and errors -------------------------------------------------------
def test_rgba_batches_and_odd_sizes_through_a_gray_model(server):
    graph = translate_graph({"class_type": "EmptyImage", "inputs": {"width": 37, "height": 23, "batch_size": 3,
                                                                    "color": 0x3366CC}}, model=TINY_GRAY)
    graph["5"] = {"class_type": "LoadImage", "inputs": {"image": "emoji_google_1f601.png"}}
    graph["6"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["5", 0], "alpha": ["5", 1]}}
    graph["7"] = {"class_type": "UNITCycleReconstruct", "inputs": {"model": ["1", 0], "image": ["6", 0],
                                                                  "source_domain": "B"}}
    graph["8"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 2], "filename_prefix": "unit/rgba_err"}}
    entry = server.run(graph, timeout=120)

    batch = saved_images(server, entry, "4")
    assert len(batch) == 3 and all(img.size == (37, 23) for img in batch)
    [error_map] = saved_images(server, entry, "8")
    assert error_map.size == (64, 64)
    arr = as_array(error_map)
    assert np.allclose(arr[..., 0], arr[..., 1]), "a gray model's error map is gray"


def test_forced_tiles_match_the_whole_image_translation(server):
    """Translate and Decode expose tiling: forced 64 px tiles give the whole-image result."""
    graph = translate_graph({"class_type": "LoadImage", "inputs": {"image": "emoji_google_1f601.png"}}, prefix="unit/whole")
    graph["5"] = {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bilinear",
                                                         "width": 200, "height": 136, "crop": "disabled"}}
    graph["3"]["inputs"]["image"] = ["5", 0]
    graph["6"] = {"class_type": "UNITTranslate", "inputs": {**graph["3"]["inputs"], "tile_size": 64}}
    graph["7"] = {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "unit/tiled"}}
    graph["8"] = {"class_type": "UNITEncode", "inputs": {"model": ["1", 0], "image": ["5", 0], "domain": "A",
                                                         "mode": "mean", "seed": 0}}
    graph["9"] = {"class_type": "UNITDecode", "inputs": {"model": ["1", 0], "latent": ["8", 0], "domain": "B",
                                                         "tile_size": 64}}
    graph["10"] = {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "unit/tiled_dec"}}
    entry = server.run(graph, timeout=180)
    [whole] = saved_images(server, entry, "4")
    [tiled] = saved_images(server, entry, "7")
    [decoded] = saved_images(server, entry, "10")
    assert whole.size == tiled.size == decoded.size == (200, 136)
    assert np.abs(as_array(whole) - as_array(tiled)).max() <= 2 / 255
    assert np.abs(as_array(whole) - as_array(decoded)).max() <= 2 / 255
    assert as_array(whole).std() > 0.01  # a real picture, not a flat fill


def test_missing_model_name_is_a_node_error(server):
    workflow = api_workflow("unit_translate_a_to_b", model="no-such-unit-model")
    with pytest.raises(ComfyUIPromptError) as caught:
        server.queue_prompt(workflow)
    errors = caught.value.node_errors["1"]["errors"]
    # ComfyUI 0.3.75 leaves V3 dropdowns to the node's validate_inputs; newer ones check the list too
    assert any(e["type"] in ("custom_validation_failed", "value_not_in_list")
               and "no-such-unit-model" in e["details"] for e in errors), errors


def test_bad_save_name_and_missing_folder_are_clear_errors(server, train_folders):
    workflow = train_workflow(train_folders, "../outside", steps=1)
    error = execution_error(server, workflow)
    assert error["node_type"] == "UNITTrain" and error["exception_type"] == "ValueError"
    assert "save name '../outside' is not allowed" in error["exception_message"]

    workflow = train_workflow(("unit_train/no-such-folder", train_folders[1]), "x", steps=1)
    error = execution_error(server, workflow)
    assert "folder_a 'unit_train/no-such-folder' is not a folder" in error["exception_message"]
    assert not (server.models_dir / "unit" / "x").exists()


def test_interpolating_latents_of_different_sizes_is_a_clear_error(server):
    graph = {
        "1": {"class_type": "UNITLoadModel", "inputs": {"model_name": TINY_RGB}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 32, "batch_size": 1, "color": 0}},
        "4": {"class_type": "UNITEncode", "inputs": {"model": ["1", 0], "image": ["2", 0], "domain": "A",
                                                   "mode": "mean", "seed": 0}},
        "5": {"class_type": "UNITEncode", "inputs": {"model": ["1", 0], "image": ["3", 0], "domain": "A",
                                                   "mode": "sample", "seed": 3}},
        "6": {"class_type": "UNITInterpolateLatents", "inputs": {"latent_from": ["4", 0], "latent_to": ["5", 0],
                                                               "factor": 0.5}},
        "7": {"class_type": "UNITDecode", "inputs": {"model": ["1", 0], "latent": ["6", 0], "domain": "B"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "unit/bad"}},
    }
    error = execution_error(server, graph)
    assert error["node_type"] == "UNITInterpolateLatents"
    assert "cannot interpolate latents of different sizes" in error["exception_message"]


def test_decoding_with_a_model_of_another_latent_space_is_a_clear_error(server):
    unit_dir = server.models_dir / "unit"
    if not (unit_dir / "wide").exists():
        save_model(UNIT(tiny_config(3).replace(base_channels=12), discriminators=False), unit_dir / "wide")
    graph = {
        "1": {"class_type": "UNITLoadModel", "inputs": {"model_name": TINY_RGB}},
        "2": {"class_type": "UNITLoadModel", "inputs": {"model_name": "wide"}},
        "3": {"class_type": "UNITSamplePrior", "inputs": {"model": ["1", 0], "seed": 0, "width": 16, "height": 16,
                                                        "batch_size": 1}},
        "4": {"class_type": "UNITDecode", "inputs": {"model": ["2", 0], "latent": ["3", 0], "domain": "A"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "unit/bad"}},
    }
    error = execution_error(server, graph)
    assert error["node_type"] == "UNITDecode" and "latent has 32 channels" in error["exception_message"]


def test_save_node_writes_a_model_folder_and_refuses_to_overwrite(server):
    graph = {
        "1": {"class_type": "UNITLoadModel", "inputs": {"model_name": TINY_RGB}},
        "2": {"class_type": "UNITSaveModel", "inputs": {"model": ["1", 0], "save_name": "copy-of-tiny",
                                                      "overwrite": False}},
    }
    entry = server.run(graph, timeout=60)
    folder = server.models_dir / "unit" / "copy-of-tiny"
    assert (folder / "config.json").is_file()
    original, copy_ = load_model(server.models_dir / "unit" / TINY_RGB), load_model(folder)
    for (name, a), (_, b) in zip(original.state_dict().items(), copy_.state_dict().items()):
        assert torch.equal(a, b), name
    assert "copy-of-tiny" in entry["outputs"]["2"]["text"][0]

    graph["2"]["inputs"]["save_name"] = "copy-of-tiny "  # same name; a new prompt so it runs again
    error = execution_error(server, graph)
    assert "already exists" in error["exception_message"]


# --- a bundled pair really translates ------------------------------------------------------
def _colour_statistics(images: list[np.ndarray]) -> np.ndarray:
    """Per-channel mean and standard deviation, averaged over a set of [H, W, 3] images in 0..1."""
    return np.mean([np.concatenate([img.mean(axis=(0, 1)), img.std(axis=(0, 1))]) for img in images], axis=0)


def test_bundled_pair_translation_is_closer_to_the_target_domain_than_its_input(server):
    """MNIST digits translated by the bundled mnist-mnistm pair through the translate workflow
    move towards MNIST-M's colour statistics (measured on 200 real MNIST-M test images)."""
    pair = "mnist-mnistm"
    if pair not in bundled_pairs():
        pytest.skip(f"bundled pair weights/{pair} is not installed (model.safetensors missing)")
    from unit_nodes.core.data import DigitDataset

    try:
        target_set = DigitDataset("mnistm", "test", 32, limit=200)
    except FileNotFoundError as exc:
        pytest.skip(f"MNIST-M needs the data root: {exc}")
    target = _colour_statistics([(img.permute(1, 2, 0).numpy() + 1) / 2 for img in target_set.images])
    workflow = api_workflow("unit_translate_a_to_b", model=pair)
    inputs, outputs = [], []
    for png in sorted((REPO / "weights" / pair / "samples" / "a").glob("*.png")):
        shutil.copy(png, server.input_dir / f"mnistm_pair_{png.name}")
        run = copy.deepcopy(workflow)
        node_of(run, "LoadImage")["inputs"]["image"] = f"mnistm_pair_{png.name}"
        node_of(run, "SaveImage")["inputs"]["filename_prefix"] = f"unit/mnistm_{png.stem}"
        [translated] = saved_images(server, server.run(run, timeout=120), "4")
        inputs.append(as_array(Image.open(png).convert("RGB")))
        outputs.append(as_array(translated))
        assert translated.size == Image.open(png).size
    assert len(inputs) >= 4
    input_distance = np.linalg.norm(_colour_statistics(inputs) - target)
    output_distance = np.linalg.norm(_colour_statistics(outputs) - target)
    assert output_distance < 0.5 * input_distance, (input_distance, output_distance)


def test_a_model_file_replaced_on_disk_is_reloaded(server):
    unit_dir = server.models_dir / "unit"
    torch.manual_seed(5)
    save_model(UNIT(tiny_config(3), discriminators=False), unit_dir / "swapped")
    graph = translate_graph({"class_type": "LoadImage", "inputs": {"image": "emoji_google_1f609.png"}},
                            model="swapped", prefix="unit/swap")
    before = as_array(saved_images(server, server.run(graph, timeout=60), "4")[0])
    rerun = server.run(graph, timeout=60)  # unchanged file: ComfyUI's cache answers
    assert rerun["outputs"]["4"]["images"]
    torch.manual_seed(6)
    save_model(UNIT(tiny_config(3), discriminators=False), unit_dir / "swapped")

    after = as_array(saved_images(server, server.run(graph, timeout=60), "4")[0])

    assert np.abs(after - before).mean() > 0, "the new weights were not used"


def test_hub_repo_that_cannot_be_fetched_is_a_clear_error(server):
    graph = translate_graph({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                                    "color": 0}})
    graph["1"]["inputs"].update(hub_repo="unit-nodes-tests/no-such-repo", revision="", subfolder="")
    error = execution_error(server, graph)  # the harness runs ComfyUI with HF_HUB_OFFLINE=1
    assert error["node_type"] == "UNITLoadModel"
    assert error["exception_type"].endswith(("FileNotFoundError", "HubError")), error["exception_type"]
    assert "unit-nodes-tests/no-such-repo" in error["exception_message"]

    graph["1"]["inputs"]["hub_repo"] = "not a repo id"
    error = execution_error(server, graph)
    assert "is not a Hugging Face repo id" in error["exception_message"]


def test_models_in_an_extra_model_paths_folder_are_listed_and_loaded(tmp_path, comfyui_dir):
    """A second server whose extra_model_paths.yaml maps `unit` to another folder."""
    from comfyui_harness import ComfyUIServer

    with ComfyUIServer(comfyui_dir, model_folders={"unit": "elsewhere/unit_models"}) as other:
        torch.manual_seed(0)
        save_model(UNIT(tiny_config(3), discriminators=False), other.base_dir / "elsewhere" / "unit_models" / "far-away")
        info = other.object_info("UNITLoadModel")["UNITLoadModel"]
        assert "far-away" in info["input"]["required"]["model_name"][1]["options"]
        graph = translate_graph({"class_type": "EmptyImage", "inputs": {"width": 20, "height": 12, "batch_size": 1,
                                                                        "color": 0xFF0000}}, model="far-away")
        [image] = saved_images(other, other.run(graph, timeout=60), "4")
        assert image.size == (20, 12)
