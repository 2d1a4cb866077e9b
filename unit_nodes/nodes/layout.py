"""ComfyUI's IMAGE layout <-> the core's, and the checks on node inputs.

ComfyUI's IMAGE is float [B, H, W, C] in 0..1 (C = 3, sometimes 1 or 4); the core works on
[B, C, H, W] in -1..1. Nothing here imports ComfyUI, so it is tested without a server.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..core.tensors import match_channels, to_model_range, to_unit_range

DOMAINS = {"A": "a", "B": "b"}
SAVE_NAME_RULE = "letters, digits, '-', '_', '.' and spaces, not starting with '.' (no folders)"
_SAVE_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-. ]{0,127}$")


def domain_key(label: str, what: str = "domain") -> str:
    """'A' / 'B' (what the dropdowns show) -> the core's 'a' / 'b'."""
    try:
        return DOMAINS[str(label).strip().upper()]
    except KeyError:
        raise ValueError(f"{what} must be 'A' or 'B', got {label!r}") from None


def image_to_core(image, what: str = "image") -> torch.Tensor:
    """ComfyUI IMAGE [B, H, W, C] in 0..1 -> [B, C, H, W] in -1..1 (channels kept as given)."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{what} must be an IMAGE tensor, got {type(image).__name__}")
    if image.dim() == 3:  # a single image without its batch axis
        image = image.unsqueeze(0)
    if image.dim() != 4:
        raise ValueError(f"{what} must be an IMAGE of shape [batch, height, width, channels], got {tuple(image.shape)}")
    b, h, w, c = image.shape
    if c not in (1, 3, 4):
        raise ValueError(
            f"{what} has {c} channels (shape {tuple(image.shape)}); expected 1 (gray), 3 (RGB) or 4 (RGBA) "
            f"in ComfyUI's [batch, height, width, channels] layout"
        )
    if b == 0 or h == 0 or w == 0:
        raise ValueError(f"{what} is empty (shape {tuple(image.shape)})")
    if not image.is_floating_point():
        raise ValueError(f"{what} must be float in 0..1, got dtype {image.dtype}")
    return to_model_range(image.permute(0, 3, 1, 2).float())


def core_to_image(x: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """[B, C, H, W] in -1..1 (C = 1 or 3) -> ComfyUI IMAGE [B, H, W, 3] in 0..1."""
    return to_unit_range(match_channels(x, 3)).permute(0, 2, 3, 1).contiguous().to(device)


def unit_to_image(x01: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """[B, C, H, W] already in 0..1 (e.g. an error map) -> ComfyUI IMAGE [B, H, W, 3]."""
    return match_channels(x01, 3).permute(0, 2, 3, 1).contiguous().to(device)


def preview_rows_to_image(rows: torch.Tensor) -> torch.Tensor:
    """Trainer.preview's [N, 3, H, W'] in 0..1 -> one ComfyUI IMAGE [1, N*H, W', 3] (rows stacked)."""
    return torch.cat(list(rows), dim=1).permute(1, 2, 0).unsqueeze(0).contiguous()


def image_to_pil(image: torch.Tensor, min_width: int = 0):
    """The first image of an IMAGE batch as a PIL image, enlarged (nearest) to at least ``min_width``."""
    from PIL import Image

    arr = (image[0].detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    pil = Image.fromarray(arr)
    if min_width and pil.width < min_width:
        factor = -(-min_width // pil.width)
        pil = pil.resize((pil.width * factor, pil.height * factor), Image.NEAREST)
    return pil


def check_save_name(name: str) -> str:
    """A model name that stays one folder inside models/unit: no separators, no '..'."""
    name = str(name).strip()
    if not name:
        raise ValueError("save name is empty: give the model a name (it becomes models/unit/<name>/)")
    if "/" in name or "\\" in name or ".." in name or not _SAVE_NAME.match(name):
        raise ValueError(f"save name {name!r} is not allowed: use {SAVE_NAME_RULE}")
    return name


# --- which folders Train UNIT may read ----------------------------------------------------
TRAIN_ROOTS_ENV = "UNIT_TRAIN_ROOTS"


def training_roots(input_dir: str | os.PathLike, environ=os.environ) -> list[Path]:
    """The folders Train UNIT may read images from: ComfyUI's input directory, plus the
    absolute folders the server's operator lists in ``UNIT_TRAIN_ROOTS`` (os.pathsep-separated).
    Anyone who can reach the server can queue a training, so it must not read (and preview)
    any folder of the machine."""
    roots = [Path(os.path.realpath(input_dir))]
    for item in environ.get(TRAIN_ROOTS_ENV, "").split(os.pathsep):
        item = item.strip()
        if not item:
            continue
        if not os.path.isabs(item):
            raise ValueError(f"{TRAIN_ROOTS_ENV} lists {item!r}, which is not an absolute folder path")
        roots.append(Path(os.path.realpath(item)))
    return roots


def within(path: str | os.PathLike, roots: list[Path]) -> bool:
    """Whether ``path`` (symlinks and '..' resolved) lies inside one of ``roots``."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, str(root)]) == str(root) for root in roots)


def training_folder(value: str, what: str, input_dir: str | os.PathLike, environ=os.environ) -> Path:
    """The folder a Train UNIT input names: relative to ComfyUI's input directory, or absolute;
    either way it must lie (once resolved) inside :func:`training_roots`."""
    text = str(value or "").strip()
    if not text:
        raise ValueError(f"{what} is empty: give a subfolder of ComfyUI's input directory")
    # Reserved example-set names (bundled with the pack) are resolved by the caller before this rule.
    roots = training_roots(input_dir, environ)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(input_dir) / path
    if not within(path, roots):
        extra = [str(r) for r in roots[1:]]
        raise ValueError(
            f"{what} {text!r} is outside ComfyUI's input directory ({input_dir}); Train UNIT reads only folders "
            f"there and under the folders the server's operator lists in {TRAIN_ROOTS_ENV} "
            f"({', '.join(extra) if extra else 'none set'})")
    if not path.is_dir():
        raise ValueError(f"{what} {text!r} is not a folder: looked for {path} "
                         f"(a subfolder of ComfyUI's input directory)")
    return path
