"""Hub loading through the real huggingface_hub code paths, without internet.

A loopback HTTP server serves a repo folder the way the Hub's file-resolution endpoint
does (``/{repo}/resolve/{revision}/{path}``, with ``X-Repo-Commit`` and ``ETag``), reached
through ``HF_ENDPOINT``; each client runs in a subprocess so that ``HF_HOME``,
``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are read by huggingface_hub at import, as for users.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from tiny import tiny_config
from unit_nodes.core.hub import check_repo_id, export_for_hub, model_card
from unit_nodes.core.networks import UNIT
from unit_nodes.core.weights import load_model

REPO = "unit-nodes-tests/tiny-pair"
SHA = "0123456789abcdef0123456789abcdef01234567"
ROOT = Path(__file__).resolve().parents[1]


class HubHandler(http.server.BaseHTTPRequestHandler):
    repos: dict[str, Path] = {}
    requests: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _resolve(self):
        self.requests.append(f"{self.command} {self.path}")
        parts = self.path.split("?")[0].strip("/").split("/")
        # {org}/{name}/resolve/{revision}/{path...}
        if len(parts) < 5 or parts[2] != "resolve":
            return None, 404, {"X-Error-Code": "RepoNotFound"}
        repo, revision, rel = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        folder = self.repos.get(repo)
        if folder is None:
            return None, 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
        if revision not in ("main", SHA):
            return None, 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}
        file = folder / rel
        if not file.is_file():
            return None, 404, {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found",
                               "X-Repo-Commit": SHA}
        data = file.read_bytes()
        return data, 200, {"X-Repo-Commit": SHA, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                           "Content-Length": str(len(data)), "Content-Type": "application/octet-stream"}

    def _answer(self, with_body: bool):
        data, status, headers = self._resolve()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if data is None:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if with_body and data is not None:
            self.wfile.write(data)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


@pytest.fixture()
def hub(tmp_path):
    torch.manual_seed(0)
    model = UNIT(tiny_config(channels_a=1, channels_b=3), discriminators=False).eval()
    repo_dir = export_for_hub(model, tmp_path / "repo", datasets=["mnist"], license="cc-by-sa-3.0")
    # the same model again in a subfolder, as multi-model repos keep them
    export_for_hub(model, tmp_path / "repo" / "v2")
    HubHandler.repos = {REPO: repo_dir}
    HubHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield dict(model=model, repo=repo_dir, endpoint=f"http://127.0.0.1:{server.server_address[1]}",
               home=tmp_path / "hf_home", requests=HubHandler.requests)
    server.shutdown()
    server.server_close()


def client(hub, spec: str, revision: str | None = None, subfolder: str | None = None, offline: bool = False):
    """Run resolve() in a fresh interpreter with the Hub environment a user would set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(hub["home"]), HF_ENDPOINT=hub["endpoint"], HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_OFFLINE="1" if offline else "0", HF_HUB_DISABLE_XET="1", PYTHONPATH=str(ROOT))
    code = (
        "import json, sys\n"
        "from unit_nodes.core.sources import resolve\n"
        "try:\n"
        f"    print(json.dumps({{'path': str(resolve({spec!r}, revision={revision!r}, subfolder={subfolder!r}))}}))\n"
        "except FileNotFoundError as e:\n"
        "    print(json.dumps({'error': type(e).__name__, 'message': str(e)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_download_then_offline_with_full_sha_makes_no_request(hub):
    got = client(hub, REPO)
    assert "path" in got, got
    path = Path(got["path"])
    # the standard cache layout under HF_HOME, pinned to the commit the server reported
    assert path.is_relative_to(hub["home"] / "hub" / "models--unit-nodes-tests--tiny-pair" / "snapshots" / SHA)
    assert path.read_bytes() == (hub["repo"] / "model.safetensors").read_bytes()
    assert (path.parent / "config.json").is_file()
    assert any("model.safetensors" in r for r in hub["requests"])

    model = load_model(path)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.decode(model.encode(x, "a"), "b"), hub["model"].decode(hub["model"].encode(x, "a"), "b"))

    hub["requests"].clear()
    for offline in (True, False):  # with a full SHA, even online mode must not ask the server
        again = client(hub, REPO, revision=SHA, offline=offline)
        assert again == got
    assert hub["requests"] == []


def test_subfolder_is_fetched_per_file(hub):
    got = client(hub, REPO, subfolder="v2")
    assert "path" in got, got
    assert Path(got["path"]).parent.name == "v2"
    # the top-level model is a different file: not cached, so offline it is missing
    missing = client(hub, REPO, revision=SHA, offline=True)
    assert missing["error"] == "HubError"


def test_offline_missing_file_names_repo_file_revision_and_folder(hub):
    got = client(hub, REPO, revision=SHA, offline=True)
    assert got["error"] == "HubError"
    msg = got["message"]
    for part in (REPO, "model.safetensors", SHA, "HF_HUB_OFFLINE", str(ROOT / "weights" / "tiny-pair")):
        assert part in msg, (part, msg)
    assert hub["requests"] == []


def test_unknown_repo_and_revision_are_clear_errors(hub):
    unknown = client(hub, "unit-nodes-tests/no-such-repo")
    assert unknown["error"] == "HubError" and "unit-nodes-tests/no-such-repo" in unknown["message"]
    bad_rev = client(hub, REPO, revision="v9")
    assert bad_rev["error"] == "HubError" and "v9" in bad_rev["message"]


def test_export_for_hub_writes_an_uploadable_folder(tmp_path):
    torch.manual_seed(1)
    model = UNIT(tiny_config(), discriminators=True)
    folder = export_for_hub(model, tmp_path / "out", datasets=["mnist", "usps"], license="cc-by-sa-3.0",
                            metrics="| task | acc |\n|---|---|\n| x | 1 |")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    for line in ("library_name: unit-nodes", "license: cc-by-sa-3.0", "pipeline_tag: image-to-image", "- usps"):
        assert line in front
    assert "| x | 1 |" in card
    loaded = load_model(folder)
    assert loaded.dis is None or not any(True for _ in loaded.dis.parameters())  # inference-only export
    assert json.loads((folder / "config.json").read_text()) == model.config.to_dict()
    assert model_card(model.config).startswith("---\nlibrary_name: unit-nodes\n")


@pytest.mark.parametrize("bad", ["", "noslash", "a/b/c", "../x", "/abs/path", "org/na me"])
def test_repo_id_validation(bad):
    with pytest.raises(ValueError, match="repo id"):
        check_repo_id(bad)
