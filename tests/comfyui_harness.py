"""Start a real, headless ComfyUI server for integration tests and talk to it over HTTP.

Where ComfyUI is: the COMFYUI_DIR environment variable, else the path that
`.ci/install_comfyui.sh` wrote to `<repo>/.comfyui/COMFYUI_DIR`.

Every server gets its own temporary folder, so tests never write into the user's ComfyUI:

    <tmp>/base/                  --base-directory: models/, input/, output/, temp/, user/,
                                 and an empty custom_nodes/ (ComfyUI requires it to exist)
    <tmp>/pack_nodes/<name>      symlink to this repository: the node pack under test
    <tmp>/extra_model_paths.yaml custom_nodes -> pack_nodes, plus model folders (e.g. `unit`)
    <tmp>/comfyui.db             --database-url (the default would live inside ComfyUI's folder)
    <tmp>/comfyui.log            stdout+stderr of the server; its tail is put into every error

Only the standard library is used (urllib), so the harness runs wherever pytest does.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
COMFYUI_DIR_FILE = REPO_ROOT / ".comfyui" / "COMFYUI_DIR"
PACK_LINK_NAME = "unit-nodes"
DEFAULT_START_TIMEOUT_S = float(os.environ.get("COMFYUI_START_TIMEOUT", "240"))


class ComfyUIError(RuntimeError):
    """The server could not be started, died, or answered something unexpected."""


class ComfyUIPromptError(ComfyUIError):
    """POST /prompt was refused (HTTP 400): the prompt did not validate."""

    def __init__(self, message: str, error: Any, node_errors: dict):
        super().__init__(message)
        self.error = error
        self.node_errors = node_errors


class ComfyUIExecutionError(ComfyUIError):
    """The prompt was accepted but failed while running."""

    def __init__(self, message: str, history_entry: dict):
        super().__init__(message)
        self.history_entry = history_entry


def execution_error(server, prompt: dict, timeout: float = 120) -> dict:
    """Run ``prompt``, which must fail while executing; returns ComfyUI's execution_error message
    (node id, exception type and message). Raises AssertionError if the prompt ran through."""
    try:
        server.run(prompt, timeout=timeout)
    except ComfyUIExecutionError as exc:
        for kind, info in exc.history_entry["status"]["messages"]:
            if kind == "execution_error":
                return info
        raise AssertionError(f"no execution_error in {exc.history_entry['status']}") from exc
    raise AssertionError("the prompt ran without an execution error")


def configured_comfyui_dir() -> Path | None:
    """The ComfyUI folder the tests should use, or None when none is configured.

    A configured folder that is not a ComfyUI checkout raises: that is a broken setup, not
    an absent one, and must not turn into a silent skip.
    """
    raw = os.environ.get("COMFYUI_DIR", "").strip()
    source = "COMFYUI_DIR environment variable"
    if not raw and COMFYUI_DIR_FILE.is_file():
        raw = COMFYUI_DIR_FILE.read_text(encoding="utf-8").strip()
        source = str(COMFYUI_DIR_FILE)
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not (path / "main.py").is_file():
        raise ComfyUIError(f"{source} says ComfyUI is at {path}, but there is no main.py there "
                           f"(re-run .ci/install_comfyui.sh)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def history_image_paths(history_entry: dict, server: "ComfyUIServer") -> list[Path]:
    """Files of every image listed in a /history entry's outputs, in node-id order."""
    paths = []
    outputs = history_entry.get("outputs", {})
    for node_id in sorted(outputs, key=lambda k: (len(k), k)):
        for image in outputs[node_id].get("images", []):
            folder = server.folder_for_type(image.get("type", "output"))
            paths.append(folder / image.get("subfolder", "") / image["filename"])
    return paths


class ComfyUIServer:
    """A ComfyUI process on a free loopback port with private, temporary folders.

    Use as a context manager; on exit the whole process group is killed and the temporary
    folder removed (kept when keep_tmp=True or COMFYUI_KEEP_TMP=1, for debugging).
    """

    def __init__(self, comfyui_dir: Path | str | None = None, *, pack_dir: Path | str | None = REPO_ROOT,
                 extra_packs: dict[str, Path | str] | None = None,
                 model_folders: dict[str, str] | None = None, python: str | None = None,
                 disable_api_nodes: bool = True, extra_args: list[str] | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT_S, keep_tmp: bool | None = None):
        comfyui_dir = comfyui_dir if comfyui_dir is not None else configured_comfyui_dir()
        if comfyui_dir is None:
            raise ComfyUIError("no ComfyUI configured: set COMFYUI_DIR or run .ci/install_comfyui.sh")
        self.comfyui_dir = Path(comfyui_dir)
        # Packs to link into custom_nodes, by folder name (the name ComfyUI logs and imports by).
        self.packs = {name: Path(path).resolve() for name, path in (extra_packs or {}).items()}
        if pack_dir is not None:
            self.packs[PACK_LINK_NAME] = Path(pack_dir).resolve()
        # `unit` is where the pack looks for UNIT weights; tests drop files into models/unit.
        self.model_folders = {"unit": "models/unit", **(model_folders or {})}
        self.python = python or os.environ.get("COMFYUI_PYTHON") or sys.executable
        self.disable_api_nodes = disable_api_nodes
        self.extra_args = list(extra_args or [])
        self.start_timeout = start_timeout
        self.keep_tmp = keep_tmp if keep_tmp is not None else os.environ.get("COMFYUI_KEEP_TMP") == "1"
        self.tmp_dir: Path | None = None
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._log_file = None

    # -- folders ---------------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self._tmp() / "base"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def temp_dir(self) -> Path:
        return self.base_dir / "temp"

    @property
    def models_dir(self) -> Path:
        return self.base_dir / "models"

    @property
    def log_path(self) -> Path:
        return self._tmp() / "comfyui.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise ComfyUIError("server not started")
        return f"http://127.0.0.1:{self.port}"

    def folder_for_type(self, folder_type: str) -> Path:
        folders = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
        if folder_type not in folders:
            raise ComfyUIError(f"unknown ComfyUI folder type {folder_type!r}; expected one of {sorted(folders)}")
        return folders[folder_type]

    def _tmp(self) -> Path:
        if self.tmp_dir is None:
            raise ComfyUIError("server not started")
        return self.tmp_dir

    def _write_layout(self) -> Path:
        for sub in ("custom_nodes", "input", "output", "temp", "user", "models"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        pack_nodes = self.tmp_dir / "pack_nodes"
        pack_nodes.mkdir()
        for name, path in self.packs.items():
            (pack_nodes / name).symlink_to(path, target_is_directory=True)
        lines = ["unit_nodes_tests:",
                 f"    base_path: {json.dumps(str(self.base_dir))}",
                 "    is_default: true",
                 f"    custom_nodes: {json.dumps(str(pack_nodes))}"]
        for name, rel in self.model_folders.items():
            (self.base_dir / rel).mkdir(parents=True, exist_ok=True)
            lines.append(f"    {name}: {json.dumps(rel)}")
        yaml_path = self.tmp_dir / "extra_model_paths.yaml"
        yaml_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return yaml_path

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ComfyUIServer":
        if self.process is not None:
            raise ComfyUIError("server already started")
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="comfyui-test-"))
        yaml_path = self._write_layout()
        self.port = free_port()
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_dir),
               "--extra-model-paths-config", str(yaml_path),
               "--database-url", f"sqlite:///{self.tmp_dir / 'comfyui.db'}",
               "--disable-auto-launch"]
        if self.disable_api_nodes:
            cmd.append("--disable-api-nodes")
        cmd += self.extra_args
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", DO_NOT_TRACK="1")
        self._log_file = open(self.log_path, "wb")
        self._log_file.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log_file.flush()
        self.process = subprocess.Popen(cmd, cwd=self.comfyui_dir, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self._log_file, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.keep_tmp = True  # the full log stays readable at the path named in the error
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("while starting")
            try:
                self._request("GET", "/system_stats", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, socket.timeout, ComfyUIError):
                pass
            if time.monotonic() > deadline:
                raise ComfyUIError(f"ComfyUI did not answer /system_stats within {timeout:.0f} s"
                                   f"{self._log_tail_block()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, signal.SIGTERM)
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
                except ProcessLookupError:
                    pass
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.tmp_dir is not None and not self.keep_tmp:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> "ComfyUIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ComfyUIError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def pack_load_problem(self, name: str = PACK_LINK_NAME) -> str | None:
        """The log lines about a linked pack that ComfyUI failed to import, or None if it loaded.

        ComfyUI only logs such failures (and V3 entrypoint errors) as warnings and keeps running,
        so tests of a pack should check this first for a readable failure.
        """
        pack_path = str(self._tmp() / "pack_nodes" / name)
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        failed = any("IMPORT FAILED" in line and line.rstrip().endswith(pack_path) for line in lines)
        complaints = [i for i, line in enumerate(lines)
                      if pack_path in line and ("Cannot import" in line or "comfy_entrypoint" in line
                                                or "Skip " in line)]
        if not failed and not complaints:
            return None
        if not complaints:
            return f"ComfyUI reports IMPORT FAILED for {pack_path}{self._log_tail_block()}"
        # Include the traceback ComfyUI printed just before its one-line complaint.
        first = complaints[0]
        start = next((i for i in range(first, max(-1, first - 300), -1)
                      if lines[i].startswith("Traceback (most recent call last)")), first)
        return "\n".join(lines[start:complaints[-1] + 1])

    def _log_tail_block(self) -> str:
        log = self.log_path if self.tmp_dir is not None else "(none)"
        return f"\n--- last lines of the ComfyUI log {log} ---\n{self.log_tail()}\n--- end of log ---"

    def _check_alive(self, doing: str) -> None:
        if self.process is None:
            raise ComfyUIError("server not started")
        code = self.process.poll()
        if code is not None:
            raise ComfyUIError(f"ComfyUI exited with code {code} {doing}{self._log_tail_block()}")

    # -- HTTP ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: Any = None, timeout: float = 30) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        if not body:
            return None
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body.decode("utf-8", errors="replace")

    def object_info(self, node_class: str | None = None) -> dict:
        path = "/object_info" if node_class is None else "/object_info/" + urllib.parse.quote(node_class)
        return self._request("GET", path, timeout=60)

    def queue_prompt(self, api_workflow: dict, client_id: str | None = None) -> str:
        """Submit an API-format workflow; returns its prompt_id.

        Raises ComfyUIPromptError (with .node_errors) when ComfyUI refuses it.
        """
        self._check_alive("before queueing a prompt")
        payload = {"prompt": api_workflow, "client_id": client_id or uuid.uuid4().hex}
        try:
            answer = self._request("POST", "/prompt", payload)
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", errors="replace")
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError:
                parsed = {"error": body, "node_errors": {}}
            raise ComfyUIPromptError(
                f"ComfyUI refused the prompt (HTTP {err.code}):\n"
                f"error: {json.dumps(parsed.get('error'), indent=2)}\n"
                f"node_errors: {json.dumps(parsed.get('node_errors'), indent=2)}",
                parsed.get("error"), parsed.get("node_errors") or {}) from None
        if answer.get("node_errors"):
            # Accepted, but some output branches were dropped as invalid: callers should know.
            raise ComfyUIPromptError(f"ComfyUI accepted the prompt only partly; node_errors: "
                                     f"{json.dumps(answer['node_errors'], indent=2)}",
                                     None, answer["node_errors"])
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        entry = self._request("GET", "/history/" + urllib.parse.quote(prompt_id))
        return (entry or {}).get(prompt_id)

    def wait_history(self, prompt_id: str, timeout: float = 120, raise_on_error: bool = True) -> dict:
        """Poll /history until the prompt finished; returns its history entry."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(f"while running prompt {prompt_id}")
            entry = self.history(prompt_id)
            status = (entry or {}).get("status", {})
            if entry is not None and (status.get("completed") or status.get("status_str") == "error"):
                if raise_on_error and status.get("status_str") == "error":
                    raise ComfyUIExecutionError(
                        f"prompt {prompt_id} failed:\n{_execution_error_text(status)}", entry)
                return entry
            if time.monotonic() > deadline:
                raise ComfyUIError(f"prompt {prompt_id} did not finish within {timeout:.0f} s"
                                   f"{self._log_tail_block()}")
            time.sleep(0.25)

    def run(self, api_workflow: dict, timeout: float = 120) -> dict:
        """queue_prompt + wait_history."""
        return self.wait_history(self.queue_prompt(api_workflow), timeout=timeout)

    def interrupt(self) -> None:
        self._request("POST", "/interrupt", {})

    def output_images(self, history_entry: dict) -> list[Path]:
        return history_image_paths(history_entry, self)


def _execution_error_text(status: dict) -> str:
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            return (f"node {data.get('node_id')} ({data.get('node_type')}): "
                    f"{data.get('exception_type')}: {data.get('exception_message')}\n"
                    + "".join(data.get("traceback", [])))
    return json.dumps(status, indent=2)
