"""Seconds per step and time left for training progress displays (the Train node, the CLI)."""

from __future__ import annotations

import time
from collections.abc import Callable


class StepTimer:
    """A smoothed seconds-per-step rate from the steps actually run, and the time left.

    The first step after a start or resume is excluded (it pays for warm-up and allocation),
    so the estimate describes the steady state a user waits through."""

    def __init__(self, start_step: int, smoothing: float = 0.1, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.smoothing = smoothing
        self.last_step = start_step
        self.last_time = clock()
        self.warm = False
        self.seconds_per_step: float | None = None

    def update(self, step: int) -> None:
        now = self.clock()
        steps, elapsed = step - self.last_step, now - self.last_time
        self.last_step, self.last_time = step, now
        if steps <= 0:
            return
        if not self.warm:
            self.warm = True
            return
        rate = elapsed / steps
        s = self.seconds_per_step
        self.seconds_per_step = rate if s is None else s + self.smoothing * (rate - s)

    def seconds_left(self, step: int, total: int) -> float | None:
        if self.seconds_per_step is None:
            return None
        return max(0, total - step) * self.seconds_per_step

    def describe(self, step: int, total: int) -> str:
        """'step 120/2500, 0.71 s/step, 28 min 10 s left' (rate and time once measured)."""
        text = f"step {step}/{total}"
        left = self.seconds_left(step, total)
        if left is not None:
            text += f", {self.seconds_per_step:.2f} s/step, {format_duration(left)} left"
        return text


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {s:02d} s"
    return f"{s} s"
