"""Each shipped UI workflow, as a user meets it in the real ComfyUI editor (headless chromium).

It opens with every node type known; the editor's own ``app.graphToPrompt()`` turns it into
exactly its API twin in workflows/api/; and pressing Run (``app.queuePrompt``, what the Run
button calls) executes it with no validation or execution error, after which the editor shows
every Save/Preview Image node's output images, loaded from the server's /view. Training is
made quick the way a user would do it: by typing a few steps and a small size into Train UNIT
in the editor. Screenshots are kept in artifacts/workflows/.
"""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from browser_harness import EditorSession, find_chromium

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
SCREENSHOTS = REPO / "artifacts" / "workflows"
WORKFLOW_NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
IMAGE_NODES = {"SaveImage": "output", "PreviewImage": "temp"}
# What a user in a hurry types into Train UNIT: a handful of steps on small images.
QUICK_TRAINING = {"steps": 2, "batch_size": 2, "image_size": 32, "preview_every": 1}


@pytest.fixture(scope="module")
def editor_server(comfyui_server):
    if find_chromium() is None:
        pytest.skip("chromium not installed (run `bash .ci/install_browser.sh`)")
    pytest.importorskip("websocket", reason="websocket-client not installed (run `bash .ci/install_browser.sh`)")
    problem = comfyui_server.pack_load_problem()
    assert problem is None, f"ComfyUI did not load the pack:\n{problem}"
    return comfyui_server


@pytest.fixture(scope="module")
def object_info(editor_server):
    return editor_server.object_info()


@pytest.fixture(scope="module")
def editor(editor_server):
    with EditorSession(editor_server.url) as session:
        yield session


def load(editor: EditorSession, name: str) -> tuple[dict, dict]:
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text())
    return workflow, editor.load_workflow(workflow)


def test_a_fresh_server_holds_the_example_images_the_workflows_load(editor_server):
    """Nothing to copy by hand: the pack put its example images into ComfyUI's input folder."""
    wanted = {node["widgets_values"][0] for name in WORKFLOW_NAMES
              for node in json.loads((WORKFLOWS / f"{name}.json").read_text())["nodes"] if node["type"] == "LoadImage"}
    assert wanted
    for image in sorted(wanted):
        assert (editor_server.input_dir / image).read_bytes() == (WORKFLOWS / "inputs" / image).read_bytes()


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_workflow_opens_in_the_editor_with_no_missing_nodes(editor, name):
    mark = editor.event_mark()
    workflow, loaded = load(editor, name)
    shot = editor.screenshot(SCREENSHOTS / f"{name}.png")

    assert loaded["missing"] == []
    assert loaded["unregistered"] == []
    assert loaded["dialog"] is None
    assert sorted(loaded["inGraph"]) == sorted(n["type"] for n in workflow["nodes"])
    assert editor.console_errors(mark) == []
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_editor_builds_the_api_twin_of_each_workflow(editor, object_info, name):
    """The frontend's own graphToPrompt, not an emulation of it: every widget value lands on the
    input it is meant for (a missing 'control after generate' slot shifts them all)."""
    load(editor, name)
    twin = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())

    prompt = editor.graph_to_prompt()["output"]

    assert sorted(prompt, key=int) == sorted(twin, key=int)
    for node_id, node in prompt.items():
        assert node["class_type"] == twin[node_id]["class_type"], node_id
        # Inputs the node does not declare are the editor's own display widgets (Preview Any's
        # text); the server ignores them.
        declared = {name for category in ("required", "optional")
                    for name in object_info[node["class_type"]]["input"].get(category, {})}
        inputs = {key: value for key, value in node["inputs"].items() if key in declared}
        assert inputs == twin[node_id]["inputs"], f"{name}: node {node_id} ({node['class_type']})"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_workflow_runs_from_the_editor_and_shows_its_images(editor, editor_server, name):
    workflow, _ = load(editor, name)
    for node in workflow["nodes"]:
        if node["type"] == "UNITTrain":
            for widget, value in QUICK_TRAINING.items():
                editor.set_widget(node["id"], widget, value)
    editor.fit_view()  # as a user watching the run: the editor draws (and fills) only nodes in view

    run = editor.queue_and_wait(timeout=300)
    editor.screenshot(SCREENSHOTS / f"{name}_after_run.png")

    assert run.accepted, f"the server refused the editor's prompt: {json.dumps(run.refused, indent=1)}"
    assert run.error is None, f"execution failed: {json.dumps(run.error, indent=1)}"
    assert run.succeeded, [e["type"] for e in run.events]
    executed = {e["detail"]["node"]: e["detail"]["output"] for e in run.events if e["type"] == "executed"}
    image_nodes = [n for n in workflow["nodes"] if n["type"] in IMAGE_NODES]
    assert image_nodes, f"{name} has no node that shows images"
    for node in image_nodes:
        node_id = str(node["id"])
        listed = executed[node_id]["images"]
        shown = run.node_images.get(node_id, [])
        assert listed and len(shown) == len(listed), f"node {node_id}: {len(listed)} images, {len(shown)} shown"
        for item, img in zip(listed, shown):
            assert item["type"] == IMAGE_NODES[node["type"]]
            query = urllib.parse.parse_qs(urllib.parse.urlparse(img["src"]).query)
            assert "/view" in img["src"] and query["filename"] == [item["filename"]], img["src"]
            assert img["width"] > 0 and img["height"] > 0, f"node {node_id}: {img['src']} did not load"
            path = editor_server.folder_for_type(item["type"]) / item["subfolder"] / item["filename"]
            assert path.is_file(), path
    assert run.console_errors == []


def test_template_thumbnails_load_in_the_editor(editor):
    """The Templates dialog asks for api/workflow_templates/<pack>/<name>.jpg; each one loads."""
    sizes = editor.evaluate("""
      Promise.all(%s.map(name => new Promise(resolve => {
        const img = new Image();
        img.onload = () => resolve([name, img.naturalWidth, img.naturalHeight]);
        img.onerror = () => resolve([name, 0, 0]);
        img.src = window.app.api.apiURL(`/workflow_templates/unit-nodes/${name}.jpg`);
      })))
    """ % json.dumps(WORKFLOW_NAMES))
    assert [name for name, width, height in sizes if not (width == height >= 256)] == [], sizes
