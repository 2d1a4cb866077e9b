"""A training run's checkpoint: one safetensors file holding the model (and its moving
average), both Adam states, the step, every RNG (the latent noise, torch's, Python's, each
domain's data order), the grad scaler and the run's schedule changes, so that training N steps
equals N/2, save, resume, N/2. Written atomically; a state holding NaN/Inf never replaces a
good file.

The layout (tensor names, metadata keys) is the file format: old checkpoints must keep loading.
``save_training_state`` / ``load_training_state`` read and write a ``Trainer``'s attributes;
``Trainer.save_checkpoint`` / ``load_checkpoint`` call them.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch

from .batches import EpochSampler
from .files import remove_stale_temp_files
from .weights import (
    UNITWeightsError,
    base_metadata,
    check_format,
    load_untied_state_dict,
    read_safetensors,
    split_prefixed,
    untied_state_dict,
    write_safetensors,
)

CHECKPOINT_FILE = "checkpoint.safetensors"


def _header_int(path: str | os.PathLike, key: str) -> int | None:
    """One integer of a checkpoint's metadata, from its header only; None when the file or the key
    is not there or not readable (missing, partial or foreign file)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return int((f.metadata() or {})[key])
    except Exception:
        return None


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step a checkpoint file holds; None when there is no readable one."""
    return _header_int(path, "step")


def checkpoint_batch_size(path: str | os.PathLike) -> int | None:
    """The batch size the run in a checkpoint last trained at; None for checkpoints written before
    it was recorded (2026-12-04) and for unreadable files."""
    return _header_int(path, "batch_size")


def capture_weights_and_moments(trainer, copy: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """What a step changes: E, G, D, the moving average and both Adam states, as flat tensors and
    the optimisers' parameter groups (metadata). ``copy`` clones the tensors (otherwise they share
    storage with the live state); SpikeGuard keeps such copies to roll a run back."""
    m = trainer.model
    tensors = {}
    for part in ("enc", "gen", "dis"):
        tensors.update(untied_state_dict(getattr(m, part), f"model.{part}."))
    if trainer.ema is not None:
        for part in ("enc", "gen"):
            tensors.update(untied_state_dict(getattr(trainer.ema, part), f"ema.{part}."))
    meta = {}
    for name, opt in (("opt_g", trainer.opt_g), ("opt_d", trainer.opt_d)):
        sd = opt.state_dict()
        for idx, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"{name}.{idx}.{key}"] = torch.as_tensor(value)
        meta[f"{name}.param_groups"] = json.dumps(sd["param_groups"])
    if copy:
        tensors = {k: v.clone() for k, v in tensors.items()}
    return tensors, meta


def restore_weights_and_moments(trainer, tensors: dict[str, torch.Tensor], meta: dict[str, str], source: str) -> None:
    """Load what :func:`capture_weights_and_moments` captured into ``trainer`` (strictly; the
    tensors are copied, so ``tensors`` stays as it was)."""
    model_t = split_prefixed(tensors, "model.")
    for part in ("enc", "gen", "dis"):
        load_untied_state_dict(getattr(trainer.model, part), split_prefixed(model_t, f"{part}."), source)
    if trainer.ema is not None:
        ema_t = split_prefixed(tensors, "ema.")
        for part in ("enc", "gen"):
            load_untied_state_dict(getattr(trainer.ema, part), split_prefixed(ema_t, f"{part}."), source)
    for name, opt in (("opt_g", trainer.opt_g), ("opt_d", trainer.opt_d)):
        groups = json.loads(meta[f"{name}.param_groups"])
        state: dict[int, dict] = {}
        for key, value in split_prefixed(tensors, f"{name}.").items():
            idx, sub = key.split(".", 1)
            # a clone: Adam updates its moments in place, and they must not be the caller's tensors
            state.setdefault(int(idx), {})[sub] = value.to(trainer.device).clone() if sub != "step" else value.clone()
        opt.load_state_dict({"state": state, "param_groups": groups})


def save_training_state(trainer, path: str | os.PathLike) -> Path | None:
    """Atomically write ``trainer``'s full training state (rank 0 only under DDP). A state holding
    NaN/Inf is refused (:class:`NonFiniteTensorsError`): it must not replace a good one."""
    if trainer.rank != 0:
        return None
    remove_stale_temp_files(path)  # left by a save that was killed; the run folder's lock is ours
    tensors, weights_meta = capture_weights_and_moments(trainer)
    meta = {**base_metadata(trainer.config, "checkpoint"), **weights_meta}
    guard = trainer.spike_guard
    if guard is not None:
        guard_tensors, meta["spike_guard"] = guard.state()
        tensors.update({f"spike_guard.{k}": v for k, v in guard_tensors.items()})
    tensors["rng.noise"] = trainer.noise.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    for name, s in trainer.samplers.items():
        tensors[f"sampler.{name}.rng"] = s.generator.get_state()
        tensors[f"sampler.{name}.order"] = s.order
        meta[f"sampler.{name}"] = json.dumps({"size": s.size, "position": s.position})
    meta["step"] = str(trainer.step)
    meta["schedule_changes"] = json.dumps(trainer.schedule_changes)
    meta["seed"] = str(trainer.seed)
    if trainer.batch_size is not None:  # so that a resume without --batch-size continues the same run
        meta["batch_size"] = str(trainer.batch_size)
    seconds, cpu_seconds = trainer.clock.elapsed()
    meta["train_seconds"], meta["train_cpu_seconds"] = f"{seconds:.1f}", f"{cpu_seconds:.1f}"
    meta["python_random"] = json.dumps(random.getstate())
    meta["grad_scaler"] = json.dumps(trainer.scaler.state_dict())
    return write_safetensors(path, tensors, meta)


def load_training_state(trainer, path: str | os.PathLike) -> int:
    """Restore ``trainer``'s full training state; returns the step it resumes from."""
    path = Path(path)
    tensors, meta = read_safetensors(path)
    config = check_format(meta, path, kind="checkpoint")
    if config.to_dict() != trainer.config.to_dict():
        diff = {k: (v, trainer.config.to_dict().get(k)) for k, v in config.to_dict().items() if trainer.config.to_dict().get(k) != v}
        raise UNITWeightsError(f"{path} was trained with a different config; differing fields (file, current): {diff}")
    try:
        restore_weights_and_moments(trainer, tensors, meta, str(path))
        if trainer.spike_guard is not None:
            # (a file without the guard's state, which a guarded run always writes, starts it afresh)
            trainer.spike_guard.load_state(split_prefixed(tensors, "spike_guard."), meta.get("spike_guard"),
                                           int(meta["step"]), current=lambda: capture_weights_and_moments(trainer, copy=True))
        trainer.noise.set_state(tensors["rng.noise"])
        torch.set_rng_state(tensors["rng.torch"])
        trainer.samplers = {}
        for name in ("a", "b"):
            if f"sampler.{name}" in meta:
                info = json.loads(meta[f"sampler.{name}"])
                s = EpochSampler(info["size"], 0)
                s.generator.set_state(tensors[f"sampler.{name}.rng"])
                s.order = tensors[f"sampler.{name}.order"].clone()
                s.position = info["position"]
                trainer.samplers[name] = s
        trainer.step = int(meta["step"])
        # the run's seed, not the caller's: samplers first drawn after the resume derive theirs from it
        trainer.seed = int(meta.get("seed", trainer.seed))
        trainer.schedule_changes = json.loads(meta.get("schedule_changes", "[]"))
        # older checkpoints did not record it: their time before the resume counts as 0
        trainer.clock.before = (float(meta.get("train_seconds", 0)), float(meta.get("train_cpu_seconds", 0)))
        state = json.loads(meta["python_random"])
        random.setstate((state[0], tuple(state[1]), state[2]))
        trainer.scaler.load_state_dict(json.loads(meta["grad_scaler"]))
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError, RecursionError) as exc:
        if isinstance(exc, UNITWeightsError):
            raise
        detail = "metadata nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        raise UNITWeightsError(f"{path} is an incomplete or damaged checkpoint ({detail.splitlines()[0][:300]})") from None
    return trainer.step

