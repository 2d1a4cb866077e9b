"""SpikeGuard: rolls a training run back to a recent healthy copy of its state when its
reconstruction errors spike (config ``spike_rollback``).

A fast UNIT recipe breaks down now and then from one step to the next: an update that Adam
scales up sends both reconstruction errors from about 0.05 to 0.9 and D's losses to several
times their level, and the run never finds its way back (docs/RESULTS.md, sessions 33-38).
Nothing is NaN, so nothing stops it; BreakdownWatch tells the user tens of steps later. The
guard acts instead: it keeps one copy of what a step changes (E, G, D, the moving average,
both Adam states) from at most a few hundred steps back, and restores it.

A copy is taken after every ``INTERVAL``-th step and kept only once the step that uses it shows
no spike: the losses of step t are those of the weights step t-1 wrote, so a copy is known
healthy one step after it is taken. The step count, the data order and every RNG go on
(the batches that led to the spike are not replayed). The guard's state (the running averages,
the kept copy) is part of the checkpoint, so a resumed run rolls back exactly as one that was
never interrupted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import torch

SPIKE_KEYS = ("recon_a", "recon_b")
Captured = tuple[dict[str, torch.Tensor], dict[str, str]]


class SpikeGuard:
    INTERVAL = 100  # steps between copies
    STREAK = 3  # spikes in a row that roll the run back (one odd batch does not)
    WARMUP = 500  # no copies before this step: early on the errors still fall steeply
    HORIZON = 100.0  # steps the running averages reach over
    MAX_ROLLBACKS = 5  # a run that keeps spiking wants another rate or seed, not endless rollbacks

    def __init__(self, factor: float):
        if not factor > 1:
            raise ValueError(f"the spike factor must be > 1, got {factor}")
        self.factor = float(factor)
        self.average: dict[str, float] = {}
        self.streak = 0
        self.good: tuple[int, Captured] | None = None  # (step it was taken at, the copy)
        self.pending: tuple[int, Captured] | None = None
        self.rollbacks: list[dict[str, int]] = []  # {"step": where it was noticed, "to": the copy's step}

    def is_spike(self, losses: dict[str, float]) -> bool:
        """Whether these losses are a spike; the averages learn only from losses that are not."""
        values = {k: float(losses[k]) for k in SPIKE_KEYS if k in losses and math.isfinite(losses[k])}
        if any(k in self.average and v > self.factor * self.average[k] for k, v in values.items()):
            return True
        for k, v in values.items():
            a = self.average.get(k)
            # capped like SmoothedLosses: a bad but not spiking batch moves the average little
            self.average[k] = v if a is None else a + (min(v, 2.0 * a) - a) / self.HORIZON
        return False

    def after_step(self, step: int, spike: bool, capture: Callable[[], Captured]) -> tuple[int, Captured] | None:
        """Account for the step that just ended (``step`` steps are done; ``spike``: its losses
        were one, on any rank). Returns the copy to restore, or None."""
        if spike:
            self.pending = None  # the weights that gave these losses, or later ones: not healthy
            self.streak += 1
            if self.streak >= self.STREAK and self.good is not None and len(self.rollbacks) < self.MAX_ROLLBACKS:
                self.streak = 0
                self.rollbacks.append({"step": step, "to": self.good[0]})
                return self.good
            return None
        self.streak = 0
        if self.pending is not None:  # its own step showed no spike
            self.good, self.pending = self.pending, None
        if step >= self.WARMUP and step % self.INTERVAL == 0:
            self.pending = (step, capture())
        return None

    def note_for(self, step: int) -> str | None:
        """A line for the user when the run was rolled back at ``step``; None otherwise."""
        if not self.rollbacks or self.rollbacks[-1]["step"] != step:
            return None
        to = self.rollbacks[-1]["to"]
        return (f"the reconstruction errors spiked at step {step} (over {self.factor:g}x their running average, "
                f"{self.STREAK} steps in a row): the run was rolled back to its copy of step {to} and goes on with "
                f"the next batches (rollback {len(self.rollbacks)} of at most {self.MAX_ROLLBACKS})")

    def new_phase(self) -> None:
        """A restart (fresh D, cleared moments) begins: a copy from before it would undo it."""
        self.good = self.pending = None
        self.streak = 0

    # --- checkpoints -------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], str]:
        """(tensors, metadata) for the checkpoint. A pending copy is always of the state being
        saved (it is taken at the boundary the checkpoint is written at), so only its step is kept."""
        tensors = {}
        meta = {"average": self.average, "streak": self.streak, "rollbacks": self.rollbacks,
                "pending_step": None if self.pending is None else self.pending[0], "good_step": None}
        if self.good is not None:
            step, (good_tensors, good_meta) = self.good
            tensors = {f"good.{k}": v for k, v in good_tensors.items()}
            meta["good_step"], meta["good_meta"] = step, good_meta
        return tensors, json.dumps(meta)

    def load_state(self, tensors: dict[str, torch.Tensor], meta: str | None, step: int,
                   current: Callable[[], Captured]) -> None:
        """Restore :meth:`state` (``current`` captures the state just loaded, for a pending copy);
        None, from a checkpoint written without the guard, starts it afresh."""
        self.__init__(self.factor)
        if meta is None:
            return
        info = json.loads(meta)
        self.average = {k: float(v) for k, v in info["average"].items()}
        self.streak = int(info["streak"])
        self.rollbacks = [{"step": int(r["step"]), "to": int(r["to"])} for r in info["rollbacks"]]
        if info["good_step"] is not None:
            good = {k[len("good."):]: v for k, v in tensors.items() if k.startswith("good.")}
            self.good = (int(info["good_step"]), (good, dict(info["good_meta"])))
        if info["pending_step"] is not None:
            if int(info["pending_step"]) != step:
                raise ValueError(f"the spike guard's pending copy is of step {info['pending_step']}, "
                                 f"the checkpoint of step {step}")
            self.pending = (step, current())
