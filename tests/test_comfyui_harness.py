"""The ComfyUI harness itself, proven on ComfyUI's built-in nodes and on a minimal V3 pack."""
import copy
import textwrap

import pytest
from PIL import Image

from browser_harness import check_workflow_in_browser, find_chromium
from comfyui_harness import ComfyUIPromptError, ComfyUIServer

pytestmark = pytest.mark.comfyui


def empty_image_to_save(width, height, color, prefix):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def test_object_info_lists_core_nodes(comfyui_server):
    info = comfyui_server.object_info()
    for node in ("EmptyImage", "SaveImage", "LoadImage", "PreviewImage", "ImageInvert"):
        assert node in info, f"{node} missing from /object_info"
    assert info["SaveImage"]["output_node"] is True
    assert set(comfyui_server.object_info("EmptyImage")) == {"EmptyImage"}


def test_workflow_writes_png_of_requested_size_into_private_output(comfyui_server):
    entry = comfyui_server.run(empty_image_to_save(32, 24, 0x00FF00, "harness/green"), timeout=60)

    assert entry["status"]["status_str"] == "success"
    paths = comfyui_server.output_images(entry)
    assert len(paths) == 1
    png = paths[0]
    assert png.is_file()
    assert comfyui_server.output_dir in png.parents, "ComfyUI wrote outside the test's temp folder"
    with Image.open(png) as img:
        assert img.format == "PNG"
        assert img.size == (32, 24)
        assert img.convert("RGB").getpixel((5, 5)) == (0, 255, 0)


def test_unknown_node_class_is_refused_with_its_name(comfyui_server):
    with pytest.raises(ComfyUIPromptError) as caught:
        comfyui_server.queue_prompt({"1": {"class_type": "NoSuchNodeForHarness", "inputs": {}}})
    assert caught.value.error["type"] == "invalid_prompt"
    assert "NoSuchNodeForHarness" in caught.value.error["message"]
    assert "NoSuchNodeForHarness" in str(caught.value)


def test_invalid_input_value_reports_node_errors(comfyui_server):
    workflow = empty_image_to_save(0, 32, 0, "harness/invalid")  # width min is 1
    with pytest.raises(ComfyUIPromptError) as caught:
        comfyui_server.queue_prompt(workflow)
    assert "1" in caught.value.node_errors, caught.value.node_errors
    errors = caught.value.node_errors["1"]["errors"]
    assert any(e["type"] == "value_smaller_than_min" and e["extra_info"]["input_name"] == "width"
               for e in errors), errors


# A complete V3 node pack for this ComfyUI (0.3.75): the shape our own __init__.py follows.
V3_PACK_INIT = '''
from comfy_api.v0_0_2 import ComfyExtension, io

from .nodes import InvertWithTag, TagToText


class HarnessExampleExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [InvertWithTag, TagToText]


async def comfy_entrypoint() -> ComfyExtension:
    return HarnessExampleExtension()
'''

V3_PACK_NODES = '''
from comfy.utils import ProgressBar
from comfy_api.v0_0_2 import io, ui

Tag = io.Custom("HARNESS_TAG")  # a pack-private socket type


class InvertWithTag(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarnessExample_InvertWithTag",
            display_name="Harness example: invert",
            category="harness_example",
            inputs=[io.Image.Input("image"),
                    io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05)],
            outputs=[io.Image.Output(display_name="image"), Tag.Output(display_name="tag")],
        )

    @classmethod
    def execute(cls, image, strength) -> io.NodeOutput:
        bar = ProgressBar(2)
        inverted = image * (1.0 - strength) + (1.0 - image) * strength
        bar.update(1)
        tag = {"height": int(image.shape[1]), "width": int(image.shape[2])}
        bar.update(1)
        return io.NodeOutput(inverted, tag)


class TagToText(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarnessExample_TagToText",
            category="harness_example",
            inputs=[Tag.Input("tag")],
            outputs=[io.String.Output()],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, tag) -> io.NodeOutput:
        text = f"{tag['width']}x{tag['height']}"
        return io.NodeOutput(text, ui=ui.PreviewText(text))
'''


@pytest.fixture(scope="module")
def example_packs_server(tmp_path_factory, comfyui_dir):
    """A second server (pack under test not linked) with a good V3 pack and a broken one."""
    root = tmp_path_factory.mktemp("packs")
    good = root / "harness_v3_example"
    good.mkdir()
    (good / "__init__.py").write_text(textwrap.dedent(V3_PACK_INIT))
    (good / "nodes.py").write_text(textwrap.dedent(V3_PACK_NODES))
    broken = root / "harness_broken"
    broken.mkdir()
    (broken / "__init__.py").write_text("import module_that_does_not_exist_for_harness\n")
    with ComfyUIServer(comfyui_dir, pack_dir=None,
                       extra_packs={"harness_v3_example": good, "harness_broken": broken}) as server:
        yield server


def test_minimal_v3_pack_loads_and_runs(example_packs_server):
    server = example_packs_server
    assert server.pack_load_problem("harness_v3_example") is None
    info = server.object_info()
    node_info = info["HarnessExample_InvertWithTag"]
    assert node_info["display_name"] == "Harness example: invert"
    assert node_info["output"] == ["IMAGE", "HARNESS_TAG"]
    assert info["HarnessExample_TagToText"]["input"]["required"]["tag"][0] == "HARNESS_TAG"

    entry = server.run({
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 20, "height": 16, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "HarnessExample_InvertWithTag",
              "inputs": {"image": ["1", 0], "strength": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "v3"}},
        "4": {"class_type": "HarnessExample_TagToText", "inputs": {"tag": ["2", 1]}},
    }, timeout=60)

    assert entry["outputs"]["4"]["text"] == ["20x16"]
    [png] = server.output_images(entry)
    with Image.open(png) as img:
        assert img.size == (20, 16)
        assert img.convert("RGB").getpixel((0, 0)) == (0, 255, 255)  # red, inverted


def test_broken_pack_is_reported_not_silently_ignored(example_packs_server):
    problem = example_packs_server.pack_load_problem("harness_broken")
    assert problem is not None
    assert "module_that_does_not_exist_for_harness" in problem


# UI-format (editor) workflow: EmptyImage -> Invert Image -> Save Image, built-in nodes only.
UI_WORKFLOW_BUILTIN = {
    "last_node_id": 3, "last_link_id": 2,
    "nodes": [
        {"id": 1, "type": "EmptyImage", "pos": [50, 100], "size": [315, 130], "flags": {}, "order": 0,
         "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}],
         "properties": {"Node name for S&R": "EmptyImage"}, "widgets_values": [32, 32, 1, 16711680]},
        {"id": 2, "type": "ImageInvert", "pos": [420, 100], "size": [210, 30], "flags": {}, "order": 1,
         "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2], "slot_index": 0}],
         "properties": {"Node name for S&R": "ImageInvert"}, "widgets_values": []},
        {"id": 3, "type": "SaveImage", "pos": [680, 100], "size": [315, 270], "flags": {}, "order": 2,
         "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "outputs": [],
         "properties": {"Node name for S&R": "SaveImage"}, "widgets_values": ["browser_check"]},
    ],
    "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    "groups": [], "config": {}, "extra": {}, "version": 0.4,
}


def needs_chromium():
    if find_chromium() is None:
        pytest.skip("chromium not installed (run `bash .ci/install_browser.sh`)")
    pytest.importorskip("websocket", reason="websocket-client not installed (run `bash .ci/install_browser.sh`)")


@pytest.mark.browser
def test_editor_loads_builtin_workflow_and_draws_it(comfyui_server, tmp_path):
    needs_chromium()
    shot = tmp_path / "builtin.png"
    result = check_workflow_in_browser(comfyui_server.url, UI_WORKFLOW_BUILTIN, shot)

    assert result.missing_node_types == []
    assert result.unregistered_node_types == []
    assert result.missing_nodes_dialog is None
    assert result.node_types_in_graph == ["EmptyImage", "ImageInvert", "SaveImage"]
    assert result.console_errors == []
    with Image.open(shot) as img:
        assert img.format == "PNG" and img.size == (1280, 800)
        # A drawn graph has node bodies, widgets, text and links: far from a blank page.
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 20)) > 50


@pytest.mark.browser
def test_editor_reports_unknown_node_type(comfyui_server, tmp_path):
    needs_chromium()
    workflow = copy.deepcopy(UI_WORKFLOW_BUILTIN)
    workflow["nodes"].append({"id": 4, "type": "NoSuchNodeForBrowser", "pos": [50, 300], "size": [200, 60],
                              "flags": {}, "order": 3, "mode": 0, "inputs": [], "outputs": [],
                              "properties": {}, "widgets_values": [1]})
    workflow["last_node_id"] = 4
    result = check_workflow_in_browser(comfyui_server.url, workflow, tmp_path / "missing.png")

    assert result.missing_node_types == ["NoSuchNodeForBrowser"]
    assert result.unregistered_node_types == ["NoSuchNodeForBrowser"]
    assert "NoSuchNodeForBrowser" in (result.missing_nodes_dialog or "")
