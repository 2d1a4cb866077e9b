"""config.frame_scale: a change of object size between the domains, applied to every translation
(A -> B by the scale, B -> A by its inverse) in training and at inference, never to reconstructions."""

from __future__ import annotations

import json

import pytest
import torch

from tiny import tiny_config
from unit_nodes.core import inference as inf
from unit_nodes.core.config import PAPER_TRAINING, ConfigError, UNITConfig, preset
from unit_nodes.core.networks import UNIT, reframe
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.weights import load_model, save_model


def square(size: int = 32, side: int = 16, batch: int = 1) -> torch.Tensor:
    """A dark centred square on a white background, [-1, 1]."""
    x = torch.ones(batch, 3, size, size)
    lo = (size - side) // 2
    x[..., lo:lo + side, lo:lo + side] = -1
    return x


def dark_side(x: torch.Tensor) -> float:
    return float((x[0, 0] < 0).sum()) ** 0.5


@pytest.mark.parametrize("factor", [1.25, 0.8])
def test_reframe_resizes_the_content_about_the_centre_and_keeps_a_plain_background(factor):
    x = square()
    y = reframe(x, factor)
    assert y.shape == x.shape
    assert abs(dark_side(y) - 16 * factor) <= 1.0
    assert torch.allclose(torch.flip(y, [-1]), y, atol=1e-5) and torch.allclose(torch.flip(y, [-2]), y, atol=1e-5)  # centred
    # uncovered pixels take the border colour, so a white frame stays white instead of turning gray
    assert y[..., 0, :].min() == 1.0 and y[..., :, 0].min() == 1.0
    assert abs(dark_side(reframe(y, 1 / factor)) - 16) <= 1.0  # the inverse factor undoes it
    assert reframe(x, 1.0) is x
    y16 = reframe(x.bfloat16(), factor)
    assert y16.dtype == torch.bfloat16 and torch.allclose(y16.float(), y, atol=1e-2)


def test_every_translation_changes_the_frame_and_reconstructions_do_not():
    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=32, channels_a=3, channels_b=3, frame_scale=1.5)).eval()
    x = square()
    with torch.no_grad():
        raw_ab = model.decode(model.encode(x, "a"), "b")
        raw_ba = model.decode(model.encode(x, "b"), "a")
        torch.testing.assert_close(model.translate(x, "a"), reframe(raw_ab, 1.5))
        torch.testing.assert_close(model.translate(x, "b"), reframe(raw_ba, 1 / 1.5))
        torch.testing.assert_close(model.translate(x, "a", "a"), model.decode(model.encode(x, "a"), "a"))
        # the inference API: whole image, tiles (one resize of the stitched image), and a latent decoded later
        whole = inf.translate(model, x, "a", tile=None)
        torch.testing.assert_close(whole, reframe(raw_ab, 1.5))
        torch.testing.assert_close(inf.translate(model, x, "a", tile=16, overlap=8), whole, atol=2e-3, rtol=0)
        latent = inf.encode(model, x, "b", tile=None)
        torch.testing.assert_close(inf.decode(model, latent, "a", tile=None), reframe(raw_ba, 1 / 1.5))
        torch.testing.assert_close(inf.decode(model, latent, "b", tile=None), model.decode(latent.code, "b"))
        # a code of no single domain has no frame to change
        prior = inf.prior_latent(model, 1, 32, 32, seed=0)
        torch.testing.assert_close(inf.decode(model, prior, "b", tile=None), model.decode(prior.code, "b"))


def test_training_resizes_translations_and_cycles_and_anchors_to_the_resized_input():
    from unit_nodes.core.losses import UNITObjective, l1

    torch.manual_seed(0)
    model = UNIT(tiny_config(norm="instance", frame_scale=1.5, lambda_identity=2.0))
    trainer = Trainer(model, device="cpu", seed=3)
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    plain = Trainer(model, device="cpu", seed=3)
    plain.g_pass.frame_scale = 1.0  # the same networks and noise without the change of frame
    with torch.no_grad():
        f, p = trainer.forward(x_a, x_b), plain.forward(x_a, x_b)
        torch.testing.assert_close(f["x_aa"], p["x_aa"])
        torch.testing.assert_close(f["x_bb"], p["x_bb"])
        torch.testing.assert_close(f["x_ab"], reframe(p["x_ab"], 1.5))
        torch.testing.assert_close(f["x_ba"], reframe(p["x_ba"], 1 / 1.5))
        # the cycle re-encodes the resized translation and resizes back on the way home
        torch.testing.assert_close(f["mu_ab"], model.encode(f["x_ab"], "b"))
        d = [torch.zeros(2, 1, 4, 4)]
        _, terms = UNITObjective(model.config).translator(x_a, x_b, f, d, d)
        torch.testing.assert_close(terms["identity_a"], l1(f["x_ab"], reframe(x_a, 1.5)))
        torch.testing.assert_close(terms["identity_b"], l1(f["x_ba"], reframe(x_b, 1 / 1.5)))
    losses = trainer.train_step(x_a, x_b)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_frame_scale_is_saved_with_the_weights_and_bounded(tmp_path):
    assert UNITConfig().frame_scale == 1.0 and PAPER_TRAINING["frame_scale"] == 1.0
    assert preset("emoji64").frame_scale == 1.0  # a property of a pair of domains, not of a preset
    model = UNIT(tiny_config(frame_scale=1.0592), discriminators=False)
    save_model(model, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["frame_scale"] == 1.0592
    assert load_model(tmp_path / "m").config.frame_scale == 1.0592
    # a file written before the field existed loads as the paper (no resize)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    del cfg["frame_scale"]
    assert UNITConfig.from_dict(cfg).frame_scale == 1.0
    for bad in (0.4, 2.5, 0.0):
        with pytest.raises(ConfigError, match="frame_scale"):
            tiny_config(frame_scale=bad)


def test_a_domain_fill_shows_background_where_each_images_border_colour_would_widen_the_object():
    # an object touching the border (as many Twitter emoji do): its border colour is the object's own
    x = torch.tensor([0.8, 0.6, -0.9])[None, :, None, None].repeat(1, 1, 32, 32)  # a yellow face filling the frame
    x[..., :, 14:18] = 1.0  # with a white stripe
    own = reframe(x, 0.8)
    white = reframe(x, 0.8, (1.0, 1.0, 1.0))
    inner = (slice(None), slice(None), slice(8, 24), slice(8, 24))
    torch.testing.assert_close(white[inner], own[inner])  # what the shrunk image covers is the same
    assert own[0, :, 16, 0].tolist() == pytest.approx([0.8, 0.6, -0.9])  # widened into the uncovered ring
    assert white[0, :, 16, 0].tolist() == pytest.approx([1.0, 1.0, 1.0])  # background there
    torch.testing.assert_close(reframe(x, 1.25, (1.0, 1.0, 1.0)), reframe(x, 1.25), atol=1e-5, rtol=0)  # enlarging uncovers nothing
    with pytest.raises(ValueError, match="1 value"):
        reframe(x, 0.8, (1.0,))


def test_the_fields_give_each_target_domain_its_fill_in_training_and_at_inference():
    from unit_nodes.core.losses import UNITObjective, l1

    torch.manual_seed(0)
    white, black = (1.0,), (-1.0,)
    model = UNIT(tiny_config(norm="instance", frame_scale=0.75, lambda_identity=2.0,
                             frame_fill_a="#ffffff", frame_fill_b="#000000"))
    assert model.config.frame_fill("a") == white and model.config.frame_fill("b") == black
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    trainer, plain = Trainer(model, device="cpu", seed=3), Trainer(model, device="cpu", seed=3)
    plain.g_pass.frame_scale = 1.0
    with torch.no_grad():
        f, p = trainer.forward(x_a, x_b), plain.forward(x_a, x_b)
        torch.testing.assert_close(f["x_ab"], reframe(p["x_ab"], 0.75, black))  # A -> B shrinks here: B's fill
        torch.testing.assert_close(f["x_ba"], reframe(p["x_ba"], 1 / 0.75, white))
        assert float(f["x_ab"][..., 0, :].min()) == -1.0 == float(f["x_ab"][..., 0, :].max())
        d = [torch.zeros(2, 1, 4, 4)]
        _, terms = UNITObjective(model.config).translator(x_a, x_b, f, d, d)
        torch.testing.assert_close(terms["identity_a"], l1(f["x_ab"], reframe(x_a, 0.75, black)))
        model.eval()
        raw = model.decode(model.encode(x_a, "a"), "b")
        torch.testing.assert_close(model.translate(x_a, "a"), reframe(raw, 0.75, black))
        torch.testing.assert_close(inf.translate(model, x_a, "a", tile=None), reframe(raw, 0.75, black))
        latent = inf.encode(model, x_a, "a", tile=None)
        torch.testing.assert_close(inf.decode(model, latent, "b", tile=None), reframe(raw, 0.75, black))


def test_the_fill_fields_are_saved_checked_and_default_to_each_images_border(tmp_path):
    assert UNITConfig().frame_fill_a == "" and PAPER_TRAINING["frame_fill_b"] == ""
    model = UNIT(tiny_config(channels_a=3, channels_b=1, frame_scale=1.1, frame_fill_a="#FF8000",
                             frame_fill_b="#202020"), discriminators=False)
    assert model.config.frame_fill("a") == pytest.approx((1.0, 128 / 127.5 - 1, -1.0)) and model.config.frame_fill("b") == pytest.approx((32 / 127.5 - 1,))
    save_model(model, tmp_path / "m")
    assert load_model(tmp_path / "m").config.frame_fill_a == "#FF8000"
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    del cfg["frame_fill_a"], cfg["frame_fill_b"]  # a file written before the fields existed
    assert UNITConfig.from_dict(cfg).frame_fill_a == "" and UNITConfig.from_dict(cfg).frame_fill("b") is None
    for field_, value, match in (("frame_fill_a", "white", "#rrggbb"), ("frame_fill_a", "#ffffzz", "hexadecimal"),
                                 ("frame_fill_b", "#ff0000", "gray"), ("frame_fill_a", "#fff", "#rrggbb")):
        with pytest.raises(ConfigError, match=rf"{field_}.*{match}"):
            tiny_config(channels_a=3, channels_b=1, **{field_: value})


def squares_on(background: float, side: int, n: int = 24, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Squares of one side at random places, of random shades far from ``background``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, size, size), background)
    for i in range(n):
        top, left = torch.randint(0, size - side + 1, (2,), generator=g).tolist()
        shade = -background * float(torch.rand((), generator=g) * 0.5 + 0.5)
        x[i, :, top:top + side, left:left + side] = shade
    return x


@pytest.mark.parametrize("background", [1.0, -1.0])  # white (emoji) and black (digits) frames
def test_estimate_frame_scale_measures_the_size_ratio_of_objects_on_a_plain_background(background):
    from unit_nodes.core.framing import estimate_frame_scale

    small, large = squares_on(background, 8), squares_on(background, 12, seed=1)
    assert estimate_frame_scale(small, large) == pytest.approx(1.5, rel=0.02)
    assert estimate_frame_scale(large, small) == pytest.approx(1 / 1.5, rel=0.02)
    # a quarter of the images filled to the border (Twitter's emoji often are) leave the background readable
    touching = torch.cat([squares_on(background, 12, n=18, seed=3), torch.full((6, 3, 32, 32), -background)])
    assert 1.2 < estimate_frame_scale(large, touching) < 2


def test_estimate_frame_scale_refuses_photos_and_impossible_ratios_by_name():
    from unit_nodes.core.framing import FrameScaleError, estimate_frame_scale

    photos = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with pytest.raises(FrameScaleError, match="domain B: .*plain background"):
        estimate_frame_scale(squares_on(1.0, 8), photos)
    with pytest.raises(FrameScaleError, match="domain A: no image"):
        estimate_frame_scale(torch.ones(4, 3, 32, 32), squares_on(1.0, 8))
    with pytest.raises(FrameScaleError, match=r"outside the \[0.5, 2\]"):
        estimate_frame_scale(squares_on(1.0, 4), squares_on(1.0, 16))


def test_the_emoji_frame_scale_on_the_real_training_sets():
    from unit_nodes.core import data
    from unit_nodes.core.framing import estimate_frame_scale

    google, _, _ = data.load_emoji_arrays("google", "train", 64)
    twitter, _, _ = data.load_emoji_arrays("twitter", "train", 64)
    # Twitter draws its emoji larger; the emoji pair's measured value (docs/RESULTS.md)
    assert estimate_frame_scale(google, twitter) == pytest.approx(1.0592, abs=5e-5)
    # and both draw on white: the fill of what a shrunk translation uncovers (config.frame_fill_a/b)
    from unit_nodes.core.framing import background_colour, colour_hex

    assert [colour_hex(background_colour(x)[0]) for x in (google, twitter)] == ["#ffffff", "#ffffff"]
    assert colour_hex(torch.tensor([-1.0])) == "#000000" and colour_hex(torch.tensor([1.0, 0.0, -1.0])) == "#ff8000"


def square_pngs(folder, side: int, count: int = 6, seed: int = 0):
    """Gray PNGs of dark squares on white, 32 px."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(squares_on(1.0, side, n=count, seed=seed)):
        Image.fromarray(((img[0].numpy() + 1) * 127.5).round().astype("uint8"), "L").save(folder / f"{i}.png")
    return folder


def test_train_measures_the_frame_scale_with_auto_and_refuses_photos(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from unit_nodes import cli
    from unit_nodes.core.checkpoint import CHECKPOINT_FILE

    small, large = square_pngs(tmp_path / "small", 8), square_pngs(tmp_path / "large", 12, seed=1)
    tiny = ["--preset", "digits32", "--size", "16", "--batch-size", "2", "--steps", "1", "--sample-every", "0",
            "--set", "base_channels=4", "--set", "dis_channels=8", "--set", "dis_layers=2", "--set", "n_res_blocks=1"]
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "run"),
                     "--frame-scale", "auto", *tiny]) == 0
    err = capsys.readouterr().err
    measured = load_model(tmp_path / "run").config.frame_scale
    assert measured == pytest.approx(1.5, rel=0.05) and f"frame_scale {measured}" in err
    config = load_model(tmp_path / "run").config  # and each domain's background, white here, as the fill
    assert (config.frame_fill_a, config.frame_fill_b) == ("#ffffff", "#ffffff") and "#ffffff / #ffffff" in err
    # resuming with the same command measures the same value: no change of settings to refuse
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "run"),
                     "--frame-scale", "auto", "--resume", "--steps", "2", "--sample-every", "0"]) == 0
    assert Trainer.from_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).step == 2
    assert load_model(tmp_path / "run").config.frame_scale == measured
    # a number is taken as it is
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "given"),
                     "--frame-scale", "0.9", *tiny]) == 0
    assert load_model(tmp_path / "given").config.frame_scale == 0.9
    assert load_model(tmp_path / "given").config.frame_fill_a == ""  # nothing measured: each image's border
    # a fill given with --set stands against the measured one
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "set"),
                     "--frame-scale", "auto", "--set", "frame_fill_b=#808080", *tiny]) == 0
    config = load_model(tmp_path / "set").config
    assert (config.frame_fill_a, config.frame_fill_b) == ("#ffffff", "#808080")
    # a run started before the fields existed (each image's border) resumes with its own command as it was
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "old"),
                     "--frame-scale", "auto", "--set", "frame_fill_a=", "--set", "frame_fill_b=", *tiny]) == 0
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "old"),
                     "--frame-scale", "auto", "--resume", "--steps", "2", "--sample-every", "0"]) == 0
    assert load_model(tmp_path / "old").config.frame_fill_a == "" == load_model(tmp_path / "old").config.frame_fill_b

    photos = tmp_path / "photos"
    photos.mkdir()
    g = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((g.random((32, 32, 3)) * 255).astype("uint8")).save(photos / f"{i}.png")
    capsys.readouterr()
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(photos), "--out", str(tmp_path / "no"),
                     "--frame-scale", "auto", *tiny]) != 0
    err = capsys.readouterr().err
    assert "--frame-scale auto: domain" in err and "plain background" in err and "Traceback" not in err
    assert not (tmp_path / "no" / "model.safetensors").exists()
    assert cli.main(["train", "--domain-a", str(small), "--domain-b", str(large), "--out", str(tmp_path / "bad"),
                     "--frame-scale", "big", *tiny]) != 0
    assert "--frame-scale must be 'auto' or a number" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["2.5", "0.4", "nan", "inf"])
def test_the_baselines_script_refuses_a_frame_scale_no_model_may_have(bad):
    # the same check as the config's (config.frame_scale_allowed), before any data or network is loaded
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "frame_scale_baselines.py"
    run = subprocess.run([sys.executable, str(script), "--only", "emoji", "--emoji-scale", bad],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"--emoji-scale must be in [0.5, 2] (a frame scale a model may have), got {float(bad)}" in run.stderr
