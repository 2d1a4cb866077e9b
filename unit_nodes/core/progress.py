"""Progress displays of training (the Train node, the CLI): seconds per step, the time left,
and a watch for runs that break down."""

from __future__ import annotations

import math
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


class BreakdownWatch:
    """Notices when a run breaks down: its reconstruction error jumps to several times the best it
    had reached and stays there.

    A UNIT run at emoji64's former rate (1.6e-3) broke down mid-run (measured at batch 2: a CPU run
    at step 6550, where one discriminator's loss spiked to 9, the reconstruction L1 went from about
    0.06 to 0.3-0.6 and the translations came out with swapped colours; another at 6880, in fp32 as
    in bf16, but not with the rate halved; one of four GPU runs by step 2800). Nothing is NaN, so
    nothing stops the run: the user has to be told. ``update`` takes the run's per-step (or logged)
    ``recon_a`` / ``recon_b``; each side is smoothed over about ``horizon`` steps (step-aware, so
    logged values every N steps work too; each value is capped at twice the smoothed error, so a
    single outlier does not raise an alarm) and compared with its smoothed best after ``warmup``
    steps (early on the error still falls steeply). ``update`` returns a message once, at the first
    step a side's smoothed error is ``factor`` times its best, and None otherwise."""

    KEYS = ("recon_a", "recon_b")

    def __init__(self, factor: float = 3.0, horizon: float = 100.0, warmup: int = 500):
        self.factor, self.horizon, self.warmup = factor, horizon, warmup
        self.smoothed: dict[str, float] = {}
        self.best: dict[str, tuple[float, int]] = {}  # side -> (smoothed error, step)
        self.last_step: int | None = None
        self.broke_at: int | None = None

    def update(self, step: int, losses: dict[str, float]) -> str | None:
        if self.last_step is not None and step <= self.last_step:
            return None
        weight = 1.0 if self.last_step is None else 1.0 - math.exp(-(step - self.last_step) / self.horizon)
        self.last_step = step
        message = None
        for key in self.KEYS:
            value = losses.get(key)
            if value is None or not math.isfinite(value):
                continue
            s = self.smoothed.get(key)
            # a step counts at most twice the smoothed error: one bad batch (or one noisy logged
            # value standing for 50 steps) moves it little, a lasting jump still compounds
            s = value if s is None else s + weight * (min(value, 2.0 * s) - s)
            self.smoothed[key] = s
            if step < self.warmup:
                continue
            best = self.best.get(key)
            if best is None or s < best[0]:
                self.best[key] = (s, step)
            elif self.broke_at is None and s > self.factor * best[0]:
                self.broke_at = step
                side = key[-1].upper()
                message = (f"the run looks broken down at step {step}: domain {side}'s reconstruction error "
                           f"({s:.3f}, smoothed) is {s / best[0]:.1f}x its best ({best[0]:.3f} at step {best[1]}); "
                           f"translations of a broken-down run usually come out with swapped colours. Check the "
                           f"samples; if they show it, train again with another seed (or a lower learning rate), "
                           f"or use a snapshot exported near step {best[1]}")
        return message
