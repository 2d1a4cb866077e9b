"""UNIT training: alternating D and E+G updates, resumable bit-exactly, DDP-ready.

One iteration (``train_step``), as in Liu et al. 2017 and the reference implementation:

1. ``TranslatorPass`` runs E_a, E_b, G_a, G_b once for the whole iteration: both images go
   through their private encoder layers, the shared encoder blocks run once on the joint
   batch, and each generator decodes the joint batch of codes (giving the reconstruction
   and the translation at once). The translations are re-encoded for the cycle.
2. ``d_step``: D_a, D_b are updated on real images vs. the detached translations (E, G fixed).
3. ``g_step``: E, G are updated on L_VAE + L_GAN + L_CC against the updated, frozen critics,
   back-propagating through the graph of step 1 (no encoder or generator pass is repeated).

Checkpoints (``checkpoint.py``) are single safetensors files (model, both Adam states, step,
every RNG and the data order of ``batches.py``), written atomically. Training N steps equals
N/2 + save + resume + N/2. Previews are drawn by ``previews.py``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.utils import parametrize

from .augment import diff_augment, parse_policy
from .batches import EpochSampler, gather_batch
from .checkpoint import (
    capture_weights_and_moments,
    checkpoint_step,
    load_training_state,
    restore_weights_and_moments,
    save_training_state,
)
from .config import UNITConfig
from .device import autocast_dtype, precision_name, resolve_device
from .losses import UNITObjective, r1_penalty
from .networks import UNIT, init_weights, reframe
from .previews import preview_rows
from .rollback import SpikeGuard
from .weights import NonFiniteTensorsError

# The config fields a resumed run may change: how fast it learns, not what it learns. Anything
# else (architecture, losses, weights) would make the checkpoint's parameters or objective
# mean something other than what they were trained for.
SCHEDULE_FIELDS = ("lr", "lr_policy", "lr_step_size", "lr_gamma", "total_steps", "lr_decay_start",
                   "restart_step", "restart_every", "restart_lr_scale")


class TrainingDiverged(FloatingPointError):
    """A loss or the training state became NaN/Inf; nothing was saved over the last good checkpoint."""

    def __init__(self, message: str, last_good_step: int | None):
        super().__init__(message)
        self.last_good_step = last_good_step


def _generator_seed(value: int) -> int:
    # torch generators take seeds in [0, 2**64); derived seeds of large user seeds wrap (small ones are unchanged)
    return int(value) % 2**64


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of ``device`` (the GPU's, or the machine's RAM for the CPU); None if unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_training_fits(config: UNITConfig, batch_size: int, device: str | torch.device | None = None) -> None:
    """Refuse, before anything is allocated, a run whose memory need certainly exceeds the
    device: weights, gradients and both Adam moments, plus the activations of both domains'
    batches kept for the backward pass (an underestimate: the real need is higher)."""
    from .config import parameter_estimate
    from .tiling import estimate_translation_bytes

    device = resolve_device(device)
    total = device_memory_bytes(device)
    if total is None:
        return
    side = config.image_size
    need = 16 * parameter_estimate(config) + 2 * 2 * estimate_translation_bytes(config, side, side, batch_size)
    if need > total:
        raise ValueError(
            f"training {config.image_size} px images in batches of {batch_size} with this model needs more than "
            f"{need / 2**30:,.1f} GiB, and {device} has {total / 2**30:,.1f} GiB; lower the batch size, the image "
            f"size or the model's channels")


class TranslatorPass(nn.Module):
    """Everything E and G compute in one iteration, as one module (DDP wraps this)."""

    def __init__(self, model: UNIT):
        super().__init__()
        self.enc = model.enc
        self.gen = model.gen
        self.frame_scale = float(model.config.frame_scale)
        self.fill_a, self.fill_b = model.config.frame_fill("a"), model.config.frame_fill("b")
        self.latent_noise = float(model.config.latent_noise)

    def _encode_pair(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.enc["a"].private(x_a), self.enc["b"].private(x_b)])
        for block in self.enc["a"].shared:  # the same blocks as enc['b'].shared
            h = block(h)
        h = self.enc["a"].scale_code(h)  # one config: the same gain in E_b
        return h[: x_a.shape[0]], h[x_a.shape[0]:]

    def _shared_decode(self, z: torch.Tensor) -> torch.Tensor:
        for block in self.gen["a"].shared:  # the same blocks as gen['b'].shared
            z = block(z)
        return z

    def _noise(self, mu: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """eta ~ N(0, latent_noise^2 I); drawn (and the generator advanced) also at latent_noise 0,
        so a run's stream of random numbers does not depend on the setting."""
        eta = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return eta * self.latent_noise if self.latent_noise != 1.0 else eta

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor, noise: torch.Generator) -> dict[str, torch.Tensor]:
        n = x_a.shape[0]
        mu_a, mu_b = self._encode_pair(x_a, x_b)
        mu = torch.cat([mu_a, mu_b])
        z = mu + self._noise(mu, noise)
        h = self._shared_decode(z)
        out_a = self.gen["a"].private(h)  # [x_aa; x_ba]
        out_b = self.gen["b"].private(h)  # [x_ab; x_bb]
        x_aa, x_ba = out_a[:n], out_a[n:]
        x_ab, x_bb = out_b[:n], out_b[n:]
        # translations change the frame (config.frame_scale); reconstructions keep it
        x_ab, x_ba = reframe(x_ab, self.frame_scale, self.fill_b), reframe(x_ba, 1.0 / self.frame_scale, self.fill_a)
        # cycle: re-encode each translation in the domain it now belongs to
        # named by origin: mu_ba = E_a(x_ba) came from B, mu_ab = E_b(x_ab) came from A
        mu_ba, mu_ab = self._encode_pair(x_ba, x_ab)
        z2 = torch.cat([mu_ab, mu_ba])
        z2 = z2 + self._noise(z2, noise)
        h2 = self._shared_decode(z2)
        x_aba = reframe(self.gen["a"].private(h2[:n]), 1.0 / self.frame_scale, self.fill_a)
        x_bab = reframe(self.gen["b"].private(h2[n:]), self.frame_scale, self.fill_b)
        return dict(
            mu_a=mu_a, mu_b=mu_b, x_aa=x_aa, x_bb=x_bb, x_ab=x_ab, x_ba=x_ba,
            mu_ab=mu_ab, mu_ba=mu_ba, x_aba=x_aba, x_bab=x_bab,
        )


class DiscriminatorPass(nn.Module):
    def __init__(self, model: UNIT):
        super().__init__()
        self.dis = model.dis

    def forward(self, real_a, fake_a, real_b, fake_b):
        # real and fake share a forward so multi-scale pooling runs once per domain
        na, nb = real_a.shape[0], real_b.shape[0]
        out_a = self.dis["a"](torch.cat([real_a, fake_a]))
        out_b = self.dis["b"](torch.cat([real_b, fake_b]))
        return ([o[:na] for o in out_a], [o[na:] for o in out_a], [o[:nb] for o in out_b], [o[nb:] for o in out_b])


@dataclass
class StepReport:
    step: int
    total_steps: int
    losses: dict[str, float]
    batch: tuple[torch.Tensor, torch.Tensor] | None = None
    extra: dict = field(default_factory=dict)


class TrainingClock:
    """The training time of a run, across resumes: what earlier processes had spent when the
    checkpoint was written, plus the time this process has spent inside ``fit`` since. Wall time
    and process CPU time (which, unlike wall time, stays comparable when other jobs share the
    cores). Time-to-quality curves of resumed runs need it: a per-process clock restarts at 0."""

    def __init__(self):
        self.before = (0.0, 0.0)  # set from the checkpoint on a resume
        self._since: tuple[float, float] | None = None

    def elapsed(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds) of training so far."""
        if self._since is None:
            return self.before
        return (self.before[0] + time.time() - self._since[0], self.before[1] + time.process_time() - self._since[1])

    @contextlib.contextmanager
    def running(self):
        if self._since is not None:  # nested fit: the outer one is already counting
            yield
            return
        self._since = (time.time(), time.process_time())
        try:
            yield
        finally:
            self.before, self._since = self.elapsed(), None


def channels_last_pays(config: UNITConfig, device: torch.device) -> bool:
    """Whether training ``config`` on ``device`` is faster in the channels_last layout.

    On CPU, for the instance-norm presets from 64 px, ~1.4x (docs/PERFORMANCE.md); at 32 px with
    batch norm it does not pay. On CUDA it does not: an emoji64 step on an H200 ran 0.86x as fast
    at batch 4 and 0.15x at batch 64 (docs/PERFORMANCE.md#gpu), so GPUs keep the default layout."""
    return device.type == "cpu" and config.norm == "instance" and config.image_size >= 64


class Trainer:
    """Owns a UNIT model, its two Adam optimisers, and the RNGs of one training run."""

    def __init__(
        self,
        model: UNIT,
        device: str | torch.device | None = None,
        seed: int = 0,
        precision: str = "fp32",
        channels_last: bool | str = "auto",
        distributed: bool | None = None,
    ):
        self.device = resolve_device(device)
        if not model.has_discriminators:
            model.attach_discriminators()
        self.model = model.to(self.device)
        self.model.train()
        self.config: UNITConfig = model.config
        # [{"step": s, field: new value, ...}]: every schedule change made on resume, in order,
        # carried in checkpoints (and exports) so a run's history can be replayed exactly.
        self.schedule_changes: list[dict] = []
        self.seed = int(seed)
        self.amp_dtype = autocast_dtype(self.device, precision)
        if channels_last == "auto":
            channels_last = channels_last_pays(self.config, self.device)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(list(model.translator_parameters()), lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
        self.opt_d = torch.optim.Adam(list(model.discriminator_parameters()), lr=cfg.lr * cfg.dis_lr_ratio, betas=betas,
                                      weight_decay=cfg.weight_decay)
        self.objective = UNITObjective(cfg)
        self.augment_policy = parse_policy(cfg.augment)
        self.ema: UNIT | None = self._new_ema() if cfg.ema_decay > 0 else None
        self.spike_guard = SpikeGuard(cfg.spike_rollback) if cfg.spike_rollback > 0 else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.batch_size: int | None = None  # of the last fit(), recorded in checkpoints
        self.clock = TrainingClock()

        self.distributed = dist.is_available() and dist.is_initialized() if distributed is None else distributed
        if self.distributed and cfg.r1_gamma > 0:
            # R1's gradient w.r.t. the images (autograd.grad) bypasses DDP's gradient hooks
            raise ValueError("r1_gamma > 0 is not supported in distributed training yet; set r1_gamma=0 or train on one device")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(_generator_seed(self.seed * 1000 + self.rank))

        g_pass, d_pass = TranslatorPass(model), DiscriminatorPass(model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            g_pass = DDP(g_pass, device_ids=ids)
            d_pass = DDP(d_pass, device_ids=ids)
        self.g_pass, self.d_pass = g_pass, d_pass
        self.samplers: dict[str, EpochSampler] = {}

    # --- moving average of E and G -------------------------------------------------
    def _new_ema(self) -> UNIT:
        ema = UNIT(self.config, discriminators=False)
        ema.enc.load_state_dict(self.model.enc.state_dict())
        ema.gen.load_state_dict(self.model.gen.state_dict())
        ema.to(self.device).requires_grad_(False).eval()
        if self.channels_last:
            ema.to(memory_format=torch.channels_last)
        # the parameter lists the per-step update walks, built once (.to() and load_state_dict
        # update parameters in place, so these stay the model's own)
        self._ema_params = list(ema.translator_parameters())
        self._raw_params = list(self.model.translator_parameters())
        return ema

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        # The usual warm-up (TensorFlow's num_updates): early on the average forgets faster, so
        # a short run is not dragged back towards its random initialisation.
        k = self.step - self.config.phase(self.step)[0]  # the warm-up starts again with a second phase
        decay = min(self.config.ema_decay, (1 + k) / (10 + k))
        torch._foreach_lerp_(self._ema_params, self._raw_params, 1.0 - decay)
        for part in ("enc", "gen"):
            for b_ema, b in zip(getattr(self.ema, part).buffers(), getattr(self.model, part).buffers()):
                b_ema.copy_(b)

    def export_model(self) -> UNIT:
        """The translator to save and use: the moving average when the config keeps one."""
        if self.ema is None:
            return self.model
        self.ema.config = self.config  # schedule changes on resume are part of the record
        return self.ema

    # --- helpers -----------------------------------------------------------------
    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment_policy:
            x = diff_augment(x, self.augment_policy, self.noise)
        sigma = self.dis_input_noise_at(self.step)
        if sigma:
            x = x + sigma * torch.randn(x.shape, generator=self.noise, device=x.device, dtype=x.dtype)
        return x

    def dis_input_noise_at(self, step: int) -> float:
        """The standard deviation of the instance noise on D's inputs at ``step``: dis_input_noise,
        falling linearly to 0 at total_steps."""
        cfg = self.config
        return cfg.dis_input_noise * max(0.0, 1.0 - step / max(1, cfg.total_steps)) if cfg.dis_input_noise else 0.0

    def lr_at(self, step: int) -> float:
        cfg = self.config
        first, end, factor = cfg.phase(step)
        lr, step, span = cfg.lr * factor, step - first, end - first
        if cfg.lr_policy == "step":
            return lr * cfg.lr_gamma ** (step // cfg.lr_step_size)
        if cfg.lr_policy == "linear":
            start = cfg.lr_decay_start * span
            return lr * min(1.0, max(0.0, (span - step) / (span - start)))
        return lr

    def gan_weight_at(self, step: int) -> float:
        """lambda0 at ``step``: 0 during the warm start (``gan_warmup_steps``), then ``lambda_gan``,
        times ``lambda_gan_late_scale`` from the step where the 'linear' policy starts its decay
        (``lr_decay_start * total_steps``; in each phase, with a second one) on."""
        cfg = self.config
        if step < cfg.gan_warmup_steps:
            return 0.0
        first, end, _ = cfg.phase(step)
        late = step - first >= cfg.lr_decay_start * (end - first)
        return cfg.lambda_gan * (cfg.lambda_gan_late_scale if late else 1.0)

    @property
    def warming_up(self) -> bool:
        """True during the reconstruction-only warm start (the first ``gan_warmup_steps`` steps)."""
        return self.step < self.config.gan_warmup_steps

    @property
    def precision(self) -> str:
        """How this trainer computes: 'fp32', 'bf16 autocast' or 'fp16 autocast'."""
        return precision_name(self.amp_dtype)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _critic_weights_once(self):
        """With spectral norm, D's weights are computed (and their power iteration advanced)
        once per D or G step instead of once per D call (a step calls each D up to three times).
        In a CPU probe of an emoji64 D (three calls + backward) that cut spectral norm's
        overhead from ~1.6x to ~1.15x of the plain D's time."""
        if not self.config.dis_spectral_norm:
            return contextlib.nullcontext()
        return parametrize.cached()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _set_lr(self) -> None:
        lr = self.lr_at(self.step)
        for opt, ratio in ((self.opt_g, 1.0), (self.opt_d, self.config.dis_lr_ratio)):
            for group in opt.param_groups:
                group["lr"] = lr * ratio

    def change_schedule(self, **changes) -> dict:
        """Change learning-rate fields of the config from the current step on (e.g. decay a
        resumed run). Only ``SCHEDULE_FIELDS`` may change; returns {field: (old, new)}."""
        other = sorted(set(changes) - set(SCHEDULE_FIELDS))
        if other:
            raise ValueError(f"a training run's {other} cannot change once it has started (only {list(SCHEDULE_FIELDS)} can); "
                             "start a new run, or initialise one from this model's weights")
        new = {k: v for k, v in changes.items() if getattr(self.config, k) != v}
        diff = {k: (getattr(self.config, k), v) for k, v in new.items()}
        if new:
            changed = self.config.replace(**new)
            taken = [s for s in self.config.restart_steps() if s < self.step]
            wanted = [s for s in changed.restart_steps() if s < self.step]
            if taken != wanted:  # a phase that has begun cannot be moved, added or taken back
                raise ValueError(f"the run is at step {self.step}, where its later phases have begun at steps: "
                                 f"{taken or 'none'}; the requested schedule would have begun them at: {wanted or 'none'}. "
                                 f"A restart before the current step cannot be added, moved or taken back")
            self.config = self.model.config = self.objective.config = changed
            self.schedule_changes.append({"step": self.step, **new})
            self._set_lr()
        return diff

    def schedule_metadata(self) -> dict[str, str]:
        """Metadata for an export of this run: its schedule changes, if it had any."""
        return {"schedule_changes": json.dumps(self.schedule_changes)} if self.schedule_changes else {}

    # --- the two updates ---------------------------------------------------------
    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        with self._autocast():
            return self.g_pass(x_a, x_b, self.noise)

    def d_step(self, x_a: torch.Tensor, x_b: torch.Tensor, fwd: dict[str, torch.Tensor]) -> dict[str, float]:
        """Update D_a, D_b with E and G fixed: translations enter detached."""
        self.model.dis.requires_grad_(True)
        r1 = self.config.r1_gamma > 0
        if r1:  # the penalty is a gradient w.r.t. the real images, before augmentation
            x_a, x_b = x_a.detach().requires_grad_(True), x_b.detach().requires_grad_(True)
        with self._autocast(), self._critic_weights_once():
            aug = self._augment
            fake_a, fake_b = fwd["x_ba"].detach(), fwd["x_ab"].detach()
            n_a, n_b = fake_a.shape[0], fake_b.shape[0]
            with_recon = bool(self.config.lambda_gan_recon)
            if with_recon:  # reconstructions are a second kind of fake, in the same D forward
                fake_a, fake_b = torch.cat([fake_a, fwd["x_aa"].detach()]), torch.cat([fake_b, fwd["x_bb"].detach()])
            real_a, fake_a, real_b, fake_b = self.d_pass(aug(x_a), aug(fake_a), aug(x_b), aug(fake_b))
            recon_a = recon_b = None
            if with_recon:
                recon_a, fake_a = [o[n_a:] for o in fake_a], [o[:n_a] for o in fake_a]
                recon_b, fake_b = [o[n_b:] for o in fake_b], [o[:n_b] for o in fake_b]
            loss, terms = self.objective.discriminator(real_a, fake_a, real_b, fake_b, self.gan_weight_at(self.step),
                                                       recon_a, recon_b)
        if r1:
            terms["r1"] = r1_penalty([real_a, real_b], [x_a, x_b])
            loss = loss + 0.5 * self.config.r1_gamma * terms["r1"]
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self._clip(self.opt_d)
        self.scaler.step(self.opt_d)
        return {**{k: v.item() for k, v in terms.items()}, "d_total": loss.item()}

    def g_step(self, x_a: torch.Tensor, x_b: torch.Tensor, fwd: dict[str, torch.Tensor]) -> dict[str, float]:
        """Update E_a, E_b, G_a, G_b with D fixed (its parameters take no gradient)."""
        self.model.dis.requires_grad_(False)
        dis = self.model.dis
        with self._autocast(), self._critic_weights_once():
            features = None
            if self.config.lambda_fm:
                # D's layers are per-image unless batch-normed, so one pass per domain is exact
                features = {d: self._dis_features(dis[d], x, fwd[f"x_{d}{d}"], fwd[cyc])
                            for d, x, cyc in (("a", x_a, "x_aba"), ("b", x_b, "x_bab"))}
            gan_weight = self.gan_weight_at(self.step)
            d_on_recon = None
            if self.warming_up:  # no adversarial term yet: D's outputs would only be multiplied by 0
                d_a_on_ba = d_b_on_ab = None
            elif self.config.lambda_gan_recon:  # translations and reconstructions must both fool D
                d_a_on_ba, d_a_on_aa = self._critic_pair(dis["a"], fwd["x_ba"], fwd["x_aa"])
                d_b_on_ab, d_b_on_bb = self._critic_pair(dis["b"], fwd["x_ab"], fwd["x_bb"])
                d_on_recon = (d_a_on_aa, d_b_on_bb)
            else:  # translations into A must fool D_a, translations into B D_b
                d_a_on_ba, d_b_on_ab = dis["a"](self._augment(fwd["x_ba"])), dis["b"](self._augment(fwd["x_ab"]))
            loss, terms = self.objective.translator(x_a, x_b, fwd, d_a_on_ba, d_b_on_ab, features, gan_weight,
                                                    d_on_recon)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self._clip(self.opt_g)
        self.scaler.step(self.opt_g)
        self.model.dis.requires_grad_(True)
        return {"g_total": loss.item(), **{k: v.item() for k, v in terms.items()}}

    def _critic_pair(self, dis, first: torch.Tensor, second: torch.Tensor) -> tuple[list, list]:
        """D's (augmented) outputs on two batches: one forward unless D batch-normalises, where
        the batches must not share statistics."""
        if self.config.dis_norm == "batch":
            return dis(self._augment(first)), dis(self._augment(second))
        n = first.shape[0]
        out = dis(self._augment(torch.cat([first, second])))
        return [o[:n] for o in out], [o[n:] for o in out]

    def _dis_features(self, dis, x: torch.Tensor, rec: torch.Tensor, cyc: torch.Tensor) -> list[torch.Tensor]:
        """D's hidden activations of [x; rec; cyc] (un-augmented: the pairs must stay aligned)."""
        if self.config.dis_norm == "batch":
            parts = [dis.features(t) for t in (x, rec, cyc)]
            return [torch.cat(layer) for layer in zip(*parts)]
        return dis.features(torch.cat([x, rec, cyc]))

    @torch.no_grad()
    def restart(self) -> None:
        """Begin a later phase (at ``restart_step``, then every ``restart_every`` steps): the
        translator continues from its moving average, D starts afresh, both optimisers forget their
        moments, and the spike guard drops its copy (restoring it would undo all this). A function
        of the seed and the step alone (the global RNG is not advanced), so a run resumed from any
        checkpoint before or at this step restarts exactly as one that was never interrupted."""
        if self.ema is not None:
            for part in ("enc", "gen"):
                getattr(self.model, part).load_state_dict(getattr(self.ema, part).state_dict())
        with torch.random.fork_rng(devices=[]):
            # built on the CPU, whatever the device, so the new D is the same on every machine
            torch.manual_seed(_generator_seed(self.seed * 1_000_003 + self.step))
            fresh = copy.deepcopy(self.model.dis).to("cpu")
            init_weights(fresh)
        self.model.dis.load_state_dict(fresh.state_dict())
        for opt in (self.opt_g, self.opt_d):
            opt.state.clear()
        if self.spike_guard is not None:
            self.spike_guard.new_phase()

    def _clip(self, opt: torch.optim.Optimizer) -> None:
        if self.config.grad_clip > 0:
            self.scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)

    def train_step(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, float]:
        """One UNIT iteration: shared forward, D step, then E+G step."""
        self.model.train()
        x_a, x_b = self._prepare(x_a), self._prepare(x_b)
        if self.config.begins_phase(self.step):
            self.restart()
        self._set_lr()
        fwd = self.forward(x_a, x_b)
        # during the warm start D's loss would carry weight 0: no D step at all (its Adam state
        # and weights stay as initialised until the GAN terms begin)
        losses = {} if self.warming_up else self.d_step(x_a, x_b, fwd)
        losses.update(self.g_step(x_a, x_b, fwd))
        self.scaler.update()
        self._update_ema()
        self.step += 1
        for name, value in losses.items():
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training diverged at step {self.step}: loss {name} = {value}. "
                    f"Lower the learning rate or use precision fp32."
                )
        if self.spike_guard is not None:
            self._guard_against_spikes(losses)
        return losses

    def _guard_against_spikes(self, losses: dict[str, float]) -> None:
        """config.spike_rollback: roll back to the guard's healthy copy after a run of spikes."""
        spike = self.spike_guard.is_spike(losses)
        if self.distributed:  # every rank must roll back together (their batches, and losses, differ)
            flag = torch.tensor([float(spike)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            spike = bool(flag.item())
        copy_ = self.spike_guard.after_step(self.step, spike, lambda: capture_weights_and_moments(self, copy=True))
        if copy_ is not None:
            step, (tensors, meta) = copy_
            restore_weights_and_moments(self, tensors, meta, f"the spike guard's copy of step {step}")

    # --- data --------------------------------------------------------------------
    def _sampler(self, name: str, size: int) -> EpochSampler:
        sampler = self.samplers.get(name)
        if sampler is None or sampler.size != size:
            offset = 0 if name == "a" else 1
            sampler = EpochSampler(size, seed=_generator_seed(self.seed * 7919 + offset * 104729 + self.rank * 15485863))
            self.samplers[name] = sampler
        return sampler

    def next_batch(self, dataset_a, dataset_b, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        xa = gather_batch(dataset_a, self._sampler("a", len(dataset_a)).next_indices(batch_size))
        xb = gather_batch(dataset_b, self._sampler("b", len(dataset_b)).next_indices(batch_size))
        return xa, xb

    def fit(
        self,
        dataset_a,
        dataset_b,
        steps: int,
        batch_size: int,
        callback: Callable[[StepReport], None] | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
    ) -> None:
        """Train until ``self.step == steps``.

        ``callback`` runs after every step, at a step boundary, and may raise to stop (a user's
        Cancel, an interrupt): the state of the last finished step is saved first. An exception
        inside a step (divergence, out of memory, an unreadable data set) saves nothing: the state
        is then part-way through an update, and the last checkpoint stays the good one. A run whose
        losses or state become NaN/Inf raises :class:`TrainingDiverged` naming that checkpoint."""
        if steps < 0 or batch_size < 1:
            raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps}, {batch_size}")
        for name, ds in (("domain A", dataset_a), ("domain B", dataset_b)):
            if len(ds) == 0:
                raise ValueError(f"{name} has no training images")
        self.batch_size = int(batch_size)
        with self.clock.running():
            while self.step < steps:
                x_a, x_b = self.next_batch(dataset_a, dataset_b, batch_size)
                try:
                    losses = self.train_step(x_a, x_b)
                except FloatingPointError as exc:
                    raise self._diverged(str(exc), checkpoint_path) from exc
                if checkpoint_path and checkpoint_every and self.step % checkpoint_every == 0:
                    self.sync_buffers()
                    self._save_finite(checkpoint_path)
                if callback is not None:
                    try:
                        callback(StepReport(self.step, steps, losses, (x_a, x_b)))
                    except BaseException:
                        if checkpoint_path:
                            self._save_finite(checkpoint_path)
                        raise
            self.sync_buffers()
            if checkpoint_path:
                self._save_finite(checkpoint_path)

    def _save_finite(self, path: str | os.PathLike) -> Path | None:
        try:
            return self.save_checkpoint(path)
        except NonFiniteTensorsError as exc:
            raise self._diverged(f"training diverged at step {self.step}: {exc}", path) from exc

    def _diverged(self, what: str, checkpoint_path: str | os.PathLike | None) -> TrainingDiverged:
        if checkpoint_path is None:
            return TrainingDiverged(f"{what}. Lower the learning rate or use precision fp32.", None)
        good = checkpoint_step(checkpoint_path)
        if good is None:
            where = f"no checkpoint was written to {checkpoint_path} (start again with a lower learning rate)"
        else:
            where = (f"{checkpoint_path} still holds the last good state, step {good}: resume from it "
                     f"with a lower learning rate")
        return TrainingDiverged(f"{what}. Nothing was saved over the checkpoint; {where}.", good)

    def sync_buffers(self) -> None:
        """Copy rank 0's buffers (BatchNorm statistics) to every rank.

        DDP broadcasts buffers at the start of each forward, so after the last step the
        ranks' running statistics differ by one update; this makes the final model one.
        A collective: every rank must call it.
        """
        if not self.distributed:
            return
        for buf in self.model.buffers():
            dist.broadcast(buf, src=0)

    # --- previews ----------------------------------------------------------------
    def preview(self, x_a: torch.Tensor, x_b: torch.Tensor, count: int = 4) -> torch.Tensor:
        """Rows of (input | translation | cycle) for both directions, in [0, 1], [N, 3, H, W*3],
        through the exported model (the moving average when there is one)."""
        return preview_rows(self.export_model(), x_a, x_b, count, self.device)

    # --- checkpoints (the format: core/checkpoint.py) ----------------------------
    def save_checkpoint(self, path: str | os.PathLike) -> Path | None:
        """Atomically write the full training state (rank 0 only under DDP). A state holding
        NaN/Inf is refused (:class:`NonFiniteTensorsError`): it must not replace a good one."""
        return save_training_state(self, path)

    def load_checkpoint(self, path: str | os.PathLike) -> int:
        """Restore the full training state; returns the step it resumes from."""
        return load_training_state(self, path)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device=None, **kwargs) -> "Trainer":
        from .weights import read_config

        config = read_config(path)
        trainer = cls(UNIT(config), device=device, **kwargs)
        trainer.load_checkpoint(path)
        return trainer
