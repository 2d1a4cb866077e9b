"""UNIT models inside ComfyUI: the `unit` models folder, loading with a cache, GPU placement.

Models live in ComfyUI's ``models/unit`` (registered with ``folder_paths``, so
``extra_model_paths.yaml`` entries named ``unit`` are searched too): a ``.safetensors`` file,
or a folder holding ``model.safetensors`` (what Train UNIT and Save UNIT Model write). The
bundled pairs of the repository's ``weights/`` folder are listed after them.

Placement: loaded models are kept on ComfyUI's offload device (the CPU unless
``--highvram``/``--gpu-only``) and moved to ComfyUI's torch device only for the duration of a
node's call (``on_device``), after asking ComfyUI to free that much memory; afterwards they go
back and ComfyUI's cache of freed blocks is released (``soft_empty_cache``). UNIT models are
small (tens of MB), so the move costs little and the GPU stays free for other models.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import folder_paths
import torch
from comfy import model_management

from ..core.networks import UNIT
from ..core.checkpoint import CHECKPOINT_FILE
from ..core.sources import bundled_pairs, resolve_hub
from ..core.weights import MODEL_FILE, load_model

FOLDER = "unit"
EXTENSIONS = {".safetensors"}
NO_MODELS = "(no UNIT models found: use hub_repo)"
CACHE_SIZE = 4


def register_models_folder() -> None:
    """``models/unit`` in folder_paths, keeping any paths extra_model_paths.yaml added first."""
    default = os.path.join(folder_paths.models_dir, FOLDER)
    if FOLDER in folder_paths.folder_names_and_paths:
        paths, _ = folder_paths.folder_names_and_paths[FOLDER]
        if default not in paths:
            paths.append(default)
        folder_paths.folder_names_and_paths[FOLDER] = (paths, set(EXTENSIONS))
    else:
        folder_paths.folder_names_and_paths[FOLDER] = ([default], set(EXTENSIONS))


def models_dirs() -> list[str]:
    return folder_paths.get_folder_paths(FOLDER)


def save_dir() -> Path:
    """Where new models are written: the first (default) ``unit`` folder."""
    return Path(models_dirs()[0])


def model_names() -> list[str]:
    """Dropdown entries: model folders and loose .safetensors in models/unit, then bundled pairs."""
    names: list[str] = []
    for rel in folder_paths.get_filename_list(FOLDER):
        rel = rel.replace("\\", "/")
        base = rel.rsplit("/", 1)[-1]
        if base == CHECKPOINT_FILE:  # training state, not a model to pick
            continue
        names.append(rel.rsplit("/", 1)[0] if base == MODEL_FILE and "/" in rel else rel)
    names = sorted(set(names))
    names += [name for name in bundled_pairs() if name not in names]
    return names or [NO_MODELS]


@dataclass(eq=False)
class UNITModelHandle:
    """What flows through a UNIT_MODEL socket: the model (on the offload device) and its origin."""

    model: UNIT
    name: str
    path: str | None = None

    def __repr__(self) -> str:
        return f"UNITModelHandle({self.name!r})"


def check_handle(value, what: str = "model") -> UNITModelHandle:
    if not isinstance(value, UNITModelHandle):
        raise ValueError(f"{what} must come from a UNIT model node (Load UNIT Model / Train UNIT), got {type(value).__name__}")
    return value


def find_model_file(name: str, hub_repo: str = "", revision: str = "", subfolder: str = "") -> Path:
    """The .safetensors file for the dropdown's ``name``, or for ``hub_repo`` when one is given."""
    hub_repo = (hub_repo or "").strip()
    if hub_repo:
        # Only ever the Hub: a repo id that happens to name a local folder ('loc/..') must not
        # let a client of the server load files from the server's disk.
        if hub_repo.count("/") != 1 or hub_repo.startswith(("/", ".", "~")):
            raise ValueError(f"hub_repo {hub_repo!r} is not a Hugging Face repo id of the form 'org/name'")
        return resolve_hub(hub_repo, revision=revision.strip() or None, subfolder=subfolder.strip() or None,
                           models_dirs=[])
    name = (name or "").strip()
    if not name or name == NO_MODELS:
        raise ValueError(
            f"no model chosen: put a UNIT model in {models_dirs()} (a .safetensors file or a folder with "
            f"{MODEL_FILE}), or give a Hugging Face repo id in hub_repo"
        )
    if name.startswith(("/", "~")) or ".." in Path(name).parts:
        raise ValueError(f"model name {name!r} must be a name from the list, not a path")
    for root in models_dirs():
        candidate = Path(root) / name
        if candidate.is_dir() and (candidate / MODEL_FILE).is_file():
            return candidate / MODEL_FILE
        if candidate.is_file() and candidate.suffix == ".safetensors":
            return candidate
    pairs = bundled_pairs()
    if name in pairs:
        return pairs[name] / MODEL_FILE
    raise FileNotFoundError(
        f"UNIT model {name!r} not found in {models_dirs()} nor among the bundled pairs ({sorted(pairs) or 'none'})"
    )


_cache: OrderedDict[tuple, UNIT] = OrderedDict()
_cache_lock = threading.Lock()


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def load_cached(path: Path) -> UNIT:
    """The inference model in ``path`` on the offload device, reused while the file is unchanged."""
    key = _file_key(path)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = load_model(path, device=model_management.unet_offload_device(), discriminators=False)
    with _cache_lock:
        for old in [k for k in _cache if k[0] == key[0]]:  # an older version of the same file
            del _cache[old]
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def remember(path: Path, model: UNIT) -> None:
    """Put a model that was just written to ``path`` into the cache (Train, Save)."""
    with _cache_lock:
        _cache[_file_key(path)] = model


def file_fingerprint(path: Path) -> str:
    try:
        return ":".join(map(str, _file_key(path)))
    except OSError:
        return f"missing:{path}"


def _model_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )


@contextlib.contextmanager
def on_device(handle: UNITModelHandle):
    """Yield the handle's model on ComfyUI's torch device, and put it back afterwards."""
    model = handle.model
    device = model_management.get_torch_device()
    offload = model_management.unet_offload_device()
    if device.type != "cpu":
        # Activations of a UNIT pass are a few times the weights; ask ComfyUI to make room.
        model_management.free_memory(_model_bytes(model) * 4, device)
    model.to(device)
    try:
        yield model
    finally:
        model.to(offload)
        if device != offload:
            model_management.soft_empty_cache()
