"""Where a model file comes from: a folder or file, a name under the models folders, a pair
bundled in weights/, or a Hugging Face Hub repo (``hub.download``). The one resolver every
entry point (CLI, nodes, tools) uses, kept apart from ``weights`` (reading and writing
files) and ``hub`` (talking to the Hub) so that neither needs the other's caller."""

from __future__ import annotations

import os
from pathlib import Path

from .hub import check_repo_id, download
from .weights import BUNDLED_DIR, MODEL_FILE, model_file

def bundled_pairs() -> dict[str, Path]:
    """Pretrained pairs shipped in the repository's weights/ folder (complete ones only)."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / MODEL_FILE).is_file()}


HUB_PREFIX = "hf:"


def resolve_hub(
    repo_id: str,
    revision: str | None = None,
    subfolder: str | None = None,
    models_dirs: list[str | os.PathLike] | None = None,
) -> Path:
    """The local .safetensors file of the Hub repo ``repo_id`` ('org/name'), cached or
    downloaded. A repo id is only ever a repo id: it is never looked up as a local path."""
    return download(check_repo_id(repo_id), revision=revision, subfolder=subfolder, models_dirs=models_dirs)


def resolve(
    spec: str | os.PathLike,
    revision: str | None = None,
    subfolder: str | None = None,
    models_dirs: list[str | os.PathLike] | None = None,
) -> Path:
    """The local .safetensors file that ``spec`` names. ``hf:org/name`` is always the Hub repo;
    otherwise, in this order: an existing folder or file, a name in ``models_dirs`` (e.g.
    ComfyUI's models/unit), a bundled pair, then a Hub repo ``org/name`` (see ``hub.download``).
    Callers that take a Hub id from someone else (the Load node) use :func:`resolve_hub`."""
    spec_str = str(spec).strip()
    if not spec_str:
        raise ValueError("no model given: pass a folder, a .safetensors file, a bundled pair name or a Hub repo id")
    if spec_str.startswith(HUB_PREFIX):
        return resolve_hub(spec_str[len(HUB_PREFIX):], revision=revision, subfolder=subfolder, models_dirs=models_dirs)
    path = Path(spec_str).expanduser()
    if path.is_dir():
        return model_file(path)
    if os.path.lexists(path):  # a file, or something that is not one (FIFO, link loop): _sniff says which
        return path
    for root in models_dirs or []:
        for candidate in (Path(root) / spec_str, Path(root) / f"{spec_str}.safetensors"):
            if candidate.is_dir() and (candidate / MODEL_FILE).is_file():
                return candidate / MODEL_FILE
            if candidate.is_file():
                return candidate
    pairs = bundled_pairs()
    if spec_str in pairs:
        return pairs[spec_str] / MODEL_FILE
    if spec_str.count("/") == 1 and not path.suffix and not spec_str.startswith((".", "/", "~")):
        return resolve_hub(spec_str, revision=revision, subfolder=subfolder, models_dirs=models_dirs)
    raise FileNotFoundError(
        f"no model found for {spec_str!r}: not an existing folder or .safetensors file, not a name in "
        f"{[str(d) for d in models_dirs or []]}, not a bundled pair ({sorted(pairs) or 'none installed'}), "
        f"and not a Hub repo id of the form 'org/name' (write hf:org/name to mean the Hub)"
    )
