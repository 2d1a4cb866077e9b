"""Hugging Face Hub: loading unit-nodes models from a repo, and exporting one for upload.

Downloads go through ``huggingface_hub.hf_hub_download``, one call per file, so everything
its users rely on applies: the standard cache (``HF_HOME`` / ``HF_HUB_CACHE``), a mirror
through ``HF_ENDPOINT``, ``HF_HUB_OFFLINE=1``, tokens. With a full 40-hex commit SHA as the
revision and the file already cached, ``hf_hub_download`` returns the cached path without
any request. Completeness is decided per file (is ``model.safetensors`` of this revision in
the cache?), never by looking at a folder.

A repo holds what :func:`export_for_hub` writes: ``model.safetensors`` (the config in its
metadata, which is authoritative), ``config.json`` (for people and the Hub's UI) and a model
card ``README.md``; optionally inside a ``subfolder``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from .weights import BUNDLED_DIR, CONFIG_FILE, MODEL_FILE, atomic_write_text, save_model

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


class HubError(FileNotFoundError):
    """A model could not be obtained from the Hub; the message says what and where to put it."""


def check_repo_id(repo_id: str) -> str:
    repo_id = (repo_id or "").strip()
    if not REPO_ID.match(repo_id) or ".." in repo_id:
        raise ValueError(f"{repo_id!r} is not a Hugging Face repo id of the form 'org/name'")
    return repo_id


def manual_folder(repo_id: str, models_dirs: Sequence[str | os.PathLike] | None = None) -> Path:
    """Where a user can put a repo's files by hand so that the resolver finds them by name:
    the first models folder (ComfyUI's models/unit) or else the bundled weights/ folder."""
    root = Path(models_dirs[0]) if models_dirs else BUNDLED_DIR
    return root / repo_id.split("/", 1)[1]


def progress_tqdm(callback: Callable[[int, int], None]):
    """A tqdm class for ``hf_hub_download(tqdm_class=...)`` that also reports
    ``callback(bytes_done, bytes_total)``, e.g. to ComfyUI's ProgressBar."""
    from tqdm.auto import tqdm

    class CallbackTqdm(tqdm):
        def update(self, n=1):
            out = super().update(n)
            try:
                callback(int(self.n), int(self.total or 0))
            except Exception:  # a progress display must never break the download
                pass
            return out

    return CallbackTqdm


def download(
    repo_id: str,
    revision: str | None = None,
    subfolder: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    models_dirs: Sequence[str | os.PathLike] | None = None,
) -> Path:
    """The cached local path of ``model.safetensors`` of ``repo_id`` (``config.json`` is
    fetched beside it when available). ``progress(done, total)`` receives byte counts.

    Raises :class:`HubError` (a FileNotFoundError) naming the repo, file, revision and the
    local folder to use instead when the file is neither cached nor downloadable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hf_errors

    repo_id = check_repo_id(repo_id)
    revision = (revision or "").strip() or None
    subfolder = (subfolder or "").strip().strip("/") or None
    kwargs = dict(repo_id=repo_id, revision=revision, subfolder=subfolder, cache_dir=cache_dir,
                  library_name="unit-nodes")
    if progress is not None:
        kwargs["tqdm_class"] = progress_tqdm(progress)
    file_in_repo = f"{subfolder + '/' if subfolder else ''}{MODEL_FILE}"
    where = f"{file_in_repo} of Hub repo {repo_id} at revision {revision or 'main'}"
    by_hand = (f"download it on a connected machine (`huggingface-cli download {repo_id} {file_in_repo}"
               f"{' --revision ' + revision if revision else ''}`), or put {MODEL_FILE} (and {CONFIG_FILE}) "
               f"by hand into {manual_folder(repo_id, models_dirs)} and load that folder")
    try:
        path = hf_hub_download(filename=MODEL_FILE, **kwargs)
    except hf_errors.LocalEntryNotFoundError as exc:
        offline = _offline()
        raise HubError(
            f"{where} is not in the local Hugging Face cache and "
            f"{'HF_HUB_OFFLINE is set' if offline else 'the Hub could not be reached'}: {by_hand}"
        ) from exc
    except hf_errors.GatedRepoError as exc:
        raise HubError(f"{where}: the repo is gated; log in (`huggingface-cli login`) with access, or {by_hand}") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise HubError(f"Hub repo {repo_id} does not exist or is private (needed: {where}); "
                       f"check the name, log in for a private repo, or {by_hand}") from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise HubError(f"Hub repo {repo_id} has no revision {revision!r} (needed: {where})") from exc
    except hf_errors.EntryNotFoundError as exc:
        raise HubError(f"Hub repo {repo_id} has no {file_in_repo} at revision {revision or 'main'}; "
                       f"a unit-nodes repo holds {MODEL_FILE} + {CONFIG_FILE} (see export_for_hub)") from exc
    except hf_errors.HfHubHTTPError as exc:
        raise HubError(f"{where} could not be downloaded ({exc}); {by_hand}") from exc
    try:
        hf_hub_download(filename=CONFIG_FILE, **{k: v for k, v in kwargs.items() if k != "tqdm_class"})
    except Exception:  # config.json is informational; the safetensors metadata is authoritative
        pass
    return Path(path)


def _offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:
        return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


# ----------------------------------------------------------------------------- export


def model_card(
    config,
    *,
    title: str | None = None,
    license: str = "other",
    datasets: Sequence[str] = (),
    description: str = "",
    training: str = "",
    metrics: str = "",
    tags: Sequence[str] = (),
) -> str:
    """A Hub model card: YAML front matter (library, license, pipeline tag, datasets, tags)
    and a body describing the model, how to load it, how it was trained and its metrics."""

    def yaml_list(name: str, items: Sequence[str]) -> list[str]:
        return [f"{name}:"] + [f"- {i}" for i in items] if items else []

    front = ["---", "library_name: unit-nodes", f"license: {license}", "pipeline_tag: image-to-image"]
    front += yaml_list("datasets", list(datasets))
    front += yaml_list("tags", ["unit", "image-to-image-translation", "unsupervised", *tags])
    front.append("---")
    name = title or f"UNIT {config.domain_a} <-> {config.domain_b}"
    body = [
        f"# {name}",
        "",
        description or (f"A UNIT model (Liu, Breuel & Kautz, *Unsupervised Image-to-Image Translation Networks*, "
                        f"NIPS 2017) translating between **{config.domain_a}** (side a) and **{config.domain_b}** (side b)."),
        "",
        "## Architecture",
        "",
        f"- {config.image_size} px training resolution (inference takes any size), channels a/b: "
        f"{config.channels_a}/{config.channels_b}",
        f"- encoders/generators: base width {config.base_channels}, {config.n_downsample} down-samplings, "
        f"{config.n_res_blocks} residual blocks a side ({config.n_shared} shared), {config.norm} norm; "
        f"latent {config.latent_channels} x H/{config.stride} x W/{config.stride}",
        f"- preset: `{config.preset or 'custom'}`; the full config is in `config.json` and in the metadata of "
        "`model.safetensors` (inference-only export: encoders and generators, no discriminators)",
        "",
        "## Use",
        "",
        "```bash",
        "python -m unit_nodes translate image.png --model <this folder or org/repo> --direction a2b --out out/",
        "```",
        "",
        "```python",
        "from unit_nodes.core.sources import resolve",
        "from unit_nodes.core.weights import load_model",
        "from unit_nodes.core.inference import translate",
        "model = load_model(resolve('org/repo', revision='<commit sha>'))",
        "y = translate(model, x, 'a', 'b')  # x: [B, C, H, W] in [-1, 1]",
        "```",
        "",
        "In ComfyUI: *Load UNIT Model* with this folder under `models/unit/`, or its repo id in `hub_repo`.",
    ]
    if training:
        body += ["", "## Training", "", training.strip()]
    if metrics:
        body += ["", "## Metrics", "", metrics.strip()]
    return "\n".join(front + [""] + body) + "\n"


def export_for_hub(
    model,
    folder: str | os.PathLike,
    *,
    card: str | None = None,
    metadata: dict[str, str] | None = None,
    include_discriminators: bool = False,
    **card_fields,
) -> Path:
    """Write ``model`` to ``folder`` ready for ``huggingface-cli upload org/name folder``
    (the ``save_pretrained`` of unit-nodes): ``model.safetensors`` (inference-only unless
    ``include_discriminators``), ``config.json`` and ``README.md`` (``card``, or one built by
    :func:`model_card` from ``card_fields``). Returns the folder."""
    folder = Path(folder).expanduser()
    if folder.suffix == ".safetensors":
        raise ValueError(f"export_for_hub writes a folder, got a file name {folder}")
    save_model(model, folder, include_discriminators=include_discriminators, metadata=metadata)
    atomic_write_text(folder / "README.md", card if card is not None else model_card(model.config, **card_fields))
    return folder
