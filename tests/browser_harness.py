"""Load a UI-format workflow into the real ComfyUI frontend in headless chromium.

check_workflow_in_browser(server_url, workflow, screenshot_path) opens the editor served by a
running ComfyUI, loads the workflow with `app.loadGraphData`, and reports which node types the
editor could not resolve plus a PNG screenshot of the canvas. The missing list is the one the
frontend itself computes (it passes it to every extension's `afterConfigureGraph` hook, the
same list its "missing nodes" dialog shows); an independent check against
`LiteGraph.registered_node_types` is returned beside it.

Chromium is driven over the DevTools protocol with websocket-client (.ci/install_browser.sh
installs both).
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]


class BrowserCheckError(RuntimeError):
    """Chromium or the ComfyUI frontend did not do what the check needed."""


@dataclass
class BrowserCheckResult:
    missing_node_types: list[str]          # as reported by the frontend (afterConfigureGraph)
    unregistered_node_types: list[str]     # workflow types absent from LiteGraph's registry
    node_types_in_graph: list[str]         # types of the nodes the editor ended up with
    missing_nodes_dialog: str | None       # text of the "missing nodes" dialog, if one opened
    screenshot_path: Path
    # Errors logged while loading this workflow. The frontend's own boot logs some on a fresh
    # server (0.3.75 / frontend 1.32.9: one TypeError "reading 'id'"); those are kept apart.
    console_errors: list[str] = field(default_factory=list)
    boot_console_errors: list[str] = field(default_factory=list)


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def set_server_setting(server_url: str, setting_id: str, value) -> None:
    req = urllib.request.Request(f"{server_url}/settings/{setting_id}", data=json.dumps(value).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


class _DevTools:
    """Just enough of the DevTools protocol: commands, plus events kept for later reading."""

    def __init__(self, ws_url: str, timeout: float):
        import websocket  # websocket-client

        # No Origin header: chromium refuses DevTools websockets from unknown origins.
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True,
                                              enable_multithread=False)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserCheckError(f"DevTools {method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise BrowserCheckError(f"DevTools {method} gave no answer within {timeout:.0f} s")

    def evaluate(self, expression: str, timeout: float = 60):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserCheckError(f"page script failed: {text}\nscript: {expression[:300]}")
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self.ws.close()


def _wait_for_devtools_port(profile: Path, proc: subprocess.Popen, log: Path, timeout: float) -> int:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrowserCheckError(f"chromium exited with code {proc.returncode}:\n{_tail(log)}")
        if port_file.is_file():
            first_line = port_file.read_text().splitlines()[:1]
            if first_line and first_line[0].strip().isdigit():
                return int(first_line[0])
        time.sleep(0.1)
    raise BrowserCheckError(f"chromium opened no DevTools port within {timeout:.0f} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no chromium log)"


def _page_ws_url(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
        targets = json.loads(resp.read())
    pages = [t for t in targets if t.get("type") == "page"]
    if not pages:
        raise BrowserCheckError(f"chromium has no page target: {targets}")
    return pages[0]["webSocketDebuggerUrl"]


# The frontend hands the list it computed to each extension's afterConfigureGraph hook.
_REGISTER_MISSING_HOOK = """
(() => {
  window.__harnessMissing = null;
  if (!window.__harnessHookRegistered) {
    window.app.registerExtension({
      name: "unit_nodes.tests.browser_harness",
      async afterConfigureGraph(missing) {
        window.__harnessMissing = (missing || []).map(m => typeof m === "string" ? m : m.type);
      },
    });
    window.__harnessHookRegistered = true;
  }
  return true;
})()
"""

_APP_READY = """
(() => !!(window.app && window.app.graph && window.app.canvas && window.LiteGraph
          && Object.keys(window.LiteGraph.registered_node_types || {}).length > 0
          && document.querySelector("canvas")))()
"""

_COLLECT = """
(async () => {
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const wanted = __WANTED__;
  const registered = window.LiteGraph.registered_node_types;
  const dialog = document.querySelector(".comfy-missing-nodes");
  const box = dialog && (dialog.closest("[role=dialog]") || dialog);
  return {
    missing: window.__harnessMissing,
    unregistered: wanted.filter(t => !(t in registered)),
    inGraph: window.app.graph.nodes.map(n => n.type),
    dialog: box ? box.innerText : null,
  };
})()
"""


def check_workflow_in_browser(server_url: str, workflow: dict, screenshot_path: Path | str, *,
                              width: int = 1280, height: int = 800, timeout: float = 120,
                              chromium: str | None = None) -> BrowserCheckResult:
    """Open ComfyUI's editor at server_url, load a UI-format workflow, screenshot the result."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise BrowserCheckError("chromium not found (run .ci/install_browser.sh or set CHROMIUM)")
    screenshot_path = Path(screenshot_path)
    server_url = server_url.rstrip("/")
    # A fresh server would open the template browser over the canvas for a "new user".
    set_server_setting(server_url, "Comfy.TutorialCompleted", True)

    wanted_types = sorted({node["type"] for node in workflow.get("nodes", [])})
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as tmp:
        profile = Path(tmp) / "profile"
        profile.mkdir()
        log = Path(tmp) / "chromium.log"
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={width},{height}", "about:blank"]
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        devtools = None
        try:
            port = _wait_for_devtools_port(profile, proc, log, timeout=30)
            devtools = _DevTools(_page_ws_url(port), timeout=30)
            devtools.call("Page.enable")
            devtools.call("Runtime.enable")
            devtools.call("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            devtools.call("Page.navigate", {"url": server_url + "/"})
            while not devtools.evaluate(_APP_READY):
                if time.monotonic() > deadline:
                    raise BrowserCheckError(f"the ComfyUI frontend at {server_url} was not ready within "
                                            f"{timeout:.0f} s; console: {_console_errors(devtools.events)}")
                time.sleep(0.5)
            devtools.evaluate(_REGISTER_MISSING_HOOK)
            boot_events = len(devtools.events)
            devtools.evaluate(f"window.app.loadGraphData({json.dumps(workflow)}).then(() => true)",
                              timeout=max(5.0, deadline - time.monotonic()))
            collected = devtools.evaluate(_COLLECT.replace("__WANTED__", json.dumps(wanted_types)))
            if collected["missing"] is None:
                raise BrowserCheckError("the frontend never called afterConfigureGraph; this frontend "
                                        "version reports missing nodes differently")
            shot = devtools.call("Page.captureScreenshot", {"format": "png"})
            screenshot_path.parent.mkdir(parents=True, exist_ok=True)
            screenshot_path.write_bytes(base64.b64decode(shot["data"]))
            return BrowserCheckResult(
                missing_node_types=sorted(set(collected["missing"])),
                unregistered_node_types=collected["unregistered"],
                node_types_in_graph=collected["inGraph"],
                missing_nodes_dialog=collected["dialog"],
                screenshot_path=screenshot_path,
                console_errors=_console_errors(devtools.events[boot_events:]),
                boot_console_errors=_console_errors(devtools.events[:boot_events]),
            )
        finally:
            if devtools is not None:
                devtools.close()
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=10)


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
    return errors
