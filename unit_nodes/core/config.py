"""UNITConfig: every architecture and loss hyperparameter, validated and serialisable.

The config is the single source of truth for a model: it is written into the metadata of
every ``model.safetensors`` and beside it as ``config.json``, and ``UNIT(config)`` rebuilds
the exact architecture from it. Nothing is ever inferred from file names or tensor shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

NORMS = ("instance", "batch", "none")
GAN_MODES = ("lsgan", "nonsaturating", "hinge")
CYCLE_DOMAINS = ("ab", "a", "b")
LR_POLICIES = ("constant", "step", "linear")
# Each up-sampling mode and the kernel size of its conv: nearest x2 + 5x5 conv (the reference
# implementation); 4x4 transposed conv (cheapest, but prone to checkerboard grain); bilinear x2 +
# 3x3 conv (no checkerboard, 9/25 of nearest's cost).
UPSAMPLE_KERNEL = {"nearest": 5, "transpose": 4, "bilinear": 3}
UPSAMPLE_MODES = tuple(UPSAMPLE_KERNEL)


# How far a translation may resize (UNITConfig.frame_scale, and its inverse): the field's bounds,
# shared by the config check, the measurement (core.framing), the Train node's input and
# bench/frame_scale_baselines.py, all through frame_scale_allowed (each with its own message:
# what went wrong differs, a typed value in one, a measured ratio in another).
FRAME_SCALE_RANGE = (0.5, 2.0)
FRAME_SCALE_BOUNDS = f"[{FRAME_SCALE_RANGE[0]:g}, {FRAME_SCALE_RANGE[1]:g}]"


def frame_scale_allowed(value: float) -> bool:
    """Whether ``value`` may be a frame scale: a finite number within FRAME_SCALE_RANGE."""
    lo, hi = FRAME_SCALE_RANGE
    return math.isfinite(float(value)) and lo <= float(value) <= hi


class ConfigError(ValueError):
    """A configuration value is impossible; the message names the field and the value."""


def fill_colour(hex_colour: str, channels: int) -> tuple[float, ...] | None:
    """A frame_fill field's "#rrggbb" as ``channels`` values in [-1, 1] (the images' range), or
    None for "" (each image's own border colour). Raises ValueError naming what is wrong."""
    if hex_colour == "":
        return None
    if not isinstance(hex_colour, str) or len(hex_colour) != 7 or hex_colour[0] != "#":
        raise ValueError('must be "" (each image\'s border colour) or a colour "#rrggbb", e.g. "#ffffff" for white')
    try:
        rgb = tuple(int(hex_colour[i:i + 2], 16) / 127.5 - 1.0 for i in (1, 3, 5))
    except ValueError:
        raise ValueError(f'{hex_colour!r} is not a colour "#rrggbb" of hexadecimal digits') from None
    if channels == 1:
        if len({hex_colour[1:3].lower(), hex_colour[3:5].lower(), hex_colour[5:7].lower()}) != 1:
            raise ValueError(f"the domain is gray (1 channel): give a gray colour, r = g = b (e.g. \"#000000\"), "
                             f"not {hex_colour!r}")
        return rgb[:1]
    return rgb


@dataclass
class UNITConfig:
    # --- data / domains -------------------------------------------------------------
    channels_a: int = 3
    channels_b: int = 3
    domain_a: str = "A"
    domain_b: str = "B"
    image_size: int = 256  # training resolution; inference accepts any H, W

    # --- encoders / generators ------------------------------------------------------
    base_channels: int = 64
    n_downsample: int = 2  # latent is (base * 2**n_downsample) x H/2**n x W/2**n
    n_res_blocks: int = 4  # residual blocks per encoder (and per generator)
    n_shared: int = 1  # last encoder / first generator blocks shared by both domains
    norm: str = "instance"
    upsample: str = "nearest"
    # Fixed factor on E's output (the mean of q(z|x)). E ends in instance-normalised residual
    # blocks, so its output sits at about unit scale and the unit-variance noise eta of the
    # paper is as large as the code itself: the decoder learns from codes it can barely
    # read, and reconstructions blur. A gain g lets the code stand g times above the noise
    # from the first step (the KL terms then price the larger code, as the objective says).
    # On the emoji default run with the frame scale, 4 lowered the mean FID by 0.95 over two
    # seeds (docs/RESULTS.md item 000000000000000000000000000): just short of a lever by our rule;
    # over the bundled pair's 22000-step command (batch 4, 1.6e-3) it broke down at step 5500 (one
    # seed; D_b's loss jumped to 6567 in one interval; item 0000000000000000000000000000).
    # 1 is the paper and its reference implementation.
    code_gain: float = 1.0
    # The standard deviation of the latent noise eta (z = mean + eta) in training and in seeded
    # samples at inference: 1 is the paper's unit variance. Unlike code_gain it leaves the networks
    # as they are, so a trained pair can also be fine-tuned with less noise (``train --init MODEL
    # --set latent_noise=0.25``), in the hope that its decoders learn to paint the means they get at
    # inference rather than the average of what a noisy code allows. Measured on emoji, 0.25 was level
    # from the start (two seeds) and as a 2000-step fine-tune of the bundled pair (docs/RESULTS.md item
    # 0000000000000000000000000000).
    latent_noise: float = 1.0

    # --- discriminators -------------------------------------------------------------
    dis_channels: int = 64
    dis_layers: int = 4
    dis_scales: int = 3
    dis_shared_layers: int = 0  # last conv layers shared by D_a and D_b
    dis_norm: str = "none"

    # --- losses ---------------------------------------------------------------------
    gan_mode: str = "lsgan"
    lambda_gan: float = 10.0  # lambda0
    lambda_kl: float = 0.1  # lambda1
    lambda_recon: float = 100.0  # lambda2
    lambda_cc_kl: float = 0.1  # lambda3
    lambda_cc_recon: float = 100.0  # lambda4
    # Which domains' images get the cycle L1 (x -> other domain -> back). "ab" is the paper.
    # Drop a side whose translation is many-to-one (MNIST-M -> MNIST discards the photo
    # background): its cycle can only be met by hiding the background in the translation.
    # Emoji are not such a pair by FID: keeping only Twitter's cycle ("b": Google's shading is
    # what Google -> Twitter discards) made the Google -> Twitter translations nearly as flat as
    # real Twitter emoji but raised the default run's mean FID by 2.1 on two seeds, both
    # directions worse (docs/RESULTS.md item 0000000000000000000000000000000000).
    cycle_domains: str = "ab"

    # --- optimisation ---------------------------------------------------------------
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    lr_policy: str = "constant"
    lr_step_size: int = 100_000
    lr_gamma: float = 0.5
    total_steps: int = 100_000  # horizon of the 'linear' policy
    # Where the 'linear' policy starts to decay, as a fraction of total_steps: the lr stays
    # constant before it and falls linearly to 0 at total_steps (CycleGAN's schedule; 0.5 is
    # its 100 + 100 epochs). 0 decays from the first step.
    lr_decay_start: float = 0.0
    grad_clip: float = 0.0  # 0 disables
    # A second phase from this step to total_steps (0: none, the paper): at its start the
    # translator continues from its moving average (when ema_decay keeps one), D_a and D_b are
    # re-initialised, both Adam states are cleared and the moving average's warm-up starts again;
    # the rate then follows lr_policy afresh over [restart_step, total_steps], scaled by
    # restart_lr_scale (the first phase follows it over [0, restart_step]). It is the 2000-step
    # fine-tune of the bundled emoji pair (fresh D, a quarter of the rate held, then decayed) that
    # took Google -> Twitter from FID 84.49 to 82.98 / 82.97 on two seeds (docs/RESULTS.md item
    # 0000000000000000000000000000), folded into one run: a critic trained against the early,
    # worse translations has learnt their faults; a fresh one judges what the translator draws now.
    # The bundled emoji pair is trained with it (restart_step=20000 of 22000, 0.25): its last 2000
    # steps took Google -> Twitter from 84.44 to 81.91 and Twitter -> Google from 73.80 to 72.60
    # (item 00000000000000000000000000000; session 37's pair, with the edge loss, is trained the same
    # way). On the short default run (the last 500 of 2950 steps) it was worse (mean FID +1.5, two
    # seeds): a tool for the end of a long run, not a default.
    restart_step: int = 0
    restart_lr_scale: float = 0.25
    # Further phases after the second, each restart_every steps long (0: the second phase runs to
    # total_steps): every one begins as the second does, and the rate follows lr_policy afresh over
    # each (the last may be shorter). Its phases are equal to the second one's, so a finished run
    # resumed with a longer total_steps and restart_every = total_steps - restart_step gains one
    # more phase and trains exactly as a run asked for those settings from the start. A third
    # phase on session 34's bundled emoji run (restart_every=2000, 24000 steps) was level: 81.65 / 72.66
    # against 81.91 / 72.60 (docs/RESULTS.md item 000000000000000000000000000000).
    restart_every: int = 0
    # A guard against sudden breakdowns (0: off, the paper). The fast recipes break down now and then
    # within one logged interval: the reconstruction errors jump tenfold and D's losses spike, and the
    # run never comes back (three of the seven 22000-step emoji runs since session 32, at steps 2600,
    # 5500 and 9950; docs/RESULTS.md). With a factor f > 0, from step 500 on the trainer keeps a copy of
    # E, G, D, the moving average and both Adam states every 100 steps, kept once the copy's own next
    # step shows no spike; a step whose reconstruction error (either domain) exceeds f times its running
    # average (over about 100 steps) is a spike, and three spikes in a row roll the state back to that
    # copy. Training then goes on with the next batches: the step count, the data order and the random
    # numbers are not rewound, so the batches that led to the spike are not replayed. A new phase
    # (restart_step) drops the copy. At most 5 rollbacks a run; after that BreakdownWatch still warns.
    # A run without a spike trains exactly as with 0 (the copies change nothing). Why 4 and three in
    # a row: in healthy emoji runs a logged reconstruction error reached at most 5.5x the median of the
    # six before it, alone; a breakdown sends it 10-20x and keeps it there. Measured (session 38): the
    # bundled pair's command with lambda_edges=600 broke down at step ~2570 (seed 0) and ~7080 (seed 1);
    # seed 0 again with 4, bit for bit the same run until then, was rolled back at step 2567 to its copy
    # of step 2500 and trained through healthy to 79.14 / 72.54 (docs/RESULTS.md item
    # 000000000000000000000000000000000). emoji64 uses 4 since then.
    spike_rollback: float = 0.0

    # --- training aids (additions to the paper; 0 / "" is the paper's setting) ----------
    # Exponential moving average of E and G, exported instead of the raw weights: a GAN's
    # raw weights oscillate around what it has learnt, their average sits closer to it.
    ema_decay: float = 0.0
    # DiffAugment policy for D's inputs (real and translated alike): comma-separated names
    # from core.augment.AUGMENTATIONS ("color", "translation", "cutout", "scale"); "" disables.
    augment: str = ""
    # Colour anchor: lambda_identity * |G_b(E_a(x_a)) - x_a|_1 (and the same from B), for pairs
    # whose domains share layout and palette (two emoji styles): cycle and GAN
    # losses alone are met by any invertible recolouring (yellow faces come out blue) until
    # the discriminators catch up. 0 is the paper; keep it 0 when colours must change
    # (MNIST -> MNIST-M). On today's emoji64 recipe 30 lowered the default run's mean FID
    # by 1.7 and 1.6 on two seeds (10: by 0.4) but the bundled pair's 22000-step run only by
    # 0.2 (84.23 / 77.69 against 84.86 / 77.54; docs/RESULTS.md item 0000000000000000000000), and a
    # 17000-step run with it not at all (85.13 / 78.00; item 00000000000000000000000). With 200 emoji per
    # folder (a user's folder) the default run gained more: 4.2 and 2.5 mean FID on two seeds, 4.4 at
    # twice the steps (same item), 2.1 over an 87-minute 25000-step run (item 000000000000000000000000).
    # Train UNIT's colour_anchor input sets it; the presets keep 0, since emoji64 also serves users'
    # pairs whose colours must change.
    lambda_identity: float = 0.0
    # The colour anchor compares the means of identity_pool x identity_pool blocks of the translation
    # and of its input (1: pixel by pixel). A coarse anchor (8 at 64 px: an 8 x 8 map of colours)
    # keeps where each colour sits but leaves the drawing inside each block free to change, so a
    # translator may redraw outlines and shading without taking up the recolourings that cycle and
    # GAN losses alone accept. Measured (session 48, docs/RESULTS.md item with 43 zeros): without mirrored
    # init, 8 at weight 30 gave the same colour permutation as the pixel anchor, and 8 at weight 150 held the
    # colours but settled as near the input as mirrored init does (FID +1.2 / +0.4, no redrawing); 1 in every preset.
    identity_pool: int = 1
    # Start E_b's and G_b's private layers as copies of E_a's and G_a's (where the shapes
    # match), so that a translation G_b(E_a(x)) starts out as the reconstruction G_a(E_a(x))
    # and the two decoders read the shared code the same way from step 0. Nothing is tied:
    # the copies train apart from there. False is the paper (independent initialisation).
    mirrored_init: bool = False
    # Feature matching (pix2pixHD; the learned similarity of VAE/GAN, Larsen et al. 2016):
    # lambda_fm * mean L1 between D_i's hidden activations of x_i and of its reconstruction
    # and cycle reconstruction. A pixel L1 is met by a blurred average of what the code
    # allows; D's features also see edges and texture, so reconstructions (and through the
    # shared code the translations) keep more detail. 0 is the paper.
    lambda_fm: float = 0.0
    # Gradient difference loss (Mathieu, Couprie & LeCun 2016): lambda_edges * L1 between the
    # horizontal and vertical pixel differences of each image and of its reconstruction and
    # cycle reconstruction (the cycle's as cycle_domains says). A pixel L1 charges an edge
    # blurred over w pixels about w/4 of its height, so a slight blur costs it little; the
    # difference L1 charges nearly twice the height as soon as the edge spreads, so the decoders
    # are asked for sharp edges. 0 is the paper. 100 took the default emoji run's mean FID from 88.6
    # to 84.0 on two seeds, KID, L1 and SSIM better too, its reconstructions from 58.9 / 66.4 to
    # 47.7 / 54.6 against their own style (docs/RESULTS.md item 000000000000000000000000000000);
    # 300 (session 36) took it to 82.0, and the 200-image recipe's from 80.7 to 78.7 (item
    # 0000000000000000000000000000000; 30: +1.0 on one seed); 600 (the emoji64 preset's since session
    # 37) to 80.7 and 78.1; 1000 broke one of two default runs' translations down. Over the bundled
    # pair's 22000-step run, 100 was level (81.13 / 73.23 against 81.91 / 72.60) and 300 is the
    # bundled pair of session 37 (80.04 / 72.87; item 00000000000000000000000000000000);
    # 600 with lambda_ssim=200 is the bundled pair since session 41 (78.76 / 73.21).
    lambda_edges: float = 0.0
    # The edge loss's weight on the cycle reconstructions, as a fraction of lambda_edges (1: the
    # same weight as on the reconstructions; 0: reconstructions only). Why it is separate: a cycle
    # x -> x_ij -> x_iji can only return the source's fine shading if the translation x_ij keeps it,
    # so a strong edge term on the cycle may hold translations to their source's detail, the
    # opposite of a change of style (Google -> Twitter translations carry 0.0635 of mean absolute
    # neighbour difference against 0.0537 in real Twitter emoji; bench/translation_texture.py).
    # Measured on the default emoji run with the frame scale, two seeds (session 39): 0 raised the
    # mean FID by 1.7 (worse in both directions), 2 lowered it by 0.4 (level); the cycle's term helps,
    # so 1 stays (docs/RESULTS.md item 0000000000000000000000000000000000).
    edges_cycle_scale: float = 1.0
    # Focal frequency loss (Jiang et al., ICCV 2021): lambda_freq * mean over the 2-D Fourier
    # spectrum (orthonormal, per image and channel) of w * |F(x) - F(x_rec)|^2, on each image's
    # reconstruction and cycle reconstruction (the cycle's as cycle_domains says), where
    # w = |F(x) - F(x_rec)| / its largest value in that spectrum, held fixed. By Parseval the
    # unweighted sum is the pixel MSE; the weight moves it onto the frequencies the decoders miss
    # most, the fine detail that a blurred average of what a code allows loses. 0 is the paper.
    # Measured worse on the default emoji run (session 40, seed 0): 500 raised the mean FID by 3.2,
    # 2000 by 12.4, every measure worse; the weight chases the largest spectral errors, which move from
    # step to step (docs/RESULTS.md item 00000000000000000000000000000000000).
    lambda_freq: float = 0.0
    # Structural dissimilarity: lambda_ssim * (1 - SSIM(x, x_rec)) on each image's reconstruction and
    # cycle reconstruction (the cycle's as cycle_domains says); SSIM as eval's (11 x 11 Gaussian window).
    # SSIM compares local means, contrasts and correlations, so a blur that flattens the local contrast
    # of fine shading costs it more than a pixel L1 (Zhao et al. 2017 mix it with L1 for restoration).
    # 0 is the paper. On the default emoji run (session 40) 200 lowered the mean FID by 1.16 and 0.75 on
    # two seeds (Google -> Twitter by 1.8 and 0.6); 60 and 600 by 0.87 and 0.70 on one seed (Google ->
    # Twitter 1.3 and 1.6), at about 5 % more time per step: 0.04 short of the rule for the preset, so
    # emoji64 keeps 0 (docs/RESULTS.md item 00000000000000000000000000000000000). Over the bundled command's
    # 22000 steps (lambda_edges=600) 200 made the bundled pair of session 41: 78.76 / 73.21 against 79.14 /
    # 72.54 without it (one seed; item 000000000000000000000000000000000000).
    lambda_ssim: float = 0.0
    # Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise of this standard
    # deviation (image units, images in [-1, 1]) added to every image a discriminator sees, real and
    # translated alike, after the augmentation, falling linearly to 0 at total_steps. Noise blurs the
    # two distributions into each other, so D cannot separate them perfectly early on and its
    # gradients stay informative. 0 is the paper. 0.1 was level on the default emoji run (session 40,
    # one seed: +0.14 mean FID; docs/RESULTS.md item 00000000000000000000000000000000000).
    dis_input_noise: float = 0.0
    # An adversarial term on reconstructions as well (VAE/GAN, Larsen et al. 2016): D_i also
    # sees G_i(E_i(x_i)) as fake, and E, G are asked to make it pass, with this weight (the
    # translations' GAN terms keep lambda_gan). The decoders learn from noisy codes
    # (z = mu + eta) against an L1, so they paint the average of what a code allows: a blur
    # that every translation inherits. A critic on the reconstructions asks for one sharp
    # drawing instead. Off during gan_warmup_steps; not scaled by lambda_gan_late_scale.
    # 10 was level with 0 on the emoji default run (two seeds, mean FID 97.1 / 81.0 against
    # 96.2 / 81.0; about 1.1x the time per step; docs/RESULTS.md item 000000000000000000000000000).
    # 0 is the paper.
    lambda_gan_recon: float = 0.0
    # R1 (Mescheder et al. 2018): r1_gamma / 2 * E|grad_x D_i(x)|^2 on real images, added to
    # D's loss (through the augmentation, like StyleGAN2-ADA), D(x) being the sum of its patch
    # logits over all scales. It keeps D from growing steep around the real data, a known cause
    # of GAN oscillation; costs a double backward of D (a few percent of an emoji64 step on a CPU).
    # 1 did not help the emoji default run (docs/RESULTS.md, item 00000000). 0 is the paper.
    r1_gamma: float = 0.0
    # Two time-scale update rule (Heusel et al. 2017): D's learning rate is lr * dis_lr_ratio,
    # following the same schedule. 1 is the paper (one rate for all).
    dis_lr_ratio: float = 1.0
    # The GAN weight of the decay phase: from step lr_decay_start * total_steps on (where the
    # 'linear' policy starts to lower the rate; from the first step if lr_decay_start is 0),
    # both GAN terms, D's and E+G's, are weighted lambda_gan * lambda_gan_late_scale. Three
    # thousand extra steps at a third of the weight lowered emoji FID by ~1.4 in both
    # directions (docs/RESULTS.md, item 0000000000000000000); over the whole decay half of
    # the bundled pair's run, 0.3 came out level with 1 (item 00000000000000000000).
    # 1 is the paper (one weight throughout).
    lambda_gan_late_scale: float = 1.0
    # A reconstruction-only warm start: for the first gan_warmup_steps steps the GAN terms
    # are off (lambda0 = 0), D is neither called nor updated (those steps cost only E and G),
    # and E+G learn the VAE and cycle terms alone; from that step on, training is the
    # paper's. 600 (a fifth) of the emoji default run's 2950 steps came out level with 0
    # (docs/RESULTS.md item 0000000000000000000000). 0 is the paper.
    gan_warmup_steps: int = 0
    # Spectral normalisation (Miyato et al. 2018) of every D convolution: each layer's weight
    # is divided by its largest singular value (one power iteration per D or G step), so D is
    # 1-Lipschitz per layer and cannot win by growing steep. It reparametrises D's weights
    # (their names in checkpoints carry "parametrizations"), so a checkpoint resumes only with
    # the same setting. Within noise of the emoji default run (docs/RESULTS.md, item
    # 000000000); level in the 90-minute bundled command (79.39 / 74.13 against 79.36 / 74.43);
    # on 200 emoji per style 0.42 / 0.55 FID better over two seeds, short of its rule (item
    # 00000000000000000000000000000000000000000). False is the paper.
    dis_spectral_norm: bool = False

    # How much larger an object is drawn in domain B than in domain A, in frames of one size (USPS
    # digits fill their frame, MNIST's sit in a 20 px box: 1.35; Twitter's emoji 1.059x Google's).
    # Every translation A -> B is resized by it about the image centre, B -> A by its inverse (the
    # uncovered border takes the image's border colour), in training (the GAN, cycle and anchor terms
    # see the resized images) and at inference; reconstructions are untouched. Convolutions cannot
    # learn to resize a whole image: resizing the untranslated test images alone beats the identity
    # (Twitter -> Google FID 75.9 against 78.8; USPS digits read by the MNIST classifier 98.0 % against
    # 97.4 %; docs/RESULTS.md item 00000000000000000000000000).
    # ``core.framing.measure_framing`` (``train --frame-scale auto``, Train UNIT's frame_scale 0)
    # measures it from two sets of objects on a plain background; photos have none. 1 is the paper.
    frame_scale: float = 1.0
    # The colour of the border a shrunk translation no longer covers, per target domain, as "#rrggbb"
    # (gray for a 1-channel domain); "" takes each image's own border colour (the median of its
    # outermost ring), which is the object's colour where an object touches the border (many of
    # Twitter's emoji): the ring then widens the object instead of showing background. A domain's
    # background colour (``core.framing.measure_framing``; white for both emoji styles) keeps it
    # background: the Twitter test emoji shrunk to Google's frame score FID 73.15 with white against
    # 75.90 with each image's colour (docs/RESULTS.md item 00000000000000000000000000). In training, on the
    # default emoji run, white fills were level over two seeds (Twitter -> Google -1.6 FID, Google -> Twitter
    # +1.4; item 0000000000000000000000000000). "" is the behaviour before these fields; with frame_scale 1
    # nothing is resized and they do nothing.
    frame_fill_a: str = ""
    frame_fill_b: str = ""

    preset: str = ""  # informational: which preset this config started from

    extra: dict = field(default_factory=dict)  # free-form notes, kept in the file

    # ------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        check_field_types(self)
        self.validate()
        check_model_size(self)

    @property
    def latent_channels(self) -> int:
        return self.base_channels * 2**self.n_downsample

    @property
    def stride(self) -> int:
        """Spatial factor between an image and its latent; inputs are padded to it."""
        return 2**self.n_downsample

    def channels(self, domain: str) -> int:
        return {"a": self.channels_a, "b": self.channels_b}[domain]

    def frame_fill(self, domain: str) -> tuple[float, ...] | None:
        """What a translation into ``domain`` shrunk by the frame scale shows where it no longer
        covers the frame (frame_fill_a/b, one value per channel): None for each image's own border colour."""
        return fill_colour({"a": self.frame_fill_a, "b": self.frame_fill_b}[domain], self.channels(domain))

    def restart_steps(self) -> list[int]:
        """The steps where a new phase begins (restart_step, then every restart_every steps)."""
        if not self.restart_step:
            return []
        every = self.restart_every or self.total_steps
        return list(range(self.restart_step, self.total_steps, every))

    def begins_phase(self, step: int) -> bool:
        """Whether a new phase (a restart) begins at ``step``."""
        return bool(self.restart_step) and self.restart_step <= step < self.total_steps and self.phase(step)[0] == step

    def phase(self, step: int) -> tuple[int, int, float]:
        """(first step, end step, rate factor) of the phase ``step`` belongs to: the whole run
        without a restart, else [0, restart_step) at the full rate and each later phase at
        restart_lr_scale."""
        if not self.restart_step or step < self.restart_step:
            return 0, self.restart_step or self.total_steps, 1.0
        first = self.restart_step
        if self.restart_every:  # steps past total_steps (a run trained on past its horizon) stay in the last phase
            first += (min(step, self.total_steps - 1) - self.restart_step) // self.restart_every * self.restart_every
        end = min(first + self.restart_every, self.total_steps) if self.restart_every else self.total_steps
        return first, end, float(self.restart_lr_scale)

    def validate(self) -> None:
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(f"UNITConfig.{name}={getattr(self, name)!r} is invalid: {rule}")

        for name in ("channels_a", "channels_b"):
            need(getattr(self, name) in (1, 3), name, "must be 1 (gray) or 3 (RGB)")
        for name in ("image_size", "base_channels", "dis_channels", "dis_layers", "dis_scales"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 1, name, "must be an integer >= 1")
        need(isinstance(self.n_downsample, int) and 0 <= self.n_downsample <= 6, "n_downsample", "must be 0..6")
        need(isinstance(self.n_res_blocks, int) and self.n_res_blocks >= 1, "n_res_blocks", "must be >= 1")
        need(
            isinstance(self.n_shared, int) and 0 <= self.n_shared <= self.n_res_blocks,
            "n_shared",
            f"must be between 0 and n_res_blocks ({self.n_res_blocks})",
        )
        need(
            isinstance(self.dis_shared_layers, int) and 0 <= self.dis_shared_layers < self.dis_layers + 1,
            "dis_shared_layers",
            f"must be between 0 and dis_layers ({self.dis_layers}); the first layer sees domain-specific channels",
        )
        need(self.norm in NORMS, "norm", f"must be one of {NORMS}")
        need(self.dis_norm in NORMS, "dis_norm", f"must be one of {NORMS}")
        need(self.upsample in UPSAMPLE_MODES, "upsample", f"must be one of {UPSAMPLE_MODES}")
        need(self.gan_mode in GAN_MODES, "gan_mode", f"must be one of {GAN_MODES}")
        need(self.cycle_domains in CYCLE_DOMAINS, "cycle_domains", f"must be one of {CYCLE_DOMAINS}")
        need(self.lr_policy in LR_POLICIES, "lr_policy", f"must be one of {LR_POLICIES}")
        for name in ("lambda_gan", "lambda_kl", "lambda_recon", "lambda_cc_kl", "lambda_cc_recon", "lambda_identity",
                     "lambda_fm", "lambda_edges", "lambda_freq", "lambda_ssim", "dis_input_noise", "r1_gamma", "weight_decay", "grad_clip"):
            need(float(getattr(self, name)) >= 0, name, "must be >= 0")
        # The anchor compares each translation with its input pixel by pixel; across channel counts
        # the L1 would broadcast a gray image over RGB and pull every translation toward gray.
        need(not self.lambda_identity or self.channels_a == self.channels_b, "lambda_identity",
             f"needs domains of one channel count (channels_a={self.channels_a}, channels_b={self.channels_b}): "
             f"it compares each translation with its input pixel by pixel")
        need(isinstance(self.identity_pool, int) and 1 <= self.identity_pool <= self.image_size, "identity_pool",
             f"must be a whole number of pixels from 1 (pixel by pixel) to image_size ({self.image_size})")
        need(self.lr > 0, "lr", "must be > 0")
        need(0 < float(self.dis_lr_ratio) <= 100, "dis_lr_ratio", "must be in (0, 100] (1 is the paper)")
        need(0 < float(self.lambda_gan_late_scale) <= 100, "lambda_gan_late_scale",
             "must be in (0, 100] (1 is the paper: the same GAN weight throughout)")
        need(not self.lambda_ssim or self.image_size >= 11, "lambda_ssim",
             f"needs images of at least 11 px (SSIM's window), not {self.image_size}")
        need(0 <= float(self.edges_cycle_scale) <= 10, "edges_cycle_scale",
             "must be in [0, 10]: the edge loss's weight on the cycle reconstructions as a fraction of lambda_edges")
        need(int(self.gan_warmup_steps) == self.gan_warmup_steps and self.gan_warmup_steps >= 0, "gan_warmup_steps",
             "must be a whole number of steps >= 0 (0 is the paper: the GAN terms from the first step)")
        need(0 <= float(self.lambda_gan_recon) <= 1000, "lambda_gan_recon",
             "must be in [0, 1000] (0 is the paper: no adversarial term on reconstructions)")
        need(0 < float(self.code_gain) <= 100, "code_gain", "must be in (0, 100] (1 is the paper)")
        need(0 <= float(self.latent_noise) <= 10, "latent_noise",
             "must be in [0, 10]: the standard deviation of the latent noise (1 is the paper; 0 trains a plain autoencoder)")
        need(frame_scale_allowed(self.frame_scale), "frame_scale",
             f"must be in {FRAME_SCALE_BOUNDS}: how much larger objects are drawn in domain B than in A (1 is the paper)")
        for name, channels in (("frame_fill_a", self.channels_a), ("frame_fill_b", self.channels_b)):
            try:
                fill_colour(getattr(self, name), channels)
            except ValueError as exc:
                need(False, name, str(exc))
        need(0 <= self.ema_decay < 1, "ema_decay",
             "must be in [0, 1) (0 disables the moving average)")
        try:
            from .augment import parse_policy

            parse_policy(self.augment)
        except ValueError as exc:
            need(False, "augment", str(exc))
        need(0 <= self.beta1 < 1, "beta1", "must be in [0, 1)")
        need(0 <= self.beta2 < 1, "beta2", "must be in [0, 1)")
        need(self.lr_step_size >= 1, "lr_step_size", "must be >= 1")
        need(0 < self.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
        need(self.total_steps >= 1, "total_steps", "must be >= 1")
        need(0 <= self.lr_decay_start < 1, "lr_decay_start", "must be in [0, 1): a fraction of total_steps")
        need(int(self.restart_step) == self.restart_step and
             (self.restart_step == 0 or self.gan_warmup_steps < self.restart_step < self.total_steps), "restart_step",
             f"must be 0 (no second phase) or a whole step after gan_warmup_steps ({self.gan_warmup_steps}) and "
             f"before total_steps ({self.total_steps})")
        need(0 < float(self.restart_lr_scale) <= 10, "restart_lr_scale",
             "must be in (0, 10]: the second phase's rate as a fraction of lr")
        need(self.spike_rollback == 0 or 1.5 <= float(self.spike_rollback) <= 100, "spike_rollback",
             "must be 0 (off) or in [1.5, 100]: how many times its running average a reconstruction error must "
             "reach to count as a spike")
        need(int(self.restart_every) == self.restart_every and self.restart_every >= 0
             and (self.restart_every == 0 or self.restart_step > 0), "restart_every",
             "must be a whole number of steps >= 0, and 0 unless restart_step starts a second phase")
        need(self.domain_a != self.domain_b, "domain_b", "must differ from domain_a")
        need(
            self.image_size % self.stride == 0,
            "image_size",
            f"must be a multiple of 2**n_downsample = {self.stride} for training",
        )
        # Each discriminator scale halves the input; the coarsest must still see a patch.
        coarsest = self.image_size // 2 ** (self.dis_scales - 1)
        need(
            coarsest >= 2**self.dis_layers,
            "dis_scales",
            f"image_size {self.image_size} is too small for {self.dis_scales} scale(s) of {self.dis_layers} "
            f"stride-2 layers (the coarsest input, {coarsest} px, must be >= {2**self.dis_layers})",
        )

    # --- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UNITConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a UNIT config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown UNIT config field(s) {unknown}; this version of unit-nodes knows {sorted(known)}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "UNITConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"UNIT config is not valid JSON: {exc}") from exc
        except RecursionError:
            raise ConfigError("UNIT config JSON is nested too deeply") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "UNITConfig":
        return dataclasses.replace(self, **changes)


# --- bounds checked before anything is built --------------------------------------------
# Sizes beyond these are typos or hostile files, not models: refusing them keeps a config (a
# --set value, a file's metadata) from allocating memory, or running for hours, before any
# other check. The real models here are 4..40 M parameters.
MAX_PARAMETERS = 1_000_000_000
MAX_FIELD = {"image_size": 8192, "base_channels": 2048, "dis_channels": 2048, "n_res_blocks": 64,
             "dis_layers": 12, "dis_scales": 8}


def check_field_types(config: "UNITConfig") -> None:
    """Every field has its declared type (an int is a float; a bool is neither) and finite,
    bounded numbers, so that a metadata value like ``"lr": null`` is named, not a TypeError."""
    for f in fields(config):
        value = getattr(config, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"UNITConfig.{f.name}={value!r} is invalid: must be an integer")
            limit = MAX_FIELD.get(f.name, 10**15)
            if abs(value) > limit:
                raise ConfigError(f"UNITConfig.{f.name}={value} is invalid: must be at most {limit}")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"UNITConfig.{f.name}={value!r} is invalid: must be a number")
            if not math.isfinite(value):
                raise ConfigError(f"UNITConfig.{f.name}={value!r} is invalid: must be a finite number")
        elif kind == "str":
            if not isinstance(value, str):
                raise ConfigError(f"UNITConfig.{f.name}={value!r} is invalid: must be a string")
            if len(value) > 10_000:
                raise ConfigError(f"UNITConfig.{f.name} is invalid: a string of {len(value)} characters")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"UNITConfig.{f.name}={value!r} is invalid: must be true or false")
        elif kind.startswith("dict") and not isinstance(value, dict):
            raise ConfigError(f"UNITConfig.{f.name}={value!r} is invalid: must be a JSON object")


def parameter_estimate(config: "UNITConfig") -> int:
    """Convolution weights of ``UNIT(config)`` with its discriminators, counted from the config
    alone (biases and norm parameters, a fraction of a percent, are left out)."""
    b, n, lat = config.base_channels, config.n_downsample, config.latent_channels
    per_res_block = 2 * 9 * lat * lat
    res_blocks = 2 * (2 * (config.n_res_blocks - config.n_shared) + config.n_shared)  # E and G, shared once
    image_side = 49 * (config.channels_a + config.channels_b) * b * 2  # first encoder and last generator convs
    down = sum(16 * (b * 2**i) * (b * 2**(i + 1)) for i in range(n))
    k = UPSAMPLE_KERNEL[config.upsample] ** 2
    up = sum(k * (lat // 2**i) * (lat // 2**(i + 1)) for i in range(n))
    dis, c_in, c = 0, 3, config.dis_channels
    for _ in range(config.dis_layers):
        dis += 16 * c_in * c
        c_in, c = c, min(2 * c, 8 * config.dis_channels)
    dis = 2 * config.dis_scales * (dis + c_in)
    return res_blocks * per_res_block + image_side + 2 * (down + up) + dis


def check_model_size(config: "UNITConfig") -> None:
    n = parameter_estimate(config)
    if n > MAX_PARAMETERS:
        raise ConfigError(
            f"this UNIT config describes a model of about {n / 1e6:,.0f} M parameters (base_channels="
            f"{config.base_channels}, n_downsample={config.n_downsample}, n_res_blocks={config.n_res_blocks}, "
            f"dis_channels={config.dis_channels}), more than the {MAX_PARAMETERS / 1e6:,.0f} M allowed; "
            f"nothing was allocated")


# Presets are data: overrides of the UNITConfig defaults (which are the paper's photo
# settings), each with the training run it was measured with.
PRESETS: dict[str, dict[str, Any]] = {
    # Small enough to train on 2 CPU cores: 32 px, latent 128 x 8 x 8, single-scale D.
    "digits32": dict(
        channels_a=1, channels_b=1, image_size=32, base_channels=32, n_downsample=2, n_res_blocks=2, n_shared=1,
        norm="batch",
        upsample="transpose",  # 4x4 transposed convs: ~6x fewer FLOPs than nearest + 5x5 at 32 px
        dis_channels=64, dis_layers=3, dis_scales=1, dis_shared_layers=0, weight_decay=0.0,
    ),
    # The fast RGB recipe, measured on Google <-> Twitter emoji at an equal CPU budget
    # (docs/RESULTS.md, "emoji recipe"): a /2 latent (64 x 32 x 32 at 64 px) keeps the detail
    # that a /4 latent blurs away; bilinear + 3x3 upsampling has no checkerboard grain (unlike
    # transposed convs), costs 9/25 of nearest + 5x5 and reaches the lowest FID per CPU minute
    # of the three; the exported weights are a moving average, D sees translated/cut-out
    # copies, and B's private layers start as copies of A's (mirrored_init: the translation
    # starts as the reconstruction, so it keeps the input's colours instead of swapping hues).
    # lr 8e-4 (8x the paper's) for the default batch of 2, since session 24; 1.6e-3 before, tuned at
    # batch 4: there, at 2000 steps, FID 97.6 / 93.4 against 101.1 / 94.0 for 8e-4, 107.6 / 101.2 for
    # 4e-4 and 116.8 / 109.2 for 2e-4 (docs/RESULTS.md, items 00000 and 000000: with the moving
    # average of the exported weights, a short run gains most from a fast rate). At batch 2 the
    # default run scores level at either rate (two bf16 seeds each: mean FID 93.2 against 92.8; one
    # fp32 seed: 93.0 against 92.3), but 1.6e-3 held past ~6000 steps broke down in two of three runs, and
    # 8e-4 held for 7500-12500 steps in none of three (items 000000000000000000 and
    # 0000000000000000000): half the rate for half the batch. At batch 4 pass --lr 1.6e-3 (the
    # bundled pair's run).
    # base_channels 32 (24 before session 14): the default run scored 96.8 / 89.4 against 99.5 /
    # 91.1 at about the same wall time (0.216 s per step, against 0.213-0.23 for 24-channel runs on
    # the same VM kind: at 64 px and batch 4 a bf16 step with AMX up to 32 channels is bound by per-layer
    # overheads, not by the translator's width; in exact fp32, which CPUs without AMX or AVX512-BF16 train in, 32 channels
    # cost 1.30x the 24-channel step: docs/RESULTS.md item 000000000000), and its 22000-step run became the bundled pair
    # (84.9 / 77.5 against 86.5 / 78.5; docs/RESULTS.md item 0000000000). 48 channels (93.4 / 86.3)
    # and 5 residual blocks a side (97.2 / 86.7) score better at 1800 steps but cost 1.44x and 1.38x
    # the time per step, and at equal wall time they come out about level with the 32-channel run
    # carried on (item 00000000000), and over the full budget as well (a 15000-step 48-channel run: 85.5 / 75.9 in
    # 91 minutes against 84.9 / 77.5 in 82, level at equal wall time; item 000000000000; with n_shared=3,
    # a tenth cheaper per step: 85.8 / 76.9 in 79.5 minutes, item 000000000000000000000): not adopted.
    # lambda_edges 100 (session 35): the default run with the frame scale scored 91.07 / 77.37 and
    # 90.36 / 77.13 on two seeds against 96.77 / 80.36 and 95.71 / 81.65 without it (mean FID -4.6,
    # KID, L1 and SSIM better too; docs/RESULTS.md item 000000000000000000000000000000); it sharpens
    # reconstructions, which any pair of domains wants. 300 (session 36): 88.98 / 75.53 and 88.10 / 75.22,
    # mean -2.0 against 100 on the same two seeds, and the 200-image recipe's mean -2.0 (item
    # 0000000000000000000000000000000). 600 (session 37): 86.13 / 75.48 and 85.79 / 75.54, mean -1.2
    # against 300, all of it Google -> Twitter, and the 200-image recipe's mean -0.6 (item
    # 00000000000000000000000000000000); 1000 broke one of two seeds' translations down (session 36).
    # The bundled emoji pair is trained with 300 (session 37). At the bundled pair's rate (batch 4,
    # 1.6e-3) 600 broke down in both seeds tried (session 38), and with spike_rollback=4 seed 0 was
    # rolled back once and trained on: spike_rollback 4 (session 38) costs nothing in a run that does
    # not spike (item 000000000000000000000000000000000).
    "emoji64": dict(
        channels_a=3, channels_b=3, image_size=64, base_channels=32, n_downsample=1, n_res_blocks=3, n_shared=1,
        norm="instance", upsample="bilinear", dis_channels=32, dis_layers=3, dis_scales=2,
        lr=8e-4, ema_decay=0.999, augment="translation,cutout", mirrored_init=True, lambda_edges=600.0,
        spike_rollback=4.0,
    ),
    # The photo architecture of the reference implementation: /4 spatial latent, 4 residual
    # blocks a side with the innermost one shared, 3-scale PatchGAN. A GPU recipe.
    "image256": dict(
        channels_a=3, channels_b=3, image_size=256, base_channels=64, n_downsample=2, n_res_blocks=4, n_shared=1,
        norm="instance", dis_channels=64, dis_layers=4, dis_scales=3,
    ),
}

# The paper's training (Liu et al. 2017, Sec. 4): on top of any preset's architecture, these
# undo the additions of the fast recipe.
PAPER_TRAINING: dict[str, Any] = dict(lr=1e-4, beta1=0.5, beta2=0.999, ema_decay=0.0, augment="", lambda_identity=0.0, identity_pool=1,
                                      mirrored_init=False, lambda_fm=0.0, lambda_edges=0.0, edges_cycle_scale=1.0,
                                      lambda_freq=0.0, lambda_ssim=0.0, dis_input_noise=0.0,
                                      code_gain=1.0, latent_noise=1.0, r1_gamma=0.0, dis_lr_ratio=1.0,
                                      lambda_gan_recon=0.0, lambda_gan_late_scale=1.0, gan_warmup_steps=0,
                                      dis_spectral_norm=False, frame_scale=1.0, frame_fill_a="", frame_fill_b="", restart_step=0,
                                      spike_rollback=0.0, gan_mode="lsgan",
                                      lambda_gan=10.0, lambda_kl=0.1, lambda_recon=100.0, lambda_cc_kl=0.1,
                                      lambda_cc_recon=100.0, cycle_domains="ab")

# What a training run with each preset defaults to (CLI and Train UNIT): batch size and steps.
# emoji64 until session 22 (batch 4): 1800 steps take ~15 min on a free 2-core AVX-512 CPU (~0.50 s per step with two threads),
# ~28 min on an AVX2-only one (~0.92 s per step), inside the 30 minutes a CPU user should wait; 1800
# steps of 4e-4 already scored better than 2000 steps of 2e-4 (FID 110.5 / 105.4 at 1500, 108.1 / 101.0
# at 2000, against 116.8 / 109.2: docs/RESULTS.md item 00000), and the rate is 1.6e-3 now (item 000000);
# on a 2-core CPU with AMX, where training runs in bf16 autocast, the default run took 6.1 minutes with
# the 24-channel translator (FID 99.5 / 91.1, item 0000000) and 6.5 with 32 channels (96.8 / 89.4, item 0000000000);
# the figures above without AMX are 24-channel ones: in fp32 the 32-channel step costs 1.30x, so 16-20 min
# with AVX-512 and an estimated 39 on the AVX2-only VM of session 8 (1.40x there; item 000000000000), past 30
# minutes there; measured on an AVX2-only AMD EPYC (Zen 3): 22.8 min, and 24 channels for 2700 steps in the same
# time score level (96.3 / 90.8 against 96.6 / 90.3: item 0000000000000), so the width stays;
# on an H200 GPU the same run took 2.1 minutes (14 steps per second in bf16, in channels_last, which GPUs no longer
# train in: 1.16x faster at batch 4 without it, 6.7x at batch 64; docs/PERFORMANCE.md#gpu) and more steps pay
# (see the node's tooltips); a batch of 64 there gave the same FID at 1800 steps as batch 4.
# Batch 2 for 2950 steps since session 22: at the default run's wall time FID follows the number of
# steps more than the images per step (batch 64 on the GPU above); on the AVX2 EPYC a batch-2 step
# costs 0.54-0.61x a batch-4 one, and 2950 steps of batch 2 scored 96.2 / 86.9 against 96.6 / 90.3 for
# 1800 of batch 4, L1 within 0.002 (batch 1 for 5300 steps: 96.6 / 86.6, L1 0.003 worse, not
# adopted; docs/RESULTS.md item 0000000000000000); the default run took 22.9 min there in session 22
# (item 00000000000000000). On a GPU a step costs the same at any small batch. On a 2-core CPU with
# AMX (bf16) it took 6.8 min (session 23), on one with AVX512-BF16 and no AMX 5.9 min in bf16 and 7.5 in fp32
# (session 30; docs/PERFORMANCE.md, speed work 6). At batch 2 the rate is 8e-4 since session 24: the former
# 1.6e-3 held past ~6000 steps broke down in two of three runs (in fp32 as in bf16), 8e-4 held for up to
# 12500 steps in none of three; for the best pair in ~90 minutes, batch 4 at 1.6e-3 for 22000 steps (the
# bundled pair: 84.9 / 77.5) still beats 25000 steps of batch 2 at 8e-4 (86.8 / 79.6 and 87.7 / 80.5, two runs
# on one thread each; items 000000000000000000 and 0000000000000000000).
PRESET_TRAINING: dict[str, dict[str, int]] = {
    "digits32": dict(batch_size=16, steps=3000),
    "emoji64": dict(batch_size=2, steps=2950),
    "image256": dict(batch_size=1, steps=100_000),
}


def preset(name: str, **overrides: Any) -> UNITConfig:
    """A named starting configuration; keyword overrides are validated like any field."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    known = {f.name for f in fields(UNITConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown UNIT config field(s) {unknown} for preset {name!r}")
    return UNITConfig(**{**PRESETS[name], "preset": name, **overrides})


def preset_training(name: str) -> dict[str, int]:
    """The batch size and step count a run with preset ``name`` defaults to."""
    if name not in PRESET_TRAINING:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESET_TRAINING)}")
    return dict(PRESET_TRAINING[name])
