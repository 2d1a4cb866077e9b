"""Hugging Face Hub downloads of unit-nodes models (pinned revision, offline-capable)."""

from __future__ import annotations

from pathlib import Path

from .weights import CONFIG_FILE, MODEL_FILE


def download(repo_id: str, revision: str | None = None, subfolder: str | None = None) -> Path:
    """Fetch ``model.safetensors`` (and ``config.json``) of ``repo_id`` through hf_hub_download,
    so the standard cache, HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE all apply."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    kwargs = dict(repo_id=repo_id, revision=revision, subfolder=subfolder or None)
    try:
        path = hf_hub_download(filename=MODEL_FILE, **kwargs)
    except LocalEntryNotFoundError as exc:
        where = f"{repo_id}/{subfolder + '/' if subfolder else ''}{MODEL_FILE} at revision {revision or 'main'}"
        raise FileNotFoundError(
            f"{where} is not in the local Hugging Face cache and the Hub cannot be reached (offline?). "
            f"Download it on a connected machine, or put model.safetensors in a local folder and load that folder."
        ) from exc
    try:
        hf_hub_download(filename=CONFIG_FILE, **kwargs)
    except Exception:  # config.json is informational; the safetensors metadata is authoritative
        pass
    return Path(path)
