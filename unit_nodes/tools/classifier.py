"""A small digit classifier for the domain-adaptation evaluation protocol.

The bundled classifiers are trained on one labelled domain alone; ``evaluate`` uses them as
the source-only baseline, to read translations into their domain, and as the training
recipe for classifiers trained on translated source images.
Inputs are 32x32 float tensors in [-1, 1]; gray inputs are broadcast to the model's
channels, so an MNIST model also reads 3-channel translations.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.tensors import match_channels

FORMAT_NAME = "unit_nodes.digit_classifier"
FORMAT_VERSION = "1"


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DigitClassifier(nn.Module):
    """Small VGG-style CNN: (conv-BN-ReLU x2, max-pool) x 2, conv, max-pool, then a
    dropout MLP. Works on any input size divisible by 8 (trained on 32x32)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 32, dropout: float = 0.3):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels!r}")
        self.config = {"in_channels": in_channels, "num_classes": num_classes, "width": width, "dropout": dropout}
        w = width
        self.features = nn.Sequential(
            _conv_block(in_channels, w), _conv_block(w, w), nn.MaxPool2d(2),          # 16x16
            _conv_block(w, 2 * w), _conv_block(2 * w, 2 * w), nn.MaxPool2d(2),        # 8x8
            _conv_block(2 * w, 4 * w), nn.MaxPool2d(2),                               # 4x4
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(2),  # keeps coarse layout, independent of input size
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * w * 4, 128, bias=False),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    @property
    def in_channels(self) -> int:
        return self.config["in_channels"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            if x.shape[1] == 1:
                x = x.expand(-1, self.in_channels, -1, -1)
            elif x.shape[1] == 3 and self.in_channels == 1:
                x = match_channels(x, 1)  # the luma every other part of the pack uses
            else:
                raise ValueError(f"expected {self.in_channels} (or 1) input channels, got {x.shape[1]}")
        return self.head(self.features(x))


# ----------------------------------------------------------------------------- augmentation


def augment_batch(x: torch.Tensor, generator: Optional[torch.Generator] = None, max_shift: float = 0.1,
                  max_rotate_deg: float = 12.0, scale_range: tuple[float, float] = (0.85, 1.15),
                  contrast_range: tuple[float, float] = (0.6, 1.2), max_brightness: float = 0.25,
                  invert_prob: float = 0.0) -> torch.Tensor:
    """Random affine (shift as a fraction of the side, rotation, scale) plus contrast and
    brightness, for a batch ``[B, C, H, W]`` in [-1, 1]. Background fills with -1 (black),
    the digit datasets' background. The photometric part makes the classifier tolerant of
    the tone shifts a translation network produces."""
    b, device = x.shape[0], x.device

    def uniform(lo, hi, shape=(b,)):
        return torch.rand(shape, generator=generator).to(device) * (hi - lo) + lo

    angle = uniform(-max_rotate_deg, max_rotate_deg) * math.pi / 180
    scale = uniform(*scale_range)
    tx, ty = uniform(-max_shift, max_shift) * 2, uniform(-max_shift, max_shift) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0

    contrast = uniform(*contrast_range).view(b, 1, 1, 1)
    brightness = uniform(-max_brightness, max_brightness).view(b, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + brightness
    if invert_prob > 0:
        flip = (uniform(0, 1) < invert_prob).view(b, 1, 1, 1)
        x = torch.where(flip, -x, x)
    return x.clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------- training


def _as_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        return dataset[0], torch.as_tensor(dataset[1]).long()
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        return dataset.images, torch.as_tensor(dataset.labels).long()
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([im for im, _ in items]), torch.as_tensor([int(lab) for _, lab in items])


def _pick_device(device) -> torch.device:
    if device is not None:
        return torch.device(device)
    try:
        from ..core.device import default_device
    except ImportError:  # the project's device helper is optional here
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(default_device())


def train_classifier(dataset, steps: int = 3000, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                     device=None, augment: bool = True, in_channels: int = 3, num_classes: int = 10,
                     weight_decay: float = 5e-4, on_step: Optional[Callable[[int, float], None]] = None,
                     log_every: int = 0) -> DigitClassifier:
    """Train a ``DigitClassifier`` with AdamW and a one-cycle schedule.

    ``dataset``: an ``ArrayImageDataset`` (uses ``.images``/``.labels``), a pair
    ``(images [N,C,H,W] in [-1,1], labels [N])``, or any Dataset of ``(image, label)``.
    ``on_step(step, loss)`` is called after every step. ``device=None`` picks the project's
    default device (cuda > mps > cpu). Returns the model in eval mode.
    """
    images, labels = _as_tensors(dataset)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need matching non-empty images and labels, got {len(images)} and {len(labels)}")
    device = _pick_device(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier(in_channels=in_channels, num_classes=num_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    model.train()
    n, start = len(images), time.time()
    order, cursor = torch.randperm(n, generator=generator), 0
    for step in range(1, steps + 1):
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor : cursor + batch_size]
        cursor += batch_size
        x, y = images[idx].float().to(device), labels[idx].to(device)
        if augment:
            x = augment_batch(x, generator)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_value = loss.item()
        if on_step is not None:
            on_step(step, loss_value)
        if log_every and (step % log_every == 0 or step == steps):
            print(f"step {step}/{steps} loss {loss_value:.4f} lr {schedule.get_last_lr()[0]:.2e} "
                  f"{time.time() - start:.0f}s", flush=True)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class for each image of ``[N, C, H, W]`` in [-1, 1]."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(images[i : i + batch_size].float().to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, images: torch.Tensor, labels, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    labels = torch.as_tensor(labels).long()
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need matching non-empty images and labels, got {len(images)} and {len(labels)}")
    return float((predict(model, images, batch_size) == labels).float().mean())


# ----------------------------------------------------------------------------- files


def save_classifier(model: DigitClassifier, path, extra_metadata: Optional[dict] = None) -> Path:
    """Write weights to a .safetensors file (atomically) with the architecture in metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": json.dumps(model.config)}
    for key, value in (extra_metadata or {}).items():
        metadata[str(key)] = value if isinstance(value, str) else json.dumps(value)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    from ..core.weights import atomic_write

    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_classifier(path, device=None) -> DigitClassifier:
    """Load a classifier written by ``save_classifier``; returns it in eval mode."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    if metadata.get("format") != FORMAT_NAME or "config" not in metadata:
        raise ValueError(f"{path} is not a digit classifier file (metadata format={metadata.get('format')!r}, "
                         f"expected {FORMAT_NAME!r} with a 'config' entry)")
    model = DigitClassifier(**json.loads(metadata["config"]))
    model.load_state_dict(load_file(str(path)))
    return model.to(device if device is not None else "cpu").eval()


def read_metadata(path) -> dict:
    """The metadata dict of a classifier file (values are strings)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def main(argv=None) -> None:
    """Train the bundled MNIST classifier and report source-only accuracies:
    ``python -m unit_nodes.tools.classifier --out weights/classifiers/mnist-digits32.safetensors``."""
    import argparse

    from ..core import data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--domain", default="mnist", choices=data.DIGIT_DOMAINS)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--root", default=None, help="data root (default: data.default_data_root())")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train_set = data.DigitDataset(args.domain, "train", 32, args.root, channels=3)
    start = time.time()
    model = train_classifier(train_set, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             device=args.device, log_every=100)
    train_seconds = time.time() - start
    results = {}
    for name in data.DIGIT_DOMAINS:
        test = data.DigitDataset(name, "test", 32, args.root, channels=3)
        results[name] = accuracy(model, test.images, test.labels)
        print(f"test accuracy on {name}: {100 * results[name]:.2f}% ({len(test)} images)", flush=True)
    info = {"trained_on": args.domain, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
            "seed": args.seed, "train_seconds": round(train_seconds, 1), "test_accuracy": results}
    save_classifier(model.cpu(), args.out, extra_metadata={"training": info})
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
