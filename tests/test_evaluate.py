"""The evaluation harness: image metrics, FID/KID, digit protocol and the eval command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny import tiny_config
from unit_nodes.core import data
from unit_nodes.tools import evaluate
from unit_nodes.tools.classifier import accuracy, load_classifier
from unit_nodes.core.networks import UNIT
from unit_nodes.core.weights import save_model

ROOT = Path(__file__).resolve().parents[1]
DATA = data.default_data_root()
MNIST_CLASSIFIER = ROOT / "weights" / "classifiers" / "mnist-digits32.safetensors"


def need_data(*parts: str) -> None:
    if not (DATA.joinpath(*parts)).exists():
        pytest.skip(f"real data not available: {DATA.joinpath(*parts)} is missing (set UNIT_DATA_ROOT)")


def inception_or_skip() -> Path:
    try:
        return evaluate.find_inception()
    except FileNotFoundError as err:
        pytest.skip(f"InceptionV3 for FID not installed ({err})")


# ----------------------------------------------------------------------------- image metrics


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    assert torch.allclose(evaluate.ssim(x, x), torch.ones(3), atol=1e-6)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    s = evaluate.ssim(x, noisy)
    assert (s < 0.95).all() and (s > 0).all()
    assert torch.allclose(s, evaluate.ssim(noisy, x), atol=1e-6)  # symmetric
    assert (evaluate.ssim(x, -x) < s).all()
    with pytest.raises(ValueError, match="same shape"):
        evaluate.ssim(x, x[:, :1])


def test_l1_is_in_unit_pixel_range():
    black, white = -torch.ones(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    assert torch.allclose(evaluate.l1_01(black, white), torch.ones(2))
    assert torch.allclose(evaluate.l1_01(black, torch.zeros(2, 3, 8, 8)), torch.full((2,), 0.5))
    assert evaluate.l1_01(white, white).sum() == 0


def test_fid_of_a_shifted_set_is_the_squared_shift():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    assert abs(evaluate.fid_from_features(f, f)) < 1e-6
    shift = rng.normal(size=16)
    # equal covariances: FID reduces to the squared distance of the means
    assert evaluate.fid_from_features(f, f + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    scaled = evaluate.fid_from_features(f, 2 * f)
    # tr(S) + tr(4S) - 2 tr(2S) = tr(S), plus the mean difference
    mean = f.mean(0)
    assert scaled == pytest.approx(float(np.trace(np.cov(f, rowvar=False)) + mean @ mean), rel=1e-6)


def test_kid_is_near_zero_for_the_same_distribution_and_positive_for_another():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    same, _ = evaluate.kid_from_features(a, b, subsets=20, subset_size=200)
    other, _ = evaluate.kid_from_features(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.02 and other > 0.1 and other > 20 * abs(same)
    with pytest.raises(ValueError):
        evaluate.kid_from_features(a[:1], b[:1])


# ----------------------------------------------------------------------------- Inception


def test_inception_features_and_fid_of_a_set_with_itself():
    net = evaluate.load_inception(inception_or_skip())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    f = evaluate.inception_features(net, x, batch_size=4)
    assert f.shape == (4, 2048) and np.isfinite(f).all() and (f >= 0).all()  # pooled ReLU features
    gray = evaluate.inception_features(net, x[:2, :1], batch_size=2)  # gray is broadcast to RGB
    assert np.allclose(gray, evaluate.inception_features(net, x[:2, :1].expand(-1, 3, -1, -1)), atol=1e-5)
    assert abs(evaluate.fid_from_features(f, f)) < 1e-3
    other = evaluate.inception_features(net, -torch.ones(4, 3, 16, 16), batch_size=4)  # black images
    assert evaluate.fid_from_features(f, other) > 1


def test_missing_inception_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("UNIT_INCEPTION", raising=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate.find_inception(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match="not a loadable TorchScript"):
        evaluate.load_inception(bad)


def test_nv_bilinear_resize_keeps_constant_images_and_size():
    x = torch.full((2, 3, 16, 16), 0.25)
    y = evaluate.nv_bilinear_resize(x, 299)
    assert y.shape == (2, 3, 299, 299) and torch.allclose(y, torch.full_like(y, 0.25))


# ----------------------------------------------------------------------------- digits


def untrained_mnist_usps_pair() -> UNIT:
    """A tiny random-weight 32 px model whose sides are named mnist (a) and usps (b)."""
    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=32), discriminators=False).eval()
    model.config = model.config.replace(domain_a="mnist", domain_b="usps")
    return model


@pytest.mark.skipif(not MNIST_CLASSIFIER.is_file(), reason="bundled MNIST classifier missing")
def test_digit_task_scores_translations_and_the_source_only_baseline():
    need_data("usps")
    model = untrained_mnist_usps_pair()
    r = evaluate.evaluate_digit_task(model, "mnist->usps", limit=300, protocol="translated-target")
    usps = data.DigitDataset("usps", "test", 32, limit=300)
    expected_baseline = accuracy(load_classifier(MNIST_CLASSIFIER), usps.images, usps.labels)
    assert r.target_images == 300 and r.source_only == pytest.approx(expected_baseline)
    assert r.source_only > 0.9  # the classifier reads raw USPS well (97 % on the full test set)
    assert 0.0 <= r.accuracy <= 1.0 and r.accuracy < r.source_only  # an untrained translator destroys digits


@pytest.mark.skipif(not MNIST_CLASSIFIER.is_file(), reason="bundled MNIST classifier missing")
def test_translated_source_protocol_trains_on_translated_labelled_source_images():
    need_data("usps")
    from unit_nodes.tools.classifier import train_classifier

    model = untrained_mnist_usps_pair()
    r = evaluate.evaluate_digit_task(model, "mnist->usps", limit=96, train_limit=128, classifier_steps=6,
                                     protocol="translated-source")
    assert r.protocol == "translated-source" and r.classifier_steps == 6 and r.target_images == 96
    # The same thing by hand: MNIST training images through G_usps(E_mnist(.)), a classifier
    # trained on them with MNIST labels and the bundled recipe, read on real USPS test images.
    mnist = data.DigitDataset("mnist", "train", 32, limit=128)
    usps = data.DigitDataset("usps", "test", 32, limit=96)
    recipe = evaluate.classifier_recipe(MNIST_CLASSIFIER)
    assert recipe["steps"] >= 100  # the bundled classifier's own recipe, not a toy one
    translated = evaluate.translate_all(model, mnist.images, "a", "b")
    by_hand = train_classifier((translated, mnist.labels), steps=6, batch_size=recipe["batch_size"], lr=recipe["lr"],
                               seed=recipe["seed"], in_channels=3)
    assert r.accuracy == pytest.approx(accuracy(by_hand, usps.images, usps.labels))
    assert r.source_only == pytest.approx(accuracy(load_classifier(MNIST_CLASSIFIER), usps.images, usps.labels))
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate.evaluate_digit_task(model, "mnist->usps", protocol="feature-level")


def test_domain_of_reads_names_and_metadata_and_refuses_guessing():
    model = UNIT(tiny_config(), discriminators=False)
    with pytest.raises(ValueError, match="cannot tell which side"):
        evaluate.domain_of(model, "mnist")
    model.metadata = {"domain_a_source": "mnist", "domain_b_source": "usps"}
    assert evaluate.domain_of(model, "usps") == "b" and evaluate.domain_of(model, "MNIST") == "a"
    with pytest.raises(ValueError, match="unknown digit task"):
        evaluate.classifier_path("mnist->svhn")


# ----------------------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unit_nodes", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.skipif(not MNIST_CLASSIFIER.is_file(), reason="bundled MNIST classifier missing")
def test_eval_digits_command(tmp_path):
    need_data("usps")
    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=32), discriminators=False)
    save_model(model, tmp_path / "pair", include_discriminators=False,
               metadata={"domain_a_source": "mnist", "domain_b_source": "usps"})
    for protocol in ("translated-target", "translated-source"):
        out = run_cli("eval", "digits", "--model", str(tmp_path / "pair"), "--task", "mnist->usps", "--limit", "64",
                      "--protocol", protocol, "--classifier-steps", "3", "--device", "cpu", "--json", str(tmp_path / "r.json"))
        assert out.returncode == 0, out.stderr
        assert "mnist->usps" in out.stdout and "source only" in out.stdout and f"protocol {protocol}" in out.stdout
        rows = json.loads((tmp_path / "r.json").read_text())["digits"]
        assert rows[0]["task"] == "mnist->usps" and rows[0]["target_images"] == 64 and rows[0]["protocol"] == protocol


def test_eval_emoji_command_without_fid(tmp_path):
    need_data("emoji", "google", "64")
    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=64, channels_a=3, channels_b=3), discriminators=False)
    save_model(model, tmp_path / "pair", include_discriminators=False,
               metadata={"domain_a_source": "emoji-google", "domain_b_source": "emoji-twitter"})
    out = run_cli("eval", "emoji", "--model", str(tmp_path / "pair"), "--limit", "16", "--no-fid", "--device", "cpu",
                  "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    assert "google->twitter" in out.stdout and "identity baseline" in out.stdout
    rows = json.loads((tmp_path / "r.json").read_text())["emoji"]
    assert [r["direction"] for r in rows] == ["google->twitter", "twitter->google"]
    for r in rows:
        assert r["images"] == 16 and 0 < r["identity_ssim"] < 1 and r["fid"] is None


def test_eval_bad_input_is_a_clear_error(tmp_path):
    out = run_cli("eval", "digits", "--model", str(tmp_path / "missing-pair"))
    assert out.returncode == 2 and "error:" in out.stderr and "missing-pair" in out.stderr
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    out = run_cli("eval", "emoji", "--model", str(corrupt), "--no-fid")
    assert out.returncode == 2 and "corrupt.safetensors" in out.stderr


def test_eval_emoji_says_how_far_the_translations_moved_from_their_source_style(tmp_path):
    # 'moved' is the FID of the translations against their own source style's test images: what tells
    # a translation that changed the style from one that only resized and cleaned up its input
    need_data("emoji", "google", "64")
    net_file = inception_or_skip()
    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=64, channels_a=3, channels_b=3), discriminators=False)
    save_model(model, tmp_path / "pair", include_discriminators=False,
               metadata={"domain_a_source": "emoji-google", "domain_b_source": "emoji-twitter"})
    out = run_cli("eval", "emoji", "--model", str(tmp_path / "pair"), "--limit", "12", "--device", "cpu",
                  "--cache-dir", "none", "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    assert "moved" in out.stdout and "against their own source style" in out.stdout
    rows = {r["direction"]: r for r in json.loads((tmp_path / "r.json").read_text())["emoji"]}

    from unit_nodes.core.weights import load_model

    _, google, twitter = data.emoji_pairs("test", 64, None)
    pair = load_model(tmp_path / "pair", discriminators=False)
    net = evaluate.load_inception(net_file)
    for (src, dst), x in ((("google", "twitter"), google[:12]), (("twitter", "google"), twitter[:12])):
        y = evaluate.translate_all(pair, x, "a" if src == "google" else "b", "b" if src == "google" else "a")
        f_x, f_y = evaluate.inception_features(net, x), evaluate.inception_features(net, y)
        row = rows[f"{src}->{dst}"]
        assert row["source_fid"] == pytest.approx(evaluate.fid_from_features(f_y, f_x), rel=1e-3, abs=1e-2)
        # a random translator's output is far from both styles: not the target's FID under another name
        assert row["source_fid"] > 10 and abs(row["source_fid"] - row["fid"]) > 1e-3
