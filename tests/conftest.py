# --- ComfyUI integration fixture (keep self-contained; other fixtures go below) -----------
import pytest

from comfyui_harness import ComfyUIError, ComfyUIServer, configured_comfyui_dir


@pytest.fixture(scope="session")
def comfyui_dir():
    """The configured ComfyUI folder; skips only when none is configured, fails when it is broken."""
    try:
        found = configured_comfyui_dir()
    except ComfyUIError as err:
        pytest.fail(str(err), pytrace=False)
    if found is None:
        pytest.skip("no ComfyUI configured: set COMFYUI_DIR or run `bash .ci/install_comfyui.sh`")
    return found


@pytest.fixture(scope="session")
def comfyui_server(comfyui_dir):
    """One real, headless ComfyUI for the whole session, loading this repo as a custom node pack.

    Skipped only when no ComfyUI is configured (COMFYUI_DIR unset and no .comfyui/COMFYUI_DIR);
    a configured ComfyUI that does not start fails the tests, with the log tail.
    """
    server = ComfyUIServer(comfyui_dir)
    try:
        server.start()
    except ComfyUIError as err:
        pytest.fail(f"ComfyUI at {comfyui_dir} failed to start: {err}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
# --- end of the ComfyUI fixture -----------------------------------------------------------
