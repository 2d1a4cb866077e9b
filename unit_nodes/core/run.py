"""The training-run policy shared by the CLI (``train``) and the Train UNIT node.

A run is started from a preset, resumed from its checkpoint, or started from another model's
weights (init-from). Each frontend turns its options into ``requested``, a dict of the
UNITConfig fields the user asked for; this module decides what the run is trained with:

- a new run: the preset with the requested fields on top;
- init-from: the init model's config (its architecture, ARCHITECTURE_FIELDS, cannot change: its
  weights only fit that architecture) with every other requested field on top;
- a resume: the run's own config; only the learning-rate schedule (SCHEDULE_FIELDS) may
  change, from the resumed step on. ``extra`` holds the run's free-form notes, not a training
  setting: a resume neither compares it nor changes it. The batch size is the run's own too
  (its checkpoint records it): a front end that always states one (the node's widget) has a
  different one refused; the CLI continues at the run's own unless --batch-size says otherwise.

The frontends differ only in what they request: the CLI requests the options given on its
command line, the node the config its inputs describe (every field but the schedule fields
it has no input for).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from .checkpoint import checkpoint_batch_size
from .config import ConfigError, UNITConfig, preset
from .networks import UNIT
from .trainer import SCHEDULE_FIELDS, Trainer
from .weights import read_config

# The fields that shape the networks: a model's weights fit no config that differs in one of them.
ARCHITECTURE_FIELDS = ("channels_a", "channels_b", "base_channels", "n_downsample", "n_res_blocks", "n_shared",
                       "code_gain", "norm", "upsample", "dis_channels", "dis_layers", "dis_scales", "dis_shared_layers", "dis_norm")
# Free-form notes kept in the file; a resume keeps the run's own.
NOTES_FIELDS = ("extra",)


class RunSettingsError(ConfigError):
    """A request the run cannot take: ``fields`` maps each field to (the run's or model's value,
    the requested value)."""

    def __init__(self, message: str, fields: dict[str, tuple[Any, Any]]):
        super().__init__(message)
        self.fields = fields


def _check_known(requested: Mapping[str, Any]) -> None:
    known = UNITConfig.__dataclass_fields__
    unknown = sorted(set(requested) - set(known))
    if unknown:
        raise ConfigError(f"unknown UNIT config field(s) {unknown}; known: {sorted(known)}")


def _listed(fields: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k}={old} (requested: {new})" for k, (old, new) in fields.items())


# --- what the run is trained with --------------------------------------------------------
def new_run_config(preset_name: str, requested: Mapping[str, Any]) -> UNITConfig:
    """A new run: preset ``preset_name`` with the requested fields on top."""
    return preset(preset_name, **requested)


def init_config(base: UNITConfig, requested: Mapping[str, Any], source: str = "the init model") -> UNITConfig:
    """A run started from the weights of a model with config ``base``: its architecture, with
    every requested field on top. A request that would change the architecture is refused,
    naming the field (``source`` names the model in the message)."""
    _check_known(requested)
    changed = {k: (getattr(base, k), v) for k, v in requested.items()
               if k in ARCHITECTURE_FIELDS and getattr(base, k) != v}
    if changed:
        raise RunSettingsError(
            f"{source} has {_listed(changed)}: a run that starts from a model's weights keeps its architecture "
            f"({', '.join(ARCHITECTURE_FIELDS)}); ask for the model's own value, or start a new model without "
            "an init model", changed)
    return base.replace(**requested)


def resume_changes(saved: UNITConfig, requested: Mapping[str, Any]) -> dict[str, Any]:
    """The schedule changes a resume of the run with config ``saved`` asks for (in
    SCHEDULE_FIELDS order). A requested change of any other field is refused, naming it;
    fields in NOTES_FIELDS are not compared."""
    _check_known(requested)
    fixed = {k: (getattr(saved, k), v) for k, v in requested.items()
             if k not in SCHEDULE_FIELDS and k not in NOTES_FIELDS and getattr(saved, k) != v}
    if fixed:
        raise RunSettingsError(
            f"the run was trained with {_listed(fixed)}; only the learning-rate schedule "
            f"({', '.join(SCHEDULE_FIELDS)}) can change in a run that has started", fixed)
    return {k: requested[k] for k in SCHEDULE_FIELDS if k in requested}


def check_resume_batch_size(checkpoint: str | os.PathLike, requested: int) -> None:
    """Refuse to resume the run in ``checkpoint`` at a batch size other than the one it trained at
    (a resume continues the run exactly, and the batch is part of what is trained). Checkpoints
    written before the batch size was recorded (2026-12-04) accept any."""
    own = checkpoint_batch_size(checkpoint)
    if own is not None and own != int(requested):
        raise RunSettingsError(f"the run was trained with batch_size={own} (requested: {int(requested)}); a resume "
                               f"continues at the run's own batch size", {"batch_size": (own, int(requested))})


# --- the trainer of the run --------------------------------------------------------------
def new_model(cfg: UNITConfig, seed: int, init: UNIT | None = None) -> UNIT:
    """A fresh UNIT with trainable parameters for a new run, seeded; with ``init``, its
    encoders and generators (and discriminators, when it has them) start as ``init``'s.
    ``cfg`` must come from ``init_config(init.config, ...)``."""
    torch.manual_seed(int(seed))
    model = UNIT(cfg)
    if init is not None:
        model.enc.load_state_dict(init.enc.state_dict())
        model.gen.load_state_dict(init.gen.state_dict())
        if init.dis is not None:
            model.dis.load_state_dict(init.dis.state_dict())
    return model


def start_trainer(cfg: UNITConfig, seed: int, init: UNIT | None = None, **trainer_options) -> Trainer:
    """The trainer of a new run (``trainer_options``: Trainer's device, precision, ...)."""
    return Trainer(new_model(cfg, seed, init), seed=int(seed), **trainer_options)


def resume_trainer(checkpoint: str | os.PathLike, requested: Mapping[str, Any], seed: int,
                   **trainer_options) -> tuple[Trainer, dict[str, tuple[Any, Any]]]:
    """The trainer of a resumed run and its schedule changes ({field: (old, new)}). A refused
    request (resume_changes) is refused before the checkpoint's tensors are read."""
    changes = resume_changes(read_config(checkpoint), requested)
    trainer = Trainer.from_checkpoint(checkpoint, seed=int(seed), **trainer_options)
    try:
        return trainer, trainer.change_schedule(**changes)
    except (ValueError, ConfigError) as exc:  # e.g. a restart moved before the run's step
        raise RunSettingsError(str(exc), {k: (getattr(trainer.config, k), v) for k, v in changes.items()}) from None


# --- what an export records -----------------------------------------------------------------
def export_metadata(trainer: Trainer, domain_a_source: Any, domain_b_source: Any) -> dict[str, str]:
    """Metadata of an export of the run: its steps, the sources of its two domains, the precision
    of the process that exported it (a resumed run may have changed it) and its schedule changes."""
    return {"trained_steps": str(trainer.step), "domain_a_source": str(domain_a_source),
            "domain_b_source": str(domain_b_source), "precision": trainer.precision,
            **trainer.schedule_metadata()}
