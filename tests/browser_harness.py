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


# Every execution event the page's own API client hears is kept (Run waits on these).
_RECORD_EXECUTION_EVENTS = """
(() => {
  if (!window.__harnessEvents) {
    window.__harnessEvents = [];
    for (const type of ["execution_start", "execution_cached", "executed", "execution_success",
                        "execution_error", "execution_interrupted"]) {
      window.app.api.addEventListener(type, e =>
        window.__harnessEvents.push({type, detail: JSON.parse(JSON.stringify(e.detail ?? null))}));
    }
  }
  return true;
})()
"""

_SET_WIDGET = """
(() => {
  const node = window.app.graph.getNodeById(%s);
  const widget = node && (node.widgets || []).find(w => w.name === %s);
  if (!widget) return node ? (node.widgets || []).map(w => w.name) : "no such node";
  widget.value = %s;
  window.app.graph.setDirtyCanvas(true, true);
  return true;
})()
"""

# What the Run button calls: app.queuePrompt(0, 1) builds the prompt with graphToPrompt and posts
# it with api.queuePrompt. The server's answer is only observed (the call goes through), because
# app.queuePrompt itself turns a refusal into an error dialog and returns no prompt id.
_QUEUE = """
(async () => {
  const api = window.app.api;
  const original = api.queuePrompt;
  let answer = null, refused = null;
  api.queuePrompt = async function (...args) {
    try {
      answer = await original.apply(this, args);
      return answer;
    } catch (err) {
      refused = err.response ?? {error: String(err), node_errors: {}};
      throw err;
    }
  };
  try {
    await window.app.queuePrompt(0, 1);
  } finally {
    api.queuePrompt = original;
  }
  const nodeErrors = answer && answer.node_errors && Object.keys(answer.node_errors).length ? answer : null;
  return {accepted: !!answer && !refused && !nodeErrors, promptId: answer ? answer.prompt_id : null,
          refused: refused || nodeErrors};
})()
"""

# The run as the page knows it: its events, and the images each node shows. `shown` is true once
# every node that was sent images shows that many, all loaded (the editor loads a node's images
# when it draws the node, so nodes out of view never do).
_RUN_STATE = """
(() => {
  const id = %s;
  const events = window.__harnessEvents.filter(e => e.detail && e.detail.prompt_id === id);
  const finished = events.some(e => ["execution_success", "execution_error", "execution_interrupted"].includes(e.type));
  const images = {};
  for (const node of window.app.graph.nodes) {
    if (node.imgs && node.imgs.length) {
      images[String(node.id)] = node.imgs.map(img => ({src: img.src, width: img.naturalWidth,
                                                        height: img.naturalHeight, complete: img.complete}));
    }
  }
  const shown = events.filter(e => e.type === "executed" && e.detail.output && e.detail.output.images)
    .every(e => {
      const list = images[String(e.detail.display_node ?? e.detail.node)] || [];
      return list.length === e.detail.output.images.length && list.every(img => img.complete);
    });
  return {finished, shown, events, images};
})()
"""

# Zooms and pans so the bounding box of the given nodes (all when none are given) fills the part
# of the canvas the editor's own bars leave free, like its "Fit view"; returns that box in CSS
# pixels of the page.
_FIT_VIEW = """
(() => {
  const ids = %s, margin = %s, inset = %s;
  const canvas = window.app.canvas, title = window.LiteGraph.NODE_TITLE_HEIGHT;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const node of window.app.graph.nodes) {
    if (ids && !ids.includes(node.id)) continue;
    x0 = Math.min(x0, node.pos[0]); y0 = Math.min(y0, node.pos[1] - title);
    x1 = Math.max(x1, node.pos[0] + node.size[0]); y1 = Math.max(y1, node.pos[1] + node.size[1]);
  }
  const box = canvas.canvas.getBoundingClientRect();
  const freeWidth = box.width - inset.left - inset.right, freeHeight = box.height - inset.top - inset.bottom;
  const width = x1 - x0 + 2 * margin, height = y1 - y0 + 2 * margin;
  const scale = Math.min(freeWidth / width, freeHeight / height, 2);
  canvas.ds.scale = scale;
  canvas.ds.offset[0] = (inset.left + (freeWidth - width * scale) / 2) / scale - (x0 - margin);
  canvas.ds.offset[1] = (inset.top + (freeHeight - height * scale) / 2) / scale - (y0 - margin);
  canvas.setDirty(true, true);
  return {x: box.left + (x0 + canvas.ds.offset[0]) * scale, y: box.top + (y0 + canvas.ds.offset[1]) * scale,
          width: (x1 - x0) * scale, height: (y1 - y0) * scale};
})()
"""
# The editor's side bar (left) and its tab bar and floating Run bar (top) cover the canvas there.
EDITOR_INSET = {"left": 64, "top": 100, "right": 16, "bottom": 16}


class EditorSession:
    """One headless chromium showing ComfyUI's editor, for loading and running workflows.

    Use as a context manager: chromium starts, opens the editor and waits until the frontend
    has registered its node types; on exit chromium is killed. Events the page's own API client
    receives from the server (execution_start, executed, execution_success, ...) are recorded in
    the page, so a run is seen exactly as the editor sees it.
    """

    def __init__(self, server_url: str, *, width: int = 1280, height: int = 800, timeout: float = 120,
                 chromium: str | None = None, pixel_ratio: float = 1):
        self.server_url = server_url.rstrip("/")
        self.width, self.height, self.timeout, self.pixel_ratio = width, height, timeout, pixel_ratio
        self.chromium = chromium or find_chromium()
        if self.chromium is None:
            raise BrowserCheckError("chromium not found (run .ci/install_browser.sh or set CHROMIUM)")
        self.devtools: _DevTools | None = None
        self._proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.boot_console_errors: list[str] = []

    def __enter__(self) -> "EditorSession":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        # A fresh server would open the template browser over the canvas for a "new user".
        set_server_setting(self.server_url, "Comfy.TutorialCompleted", True)
        deadline = time.monotonic() + self.timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        profile = Path(self._tmp.name) / "profile"
        profile.mkdir()
        self._log = Path(self._tmp.name) / "chromium.log"
        cmd = [self.chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={self.width},{self.height}", "about:blank"]
        with open(self._log, "wb") as log_file:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        port = _wait_for_devtools_port(profile, self._proc, self._log, timeout=30)
        self.devtools = _DevTools(_page_ws_url(port), timeout=30)
        self.devtools.call("Page.enable")
        self.devtools.call("Runtime.enable")
        self.devtools.call("Emulation.setDeviceMetricsOverride",
                           {"width": self.width, "height": self.height, "deviceScaleFactor": self.pixel_ratio,
                            "mobile": False})
        self.devtools.call("Page.navigate", {"url": self.server_url + "/"})
        self._wait_ready(deadline)
        self.boot_console_errors = self.console_errors()

    def _wait_ready(self, deadline: float) -> None:
        while not self._ready():
            if time.monotonic() > deadline:
                raise BrowserCheckError(f"the ComfyUI frontend at {self.server_url} was not ready within "
                                        f"{self.timeout:.0f} s; console: {_console_errors(self.devtools.events)}")
            time.sleep(0.5)
        self.evaluate(_REGISTER_MISSING_HOOK)
        self.evaluate(_RECORD_EXECUTION_EVENTS)

    def _ready(self) -> bool:
        try:
            return bool(self.evaluate(_APP_READY))
        except BrowserCheckError:  # the page is still navigating
            return False

    def reload(self) -> None:
        """Reload the editor (after changing settings or local storage it reads at start)."""
        self.evaluate("(() => { window.__harnessBeforeReload = true; return true; })()")
        self.devtools.call("Page.reload")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if not self.evaluate("!!window.__harnessBeforeReload"):
                    break
            except BrowserCheckError:  # "Inspected target navigated": the new page is on its way
                pass
            if time.monotonic() > deadline:
                raise BrowserCheckError("the editor did not reload")
            time.sleep(0.2)
        self._wait_ready(deadline)

    def close(self) -> None:
        if self.devtools is not None:
            self.devtools.close()
            self.devtools = None
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, 15)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, 9)
                self._proc.wait(timeout=10)
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- page ------------------------------------------------------------------------------
    def evaluate(self, expression: str, timeout: float = 60):
        if self.devtools is None:
            raise BrowserCheckError("the editor session is not open")
        return self.devtools.evaluate(expression, timeout=timeout)

    def console_errors(self, since: int = 0) -> list[str]:
        return _console_errors(self.devtools.events[since:]) if self.devtools else []

    def event_mark(self) -> int:
        """A position in the page's event log; console_errors(since=mark) reads what came after."""
        return len(self.devtools.events) if self.devtools else 0

    def screenshot(self, path: Path | str, clip: dict | None = None) -> Path:
        path = Path(path)
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": clip.get("scale", 1)}
        shot = self.devtools.call("Page.captureScreenshot", params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    # -- workflows -------------------------------------------------------------------------
    def load_workflow(self, workflow: dict) -> dict:
        """Load a UI-format workflow as the editor's Open does; returns what the frontend reports:
        {missing, unregistered, inGraph, dialog} (see BrowserCheckResult)."""
        wanted_types = sorted({node["type"] for node in workflow.get("nodes", [])})
        self.evaluate("(() => { window.__harnessMissing = null; return true; })()")
        self.evaluate(f"window.app.loadGraphData({json.dumps(workflow)}).then(() => true)", timeout=self.timeout)
        collected = self.evaluate(_COLLECT.replace("__WANTED__", json.dumps(wanted_types)))
        if collected["missing"] is None:
            raise BrowserCheckError("the frontend never called afterConfigureGraph; this frontend "
                                    "version reports missing nodes differently")
        return collected

    def set_widget(self, node_id: int, name: str, value) -> None:
        """Set a node's widget as a user typing into it would (the widget's own callback runs)."""
        ok = self.evaluate(_SET_WIDGET % (json.dumps(node_id), json.dumps(name), json.dumps(value)))
        if ok is not True:
            raise BrowserCheckError(f"node {node_id} has no widget {name!r} (widgets: {ok})")

    def graph_to_prompt(self) -> dict:
        """``app.graphToPrompt()``: {"output": API prompt, "workflow": UI workflow}, as Run builds it."""
        return self.evaluate("window.app.graphToPrompt().then(p => ({output: p.output, workflow: p.workflow}))")

    def queue_and_wait(self, timeout: float = 300, images_timeout: float = 30) -> "EditorRun":
        """Press Run (``app.queuePrompt(0, 1)``, what the Run button calls) and wait until the editor
        hears that the prompt finished, failed or was refused, then (up to images_timeout) until
        it shows the images the run sent. Nodes must be in view to show images (fit_view)."""
        mark = self.event_mark()
        queued = self.evaluate(_QUEUE, timeout=120)
        if not queued["accepted"]:
            return EditorRun(accepted=False, prompt_id=None, refused=queued["refused"], events=[],
                             node_images={}, console_errors=self.console_errors(mark))
        deadline = time.monotonic() + timeout
        images_deadline = None
        while True:
            state = self.evaluate(_RUN_STATE % json.dumps(queued["promptId"]))
            now = time.monotonic()
            if state["finished"]:
                images_deadline = images_deadline or now + images_timeout
                if state["shown"] or now > images_deadline:
                    return EditorRun(accepted=True, prompt_id=queued["promptId"], refused=None,
                                     events=state["events"], node_images=state["images"],
                                     console_errors=self.console_errors(mark))
            elif now > deadline:
                raise BrowserCheckError(f"prompt {queued['promptId']} did not finish within {timeout:.0f} s; "
                                        f"events so far: {[e['type'] for e in state['events']]}")
            time.sleep(0.25)

    def fit_view(self, node_ids: list[int] | None = None, margin: float = 20) -> dict:
        """Zoom and pan the canvas so the whole graph (or the given nodes) is in view, as the
        editor's "Fit view" does; returns the nodes' box on the page {x, y, width, height}."""
        return self.evaluate(_FIT_VIEW % (json.dumps(node_ids), json.dumps(margin), json.dumps(EDITOR_INSET)))


@dataclass
class EditorRun:
    accepted: bool                 # POST /prompt answered 200 with no node_errors
    prompt_id: str | None
    refused: dict | None           # {error, node_errors} when the server refused the prompt
    events: list[dict]             # the page's execution events of this prompt: {type, detail}
    # node id -> the images the editor shows on that node once the run is over:
    # [{src, width, height}] of its <img> elements (served by /view), width 0 when one failed to load
    node_images: dict[str, list[dict]]
    console_errors: list[str]

    @property
    def error(self) -> dict | None:
        for event in self.events:
            if event["type"] in ("execution_error", "execution_interrupted"):
                return event["detail"]
        return None

    @property
    def succeeded(self) -> bool:
        return self.accepted and any(e["type"] == "execution_success" for e in self.events) and self.error is None


def check_workflow_in_browser(server_url: str, workflow: dict, screenshot_path: Path | str, *,
                              width: int = 1280, height: int = 800, timeout: float = 120,
                              chromium: str | None = None) -> BrowserCheckResult:
    """Open ComfyUI's editor at server_url, load a UI-format workflow, screenshot the result."""
    with EditorSession(server_url, width=width, height=height, timeout=timeout, chromium=chromium) as editor:
        mark = editor.event_mark()
        collected = editor.load_workflow(workflow)
        shot = editor.screenshot(screenshot_path)
        return BrowserCheckResult(
            missing_node_types=sorted(set(collected["missing"])),
            unregistered_node_types=collected["unregistered"],
            node_types_in_graph=collected["inGraph"],
            missing_nodes_dialog=collected["dialog"],
            screenshot_path=shot,
            console_errors=editor.console_errors(mark),
            boot_console_errors=editor.boot_console_errors,
        )


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
