"""Each shipped UI workflow opens in the real ComfyUI editor (headless chromium) with every
node type known; a screenshot per workflow is kept in artifacts/workflows/."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from browser_harness import check_workflow_in_browser, find_chromium

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
SCREENSHOTS = REPO / "artifacts" / "workflows"


@pytest.fixture(scope="module")
def editor_server(comfyui_server):
    if find_chromium() is None:
        pytest.skip("chromium not installed (run `bash .ci/install_browser.sh`)")
    pytest.importorskip("websocket", reason="websocket-client not installed (run `bash .ci/install_browser.sh`)")
    problem = comfyui_server.pack_load_problem()
    assert problem is None, f"ComfyUI did not load the pack:\n{problem}"
    for png in (WORKFLOWS / "inputs").glob("*.png"):  # so the Load Image dropdowns hold the files
        shutil.copy(png, comfyui_server.input_dir / png.name)
    return comfyui_server


@pytest.mark.parametrize("name", sorted(p.stem for p in WORKFLOWS.glob("*.json")))
def test_workflow_opens_in_the_editor_with_no_missing_nodes(editor_server, name):
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text())

    result = check_workflow_in_browser(editor_server.url, workflow, SCREENSHOTS / f"{name}.png")

    assert result.missing_node_types == []
    assert result.unregistered_node_types == []
    assert result.missing_nodes_dialog is None
    assert sorted(result.node_types_in_graph) == sorted(n["type"] for n in workflow["nodes"])
    assert result.console_errors == []
    assert result.screenshot_path.stat().st_size > 10_000
