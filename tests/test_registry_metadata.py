"""pyproject.toml holds what `comfy node publish` reads for the Comfy Registry: [project] name,
version, licence, [project.urls] Repository, and [tool.comfy] PublisherId, DisplayName, Icon and
requires-comfyui, in the forms the registry's own parser (comfy-cli config_parser) accepts."""
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

from comfyui_harness import configured_comfyui_dir

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
COMFY = PYPROJECT["tool"]["comfy"]
# comfy-cli's validate_version: [operator]major.minor.patch[-suffix], comma-separated parts.
VERSION_PART = re.compile(r"^(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?(\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?)?$")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.match(r"\d+\.\d+\.\d+", text).group().split("."))


def test_project_fields_follow_the_registry_rules():
    name = PROJECT["name"]
    # < 100 characters, letters, digits, - _ . only, no two specials in a row, starts with a letter
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9]))*", name), name
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"]), "semantic version X.Y.Z"
    assert PROJECT["description"].strip()
    assert set(PROJECT["license"]) <= {"file", "text"} and any(PROJECT["license"].values())
    repository = urlparse(PROJECT["urls"]["Repository"])
    assert repository.scheme == "https" and repository.netloc and repository.path.strip("/").count("/") == 1


def test_tool_comfy_fields():
    assert re.fullmatch(r"[a-z][a-z0-9-]*", COMFY["PublisherId"]), COMFY["PublisherId"]
    assert COMFY["DisplayName"].strip()
    parts = [part.strip() for part in COMFY["requires-comfyui"].split(",")]
    assert all(VERSION_PART.match(part) for part in parts), COMFY["requires-comfyui"]


def test_icon_is_a_square_image_of_this_repository_at_most_400px():
    url = urlparse(COMFY["Icon"])
    assert url.scheme == "https" and url.path.endswith((".png", ".jpg", ".svg", ".gif")), COMFY["Icon"]
    owner_repo = urlparse(PROJECT["urls"]["Repository"]).path.strip("/")
    prefix = f"/{owner_repo}/main/"
    assert url.netloc == "raw.githubusercontent.com" and url.path.startswith(prefix), \
        f"the Icon should be a file of {owner_repo} (raw URL), got {COMFY['Icon']}"
    local = REPO / url.path[len(prefix):]
    with Image.open(local) as icon:
        assert icon.width == icon.height <= 400, icon.size


def test_the_comfyui_the_tests_run_satisfies_requires_comfyui():
    comfyui = configured_comfyui_dir()
    if comfyui is None:
        pytest.skip("no ComfyUI configured")
    namespace: dict = {}
    exec((comfyui / "comfyui_version.py").read_text(), namespace)
    tested = version_tuple(namespace["__version__"])
    for part in COMFY["requires-comfyui"].split(","):
        operator, version = VERSION_PART.match(part.strip()).groups()
        assert operator in (">=", None, "=="), "only a floor is used here"
        assert tested >= version_tuple(version) if operator == ">=" else tested == version_tuple(version)
