"""The unit-nodes weights format: safetensors with the config in its metadata.

A model folder follows the Hugging Face layout::

    <folder>/model.safetensors   tensors + metadata {unit_nodes_format, format_version, config, ...}
    <folder>/config.json         the same config, for people and for the Hub viewer

The metadata is authoritative: ``load_model`` rebuilds ``UNIT(config)`` from it and loads the
tensors with strict key matching. Tensors shared by construction (the shared encoder and
generator blocks appear under both domains' names) are stored once and re-tied on load.
Pickles are never loaded. Every write goes to a temporary file that is renamed into place,
so an interrupted save never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, UNITConfig
from .files import regular_file
from .networks import UNIT

FORMAT_NAME = "unit-nodes"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class UNITWeightsError(ValueError):
    """A weights or checkpoint file cannot be used; the message names the file and why."""


class NonFiniteTensorsError(UNITWeightsError):
    """Tensors hold NaN or Inf (a diverged training): never written over good files, never loaded."""


def non_finite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an Inf."""
    return [name for name, t in tensors.items()
            if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all())]


# --- atomic files -----------------------------------------------------------------
def current_umask() -> int:
    """The process umask. Read from /proc where there is one, because os.umask can only read it
    by setting it, which would briefly change the mode of files other threads create."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode open() gives a new file under the current umask (0o666 & ~umask)."""
    return 0o666 & ~current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename over ``path``: readers see the old or the new file.

    The file gets the mode any new file gets under the umask (mkstemp's own 0600 would keep
    models and checkpoints from the other accounts that serve or back up the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# --- tied tensors -----------------------------------------------------------------
def _storage_key(t: torch.Tensor) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def tied_groups(state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """canonical name -> other names of the same tensor (the lexicographically first is canonical)."""
    by_storage: dict[tuple, list[str]] = {}
    for name, t in state.items():
        if t.numel() == 0:
            by_storage.setdefault(("empty", name), []).append(name)
            continue
        by_storage.setdefault(_storage_key(t), []).append(name)
    groups = {}
    for names in by_storage.values():
        names = sorted(names)
        groups[names[0]] = names[1:]
    return groups


def untied_state_dict(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    state = module.state_dict()
    return {prefix + k: state[k].detach().contiguous() for k in tied_groups(state)}


def load_untied_state_dict(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load ``tensors`` (one entry per tied group) into ``module``."""
    groups = tied_groups(module.state_dict())
    expected = set(groups)
    got = set(tensors)
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensor(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
        raise UNITWeightsError(
            f"{source}: tensors do not match the architecture in its config: {'; '.join(parts)}"
        )
    bad = non_finite_tensors(tensors)
    if bad:
        raise NonFiniteTensorsError(
            f"{source}: {len(bad)} tensor(s) hold NaN or Inf values, e.g. {bad[:3]} (saved from a diverged "
            f"training?); such weights only give black or garbage images, so they are not loaded"
        )
    full = {}
    for canonical, aliases in groups.items():
        full[canonical] = tensors[canonical]
        for alias in aliases:
            full[alias] = tensors[canonical]
    own = module.state_dict()
    for name, t in full.items():
        if tuple(t.shape) != tuple(own[name].shape):
            raise UNITWeightsError(
                f"{source}: tensor {name!r} has shape {tuple(t.shape)}, the config's architecture "
                f"needs {tuple(own[name].shape)}"
            )
    module.load_state_dict(full, strict=True)


# --- reading files safely --------------------------------------------------------
def _sniff(path: Path) -> None:
    """Clear errors for files that are not safetensors at all, before the parser sees them."""
    if path.is_dir():
        raise UNITWeightsError(f"{path} is a folder, expected a .safetensors file")
    try:
        regular_file(path, "weights file")
    except ValueError as exc:  # a FIFO would block the read below forever
        raise UNITWeightsError(str(exc)) from None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    # A safetensors file starts with its header length (u64, little-endian) and then the JSON
    # header. Recognise that first: the length's low byte alone can be 0x80, the first byte
    # of a pickle, in one valid file out of 256 or so.
    header_len = struct.unpack("<Q", head[:8])[0] if size >= 8 else None
    if header_len is not None and header_len <= min(size - 8, 100_000_000) and head[8:9] == b"{":
        return
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        raise UNITWeightsError(
            f"{path} is a pickle / torch.save file, not safetensors; unit-nodes never loads pickles "
            f"(they can run arbitrary code). Convert it with safetensors in a trusted environment."
        )
    if header_len is None:
        raise UNITWeightsError(f"{path} is truncated ({size} bytes): not a safetensors file")
    raise UNITWeightsError(
        f"{path} is not a valid safetensors file (header of {header_len} bytes in a {size}-byte file): "
        f"truncated or not safetensors"
    )


def read_safetensors(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, with errors that name the file."""
    path = Path(path)
    _sniff(path)
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise UNITWeightsError(f"{path} could not be read as safetensors (truncated or corrupt?): {exc}") from exc
    return tensors, metadata


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Atomically write ``tensors``; refuses NaN/Inf, so a diverged state never replaces a good file."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    bad = non_finite_tensors(tensors)
    if bad:
        raise NonFiniteTensorsError(
            f"not writing {path}: {len(bad)} tensor(s) hold NaN or Inf values, e.g. {bad[:3]}"
        )
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def check_format(metadata: dict[str, str], path: Path, kind: str | None = None) -> UNITConfig:
    fmt = metadata.get("unit_nodes_format")
    if fmt != FORMAT_NAME:
        raise UNITWeightsError(
            f"{path} is a safetensors file but not a unit-nodes model (its metadata has no "
            f"'unit_nodes_format': '{FORMAT_NAME}'); the architecture cannot be known, so it is not guessed"
        )
    version = metadata.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION or int(version) < 1:
        raise UNITWeightsError(
            f"{path} has unit-nodes format version {version!r}; this version of unit-nodes reads "
            f"versions 1..{FORMAT_VERSION}. Upgrade unit-nodes to load it."
        )
    if kind is not None and metadata.get("kind", "model") != kind:
        raise UNITWeightsError(f"{path} is a unit-nodes {metadata.get('kind')!r} file, expected {kind!r}")
    if "config" not in metadata:
        raise UNITWeightsError(f"{path} has no 'config' in its metadata")
    try:
        return UNITConfig.from_json(metadata["config"])
    except ConfigError as exc:
        raise UNITWeightsError(f"{path}: invalid config in metadata: {exc}") from exc


def base_metadata(config: UNITConfig, kind: str) -> dict[str, str]:
    return {
        "unit_nodes_format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": json.dumps(config.to_dict(), sort_keys=True),
    }


# --- models ----------------------------------------------------------------------
def model_file(path: str | os.PathLike) -> Path:
    """A folder means its model.safetensors; a file is taken as it is."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / MODEL_FILE
        if not candidate.exists():
            raise FileNotFoundError(f"model folder {path} has no {MODEL_FILE}")
        return candidate
    return path


def save_model(
    model: UNIT,
    path: str | os.PathLike,
    include_discriminators: bool = True,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` to a folder (model.safetensors + config.json) or to a .safetensors file.

    Returns the path of the .safetensors file written.
    """
    path = Path(path).expanduser()
    is_file = path.suffix == ".safetensors"
    folder = path.parent if is_file else path
    target = path if is_file else folder / MODEL_FILE
    tensors = untied_state_dict(model.enc, "enc.")
    tensors.update(untied_state_dict(model.gen, "gen."))
    with_dis = include_discriminators and model.dis is not None
    if with_dis:
        tensors.update(untied_state_dict(model.dis, "dis."))
    meta = base_metadata(model.config, "model")
    meta["discriminators"] = "true" if with_dis else "false"
    if metadata:
        meta.update({str(k): str(v) for k, v in metadata.items()})
    write_safetensors(target, tensors, meta)
    if not is_file:
        atomic_write_text(folder / CONFIG_FILE, model.config.to_json() + "\n")
    return target


def split_prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_model_from_tensors(
    tensors: dict[str, torch.Tensor], config: UNITConfig, with_dis: bool, source: str
) -> UNIT:
    model = UNIT(config, discriminators=with_dis)
    known = ("enc.", "gen.", "dis.") if with_dis else ("enc.", "gen.")
    stray = sorted(k for k in tensors if not k.startswith(known))
    if stray:
        raise UNITWeightsError(f"{source}: unexpected tensor(s) {stray[:3]} outside the model's parts")
    load_untied_state_dict(model.enc, split_prefixed(tensors, "enc."), source)
    load_untied_state_dict(model.gen, split_prefixed(tensors, "gen."), source)
    if with_dis:
        load_untied_state_dict(model.dis, split_prefixed(tensors, "dis."), source)
    return model


def load_model(
    path: str | os.PathLike,
    device: str | torch.device | None = "cpu",
    discriminators: bool | None = None,
) -> UNIT:
    """Rebuild a UNIT model from a folder, a model .safetensors, or a training checkpoint.

    ``discriminators=None`` loads them when the file has them; False drops them (inference).
    Returns the model in eval mode on ``device``.
    """
    file = model_file(path)
    tensors, metadata = read_safetensors(file)
    config = check_format(metadata, file)
    kind = metadata.get("kind", "model")
    if kind == "checkpoint":
        tensors = split_prefixed(tensors, "model.")
    elif kind != "model":
        raise UNITWeightsError(f"{file} is a unit-nodes {kind!r} file, not a model or checkpoint")
    file_has_dis = any(k.startswith("dis.") for k in tensors)
    if discriminators and not file_has_dis:
        raise UNITWeightsError(f"{file} holds no discriminators (an inference-only export)")
    with_dis = file_has_dis if discriminators is None else discriminators
    if not with_dis:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("dis.")}
    model = load_model_from_tensors(tensors, config, with_dis, str(file))
    model.eval()
    if device is not None:
        model.to(device)
    return model


def read_config(path: str | os.PathLike) -> UNITConfig:
    """The config of a model file or folder, read from the safetensors header only."""
    file = model_file(path)
    _sniff(file)
    try:
        with safe_open(str(file), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise UNITWeightsError(f"{file} could not be read as safetensors: {exc}") from exc
    return check_format(metadata, file)


# --- the pairs shipped in weights/ (core.sources finds models by name) -------------
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "weights"
