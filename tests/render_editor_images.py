"""Render the pictures of the shipped workflows from real runs in the real editor.

    .venv/bin/python tests/render_editor_images.py [--train-steps 60]

Starts a private ComfyUI (tests/comfyui_harness.py) and headless chromium, then for every UI
workflow in workflows/: opens it, presses Run as a user would (Train UNIT on the bundled example
sets, with --train-steps steps at 32 px so the render takes about a minute), waits until the
editor shows the output images and writes

    workflows/<name>.jpg               the template thumbnail ComfyUI's Templates dialog shows
                                       (served at /api/workflow_templates/<pack folder>/<name>.jpg):
                                       the images the editor showed after the run, inputs first
    docs/comfyui_cycle_reconstruct.png the README's screenshot of the editor after a run
    docs/icon.png                      the registry icon: two MNIST digits and their MNIST-M
                                       translations by the bundled mnist-mnistm pair, 256 x 256

Nothing here is a test; tests/test_workflows_browser.py runs the same steps and checks them.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import sys
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_harness import EditorRun, EditorSession, set_server_setting  # noqa: E402
from comfyui_harness import ComfyUIServer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
README_SHOT = ("unit_cycle_reconstruct", REPO / "docs" / "comfyui_cycle_reconstruct.png")
ICON = REPO / "docs" / "icon.png"
ICON_SIZE = 256
ICON_DIGITS = ("digit3_mnist_test00018.png", "digit7_mnist_test00000.png")
THUMBNAIL_SIZE = 512
CANVAS_BACKGROUND = (34, 34, 34)

# The editor's own overlays (the "Nodes 2.0" banner, the minimap) are switched off so that
# the pictures show the graph.
_TIDY = """
(() => {
  localStorage.setItem("vueNodesBannerDismissed", "true");
  return true;
})()
"""


def editor_view(editor: EditorSession, workflow: dict, train_steps: int) -> EditorRun:
    editor.load_workflow(workflow)
    for node in workflow["nodes"]:
        if node["type"] == "UNITTrain":
            for widget, value in {"steps": train_steps, "batch_size": 4, "image_size": 32,
                                  "preview_every": max(1, train_steps // 4), "save_name": "render-run"}.items():
                editor.set_widget(node["id"], widget, value)
    editor.fit_view()
    run = editor.queue_and_wait(timeout=1800)
    if not run.succeeded:
        raise SystemExit(f"the run failed: refused={run.refused} error={run.error}")
    return run


def thumbnail(workflow: dict, run: EditorRun, path: Path) -> None:
    """The images the editor shows after the run (inputs first, then outputs, in graph order),
    fetched from the server's /view as the page did, on a square of the canvas colour."""
    order = sorted(workflow["nodes"], key=lambda n: (n["type"] != "LoadImage", n["pos"][0], n["pos"][1]))
    images = []
    for node in order:
        for shown in run.node_images.get(str(node["id"]), []):
            if not shown["src"].startswith("http"):  # Train UNIT's live preview: a blob the page made
                continue
            with urllib.request.urlopen(shown["src"], timeout=30) as answer:
                images.append(Image.open(io.BytesIO(answer.read())).convert("RGB"))
    if not images:
        raise SystemExit(f"{path.stem}: the editor showed no images")
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell = THUMBNAIL_SIZE // max(cols, rows)
    sheet = Image.new("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE), CANVAS_BACKGROUND)
    top = (THUMBNAIL_SIZE - rows * cell) // 2
    for i, image in enumerate(images):
        fit = min((cell - 8) / image.width, (cell - 8) / image.height)
        shown = image.resize((max(1, round(image.width * fit)), max(1, round(image.height * fit))), Image.NEAREST)
        x = (i % cols) * cell + (cell - shown.width) // 2 + (THUMBNAIL_SIZE - cols * cell) // 2
        y = top + (i // cols) * cell + (cell - shown.height) // 2
        sheet.paste(shown, (x, y))
    sheet.save(path, "JPEG", quality=90)


def icon(server: ComfyUIServer, path: Path) -> None:
    """Two MNIST digits beside their translations into MNIST-M by the bundled mnist-mnistm pair,
    each through the translate workflow (a real prompt)."""
    api = json.loads((WORKFLOWS / "api" / "unit_translate_a_to_b.json").read_text())
    cells = []
    for sample in ICON_DIGITS:
        source = REPO / "weights" / "mnist-mnistm" / "samples" / "a" / sample
        shutil.copy(source, server.input_dir / f"icon_{sample}")
        prompt = json.loads(json.dumps(api))
        for node in prompt.values():
            if node["class_type"] == "LoadImage":
                node["inputs"]["image"] = f"icon_{sample}"
            if node["class_type"] == "UNITLoadModel":
                node["inputs"]["model_name"] = "mnist-mnistm"
        [translated] = server.output_images(server.run(prompt, timeout=300))
        cells += [Image.open(source).convert("RGB"), Image.open(translated).convert("RGB")]
    side = ICON_SIZE // 2
    sheet = Image.new("RGB", (ICON_SIZE, ICON_SIZE))
    for i, cell in enumerate(cells):
        sheet.paste(cell.resize((side, side), Image.NEAREST), ((i % 2) * side, (i // 2) * side))
    sheet.save(path, "PNG", optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--only", nargs="*", help="workflow names (default: all)")
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in WORKFLOWS.glob("*.json"))
    with ComfyUIServer() as server:
        set_server_setting(server.url, "Comfy.Minimap.Visible", False)
        with EditorSession(server.url, width=1280, height=800) as editor:
            editor.evaluate(_TIDY)
            editor.reload()
            for name in names:
                workflow = json.loads((WORKFLOWS / f"{name}.json").read_text())
                run = editor_view(editor, workflow, args.train_steps)
                if name == README_SHOT[0]:
                    editor.fit_view(margin=30)
                    editor.screenshot(README_SHOT[1])
                    print("wrote", README_SHOT[1])
                thumbnail(workflow, run, WORKFLOWS / f"{name}.jpg")
                print("wrote", WORKFLOWS / f"{name}.jpg")
        icon(server, ICON)
        print("wrote", ICON)


if __name__ == "__main__":
    main()
