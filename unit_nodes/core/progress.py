"""Progress displays of training (the Train node, the CLI): seconds per step, the time left,
and watches for runs that break down or collapse."""

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


class SmoothedLosses:
    """Logged losses of a few keys, each smoothed over about ``horizon`` steps. Step-aware, so values
    logged every N steps weigh as much as N per-step values; a value counts at most twice the smoothed
    one, so one bad batch (or one noisy logged value standing for 50 steps) moves it little while a
    lasting jump still compounds. Non-finite values are skipped."""

    def __init__(self, keys: tuple[str, ...], horizon: float):
        self.keys, self.horizon = keys, horizon
        self.values: dict[str, float] = {}
        self.last_step: int | None = None

    def update(self, step: int, losses: dict[str, float]) -> dict[str, float] | None:
        """The smoothed values of the keys ``losses`` has, in key order; None for a step not after the last."""
        if self.last_step is not None and step <= self.last_step:
            return None
        weight = 1.0 if self.last_step is None else 1.0 - math.exp(-(step - self.last_step) / self.horizon)
        self.last_step = step
        updated = {}
        for key in self.keys:
            value = losses.get(key)
            if value is None or not math.isfinite(value):
                continue
            s = self.values.get(key)
            s = value if s is None else s + weight * (min(value, 2.0 * s) - s)
            self.values[key] = updated[key] = s
        return updated


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
        self.factor, self.warmup = factor, warmup
        self.smoothed = SmoothedLosses(self.KEYS, horizon)
        self.best: dict[str, tuple[float, int]] = {}  # side -> (smoothed error, step)
        self.broke_at: int | None = None

    def update(self, step: int, losses: dict[str, float]) -> str | None:
        smoothed = self.smoothed.update(step, losses)
        if not smoothed or step < self.warmup:
            return None
        message = None
        for key, s in smoothed.items():
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


class CollapseWatch:
    """Notices when the discriminators have won: a domain's D rejects the translations into its
    domain with confidence, step after step, because they no longer look like anything.

    Reconstruction and cycle errors do not show it: a digits run (digits32 with the frame scale,
    session 31, one seed of four) whose translations came out as flat gray boxes (an independent
    classifier read 30 % / 23 % of them against 97 %) kept both level with its healthy seeds
    throughout; emoji runs without normalisation (``norm=none``) that painted every image white did
    too. What differs is D's view of the translations: under LSGAN the translator's GAN term is the
    mean of (D(translation) - 1)^2 over each D scale, and per scale it sat at 0.87-0.90 (smoothed)
    in those three runs against at most 0.59 in the 39 other digits and emoji runs we logged.
    A run can also lose its translations while its reconstructions stay healthy: emoji64 with the edge
    loss at 1000 (session 36, seed 0) translated into washed-out, colour-inverted images (FID 139 /
    127 against 85 / 75 for seed 1) with reconstruction errors of 0.05-0.10. Its D scales sat at 0.46-0.64
    (smoothed) from step 1000 on, under the collapse figure but above every healthy multi-scale run we
    logged (emoji64, two D scales: at most 0.37 in 52 runs, 0.49 in the two of one weak but sound
    recipe, ``lambda_gan_recon=10``); single-scale digits runs reach 0.59 while healthy. So the default
    ``threshold`` depends on the scale count: 0.7 for one D scale, 0.55 for more (that run is flagged
    at step 1150 of 2950).

    ``update`` takes the logged ``g_gan_a`` / ``g_gan_b``, divides by the number of D scales, smooths
    each side over about ``horizon`` steps and, after ``warmup`` steps (a young D wins at first),
    returns a message once, at the first step a side's smoothed value exceeds ``threshold``. Only
    for the LSGAN loss (other losses have other scales): for the rest it never fires.

    The warm-up counts from ``start_step`` (a resumed run: the watch has no history of it) and
    again from the first step of each later phase (``phase_start``: D is re-initialised there,
    and a fresh D rejects everything for a while; a resumed run with a third phase was flagged
    one step after it, at 0.85, before this)."""

    KEYS = ("g_gan_a", "g_gan_b")

    # (threshold, the most a healthy run we logged reached) for one D scale and for more
    SINGLE_SCALE, MULTI_SCALE = (0.7, 0.6), (0.55, 0.5)

    def __init__(self, dis_scales: int, gan_mode: str = "lsgan", threshold: float | None = None,
                 horizon: float = 250.0, warmup: int = 1000, start_step: int = 0):
        if dis_scales < 1:
            raise ValueError(f"dis_scales must be >= 1, got {dis_scales}")
        self.dis_scales, self.enabled = int(dis_scales), gan_mode == "lsgan"
        default, self.healthy_below = self.SINGLE_SCALE if dis_scales == 1 else self.MULTI_SCALE
        threshold = default if threshold is None else threshold
        self.threshold, self.warmup, self.horizon = threshold, warmup, horizon
        self.since = int(start_step)
        self.smoothed = SmoothedLosses(self.KEYS, horizon)
        self.collapsed_at: int | None = None

    @classmethod
    def for_config(cls, config, start_step: int = 0) -> "CollapseWatch":
        return cls(config.dis_scales, config.gan_mode, start_step=start_step)

    def update(self, step: int, losses: dict[str, float], phase_start: int = 0) -> str | None:
        if not self.enabled:
            return None
        if phase_start > self.since:  # a new phase: a new D, watched afresh
            self.since, self.smoothed = phase_start, SmoothedLosses(self.KEYS, self.horizon)
        per_scale = {key: losses[key] / self.dis_scales for key in self.KEYS if key in losses}
        smoothed = self.smoothed.update(step, per_scale)
        if not smoothed or step - self.since < self.warmup or self.collapsed_at is not None:
            return None
        for key, s in smoothed.items():
            if s > self.threshold:
                self.collapsed_at = step
                side = key[-1].upper()
                return (f"the run looks collapsed at step {step}: D_{side} has been rejecting the translations into "
                        f"domain {side} with confidence (the translator's GAN loss per D scale is {s:.2f}, smoothed; "
                        f"healthy runs stay below {self.healthy_below:.1f}); a collapsed run translates every input "
                        f"into the same flat image (gray boxes, all white) or into washed-out, colour-inverted ones, "
                        f"while its reconstructions can still look fine. Check the samples' translations; if they show "
                        f"it, train again with another seed (or with less of the weight you raised)")
        return None
