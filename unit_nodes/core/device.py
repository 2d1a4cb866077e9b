"""Run-time device choice: CUDA, else Apple MPS, else CPU. Never hard-coded elsewhere."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or 'auto' picks the best available; an unavailable request is a clear error."""
    if device is None or (isinstance(device, str) and device in ("", "auto")):
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but this PyTorch build sees no CUDA GPU")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} was asked for, but MPS is not available here")
    return dev


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware: AMX tiles (Intel Xeon 4th generation on), where
    oneDNN runs bf16 convolutions about 2.7x faster than fp32, or AVX512-BF16 (AMD Zen 4 on, Intel
    Cooper Lake), where the emoji64 training step ran 1.38x faster with two threads and the
    default run took 0.78x the minutes at a level FID (docs/PERFORMANCE.md). CPUs without either
    (AVX2, AVX-512 without BF16) have no bf16 arithmetic to use, so 'auto' keeps fp32 on them."""
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:
            pass
    return False


_AUTOCAST_PRECISIONS = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def precision_of(dtype: torch.dtype | None) -> str:
    """The precision setting ('fp32', 'bf16' or 'fp16') whose autocast dtype is ``dtype``."""
    return _AUTOCAST_PRECISIONS.get(dtype, "fp32")


def precision_name(dtype: torch.dtype | None) -> str:
    """How a run computes, for logs and export metadata: 'fp32', 'bf16 autocast' or 'fp16 autocast'."""
    return "fp32" if dtype is None else f"{precision_of(dtype)} autocast"


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for 'fp32' | 'bf16' | 'fp16' | 'auto' on ``device`` (None = no autocast).

    'auto' (the training default) is bf16 autocast where it pays and plain fp32 elsewhere: on
    CUDA GPUs that support bf16, and on CPUs with AMX or AVX512-BF16 (bf16 convolutions, pads and
    norms in the activations' bf16, losses in fp32, weights and optimiser state kept in fp32). On
    emoji64 its FID is within noise of fp32's (2000 steps on an AMX CPU, about 1.5x faster there; the
    2950-step default run on an AVX512-BF16 CPU, 0.78x the minutes: docs/PERFORMANCE.md). fp16
    is used only when asked for, on CUDA (with loss scaling); a CPU refuses it. MPS trains in fp32.
    """
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu":
        if precision == "fp16":
            raise ValueError("precision 'fp16' is a GPU setting; on a CPU use 'bf16' (fast on CPUs with AMX or AVX512-BF16) "
                             "or 'fp32'")
        if precision == "auto":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        return torch.bfloat16
    return None
