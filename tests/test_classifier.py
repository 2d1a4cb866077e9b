"""Digit classifier: save/load, training lowers the loss, the bundled weights read real digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from unit_nodes.core import data
from unit_nodes.tools import classifier

BUNDLED = Path(__file__).resolve().parents[1] / "weights" / "classifiers" / "mnist-digits32.safetensors"


def mnist_subset(n: int, split: str = "train") -> data.DigitDataset:
    if not (data.default_data_root() / "mnist" / "mnist.npz").is_file():
        pytest.skip(f"real MNIST not available under {data.default_data_root()}")
    return data.DigitDataset("mnist", split, 32, limit=n)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = classifier.DigitClassifier(in_channels=3, num_classes=7, width=8).eval()
    model.features[0][1].running_mean.uniform_(-1, 1)  # buffers travel too, not only parameters
    path = classifier.save_classifier(model, tmp_path / "sub" / "clf.safetensors", extra_metadata={"note": {"a": 1}})
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded = classifier.load_classifier(path)
    assert loaded.config == model.config and not loaded.training
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert torch.equal(loaded(x), model(x))
    meta = classifier.read_metadata(path)
    assert json.loads(meta["config"])["num_classes"] == 7 and json.loads(meta["note"]) == {"a": 1}

    gray = x[:, :1]
    assert torch.equal(loaded(gray), loaded(gray.expand(-1, 3, -1, -1)))  # gray broadcast to RGB

    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(ValueError, match="not a digit classifier"):
        classifier.load_classifier(other)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        classifier.load_classifier(tmp_path / "missing.safetensors")


def test_a_few_steps_lower_the_loss():
    ds = mnist_subset(256)
    images, labels = ds.images, ds.labels
    torch.manual_seed(1)
    untrained = classifier.DigitClassifier().eval()
    with torch.no_grad():
        before = F.cross_entropy(untrained(images), labels).item()
    losses = []
    model = classifier.train_classifier(ds, steps=40, batch_size=16, lr=3e-3, seed=1, augment=False,
                                        on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 40 and not model.training
    with torch.no_grad():
        after = F.cross_entropy(model(images), labels).item()
    assert after < 0.7 * before
    assert sum(losses[-5:]) < sum(losses[:5])
    assert classifier.accuracy(model, images, labels) > 0.5


def test_augment_batch_keeps_shape_range_and_is_seeded():
    x = mnist_subset(8).images
    a = classifier.augment_batch(x, torch.Generator().manual_seed(0))
    b = classifier.augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert float(a.min()) >= -1 and float(a.max()) <= 1


@pytest.mark.skipif(not BUNDLED.is_file(), reason=f"bundled classifier {BUNDLED} not built yet")
def test_bundled_mnist_classifier_reads_real_digits():
    test = mnist_subset(1000, "test")
    model = classifier.load_classifier(BUNDLED)
    assert BUNDLED.stat().st_size < 2 * 1024 * 1024
    assert classifier.accuracy(model, test.images, test.labels) > 0.98
    rgb = data.DigitDataset("mnist", "test", 32, limit=200, channels=3)
    assert classifier.accuracy(model, rgb.images, rgb.labels) > 0.97
