import pytest
import torch

from tiny import tiny_config
from unit_nodes.core.config import ConfigError, UNITConfig, preset
from unit_nodes.core.inference import (cycle_reconstruct, decode, encode, interpolate, prior_latent,
                                       translate)
from unit_nodes.core.losses import GANLoss, kl_unit_variance, l1
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer


def test_shared_blocks_are_the_same_objects():
    model = UNIT(tiny_config(n_res_blocks=3, n_shared=2, dis_shared_layers=1))
    assert model.enc["a"].shared is model.enc["b"].shared
    assert model.gen["a"].shared is model.gen["b"].shared
    assert len(model.enc["a"].shared) == 2
    assert model.dis["a"].shared is model.dis["b"].shared
    # private parts are distinct
    assert model.enc["a"].private is not model.enc["b"].private
    assert model.gen["a"].private is not model.gen["b"].private
    # each shared tensor is counted and optimised once
    ids = [id(p) for p in model.translator_parameters()]
    assert len(ids) == len(set(ids))


def test_no_sharing_is_possible_for_ablation():
    model = UNIT(tiny_config(n_shared=0))
    assert len(model.enc["a"].shared) == 0
    shared_ids = {id(p) for p in model.enc["a"].parameters()} & {id(p) for p in model.enc["b"].parameters()}
    assert not shared_ids


def test_one_gradient_step_moves_shared_blocks_for_both_domains():
    torch.manual_seed(0)
    model = UNIT(tiny_config())
    shared_enc = model.enc["a"].shared[0].body[0][1].weight
    shared_gen = model.gen["b"].shared[0].body[0][1].weight
    before_enc, before_gen = shared_enc.detach().clone(), shared_gen.detach().clone()
    trainer = Trainer(model, device="cpu")
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    trainer.train_step(x, -x)
    assert not torch.equal(before_enc, model.enc["b"].shared[0].body[0][1].weight)
    assert not torch.equal(before_gen, model.gen["a"].shared[0].body[0][1].weight)
    # the very same tensor seen through the other domain
    assert model.enc["b"].shared[0].body[0][1].weight is shared_enc


@pytest.mark.parametrize("channels", [(1, 3), (3, 1), (3, 3)])
def test_odd_sizes_gray_and_colour_batches(channels):
    torch.manual_seed(0)
    cfg = tiny_config(channels_a=channels[0], channels_b=channels[1])
    model = UNIT(cfg).eval()
    x = torch.rand(3, channels[0], 37, 53) * 2 - 1
    y = translate(model, x, "a")
    assert y.shape == (3, channels[1], 37, 53)
    assert y.min() >= -1 and y.max() <= 1
    lat = encode(model, x, "a")
    assert lat.code.shape == (3, cfg.latent_channels, 10, 14)  # ceil(37/4), ceil(53/4)
    assert lat.image_size == (37, 53)
    t, c = cycle_reconstruct(model, x, "a")
    assert t.shape == (3, channels[1], 37, 53) and c.shape == x.shape
    # tiny inputs (smaller than the reflect padding) still work
    assert translate(model, torch.zeros(1, channels[0], 1, 3), "a").shape == (1, channels[1], 1, 3)


def test_gray_model_accepts_rgb_and_rgba_and_rgb_model_accepts_gray():
    model = UNIT(tiny_config(channels_a=1, channels_b=3)).eval()
    assert translate(model, torch.zeros(2, 3, 16, 16), "a").shape == (2, 3, 16, 16)
    assert translate(model, torch.zeros(2, 4, 16, 16), "a").shape == (2, 3, 16, 16)
    assert translate(model, torch.zeros(2, 1, 16, 16), "b").shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="channel"):
        translate(model, torch.zeros(2, 2, 16, 16), "a")
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        translate(model, torch.zeros(3, 16, 16), "a")
    with pytest.raises(ValueError, match="domain"):
        translate(model, torch.zeros(1, 1, 16, 16), "c")


def test_mean_is_deterministic_and_seeded_samples_reproduce():
    torch.manual_seed(0)
    model = UNIT(tiny_config()).eval()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert torch.equal(encode(model, x, "a").code, encode(model, x, "a").code)
    s1 = encode(model, x, "a", sample=True, seed=5).code
    s2 = encode(model, x, "a", sample=True, seed=5).code
    s3 = encode(model, x, "a", sample=True, seed=6).code
    mean = encode(model, x, "a").code
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    # unit variance noise around the mean
    assert abs((s1 - mean).std().item() - 1.0) < 0.1


def test_prior_and_interpolation():
    model = UNIT(tiny_config()).eval()
    p0 = prior_latent(model, 2, 21, 30, seed=1)
    p1 = prior_latent(model, 2, 21, 30, seed=2)
    assert torch.equal(p0.code, prior_latent(model, 2, 21, 30, seed=1).code)
    mid = interpolate(p0, p1, 0.25)
    assert torch.allclose(mid.code, 0.75 * p0.code + 0.25 * p1.code)
    assert decode(model, mid, "b").shape == (2, 1, 21, 30)
    with pytest.raises(ValueError, match="different sizes"):
        interpolate(p0, prior_latent(model, 2, 40, 40, seed=1), 0.5)


def test_kl_is_zero_at_zero_mean_and_matches_hand_value():
    assert kl_unit_variance(torch.zeros(2, 3, 4, 4)).item() == 0.0
    mu = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert kl_unit_variance(mu).item() == pytest.approx((1 + 4 + 9 + 0) / 4)


def test_l1_and_gan_losses_match_hand_values():
    x = torch.tensor([0.0, 1.0, -1.0, 0.5])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert l1(x, y).item() == pytest.approx((1 + 0 + 2 + 0.5) / 4)
    logits = torch.tensor([0.0, 2.0])
    ls = GANLoss("lsgan")
    assert ls(logits, True).item() == pytest.approx(((0 - 1) ** 2 + (2 - 1) ** 2) / 2)
    assert ls(logits, False).item() == pytest.approx((0 + 4) / 2)
    assert ls([logits, logits], True).item() == pytest.approx(2.0)  # summed over scales
    ns = GANLoss("nonsaturating")
    import math

    expected_real = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # -log(sigmoid)
    expected_fake = (math.log(2) + math.log(1 + math.exp(2))) / 2  # -log(1 - sigmoid)
    assert ns(logits, True).item() == pytest.approx(expected_real, rel=1e-5)
    assert ns(logits, False).item() == pytest.approx(expected_fake, rel=1e-5)
    hinge = GANLoss("hinge")
    # D: relu(1 - real) and relu(1 + fake), averaged; G: -mean(fake), no margin
    assert hinge(logits, True).item() == pytest.approx((1 + 0) / 2)
    assert hinge(logits, False).item() == pytest.approx((1 + 3) / 2)
    assert hinge.discriminator_loss([logits], [-logits]).item() == pytest.approx(0.5 + (1 + 0) / 2)
    assert hinge.generator_loss([logits, 2 * logits]).item() == pytest.approx(-1.0 - 2.0)
    with pytest.raises(ValueError, match="GAN loss mode"):
        GANLoss("wgan")


def test_paper_defaults():
    cfg = UNITConfig()
    assert (cfg.lambda_gan, cfg.lambda_kl, cfg.lambda_recon, cfg.lambda_cc_kl, cfg.lambda_cc_recon) == (10, 0.1, 100, 0.1, 100)
    assert (cfg.lr, cfg.beta1, cfg.beta2) == (1e-4, 0.5, 0.999)
    assert cfg.gan_mode == "lsgan"
    # PAPER_TRAINING (train --paper) undoes every addition of the fast emoji recipe
    from unit_nodes.core.config import PAPER_TRAINING

    paper_emoji = preset("emoji64", **PAPER_TRAINING)
    assert (paper_emoji.ema_decay, paper_emoji.augment, paper_emoji.lambda_identity, paper_emoji.mirrored_init) == (
        0.0, "", 0.0, False)
    # ... and every field that is not architecture (or bookkeeping) is the paper's again
    architecture = {"channels_a", "channels_b", "domain_a", "domain_b", "image_size", "base_channels", "n_downsample",
                    "n_res_blocks", "n_shared", "norm", "upsample", "dis_channels", "dis_layers", "dis_scales",
                    "dis_shared_layers", "dis_norm", "preset", "extra"}
    from dataclasses import fields

    training = [f.name for f in fields(UNITConfig) if f.name not in architecture]
    assert {"r1_gamma", "dis_lr_ratio", "lambda_fm", "lambda_edges", "lambda_gan_recon", "code_gain", "latent_noise", "lambda_gan_late_scale", "gan_warmup_steps",
            "frame_scale", "frame_fill_a", "frame_fill_b", "restart_step", "restart_every"} <= set(training)
    assert {n: getattr(paper_emoji, n) for n in training} == {n: getattr(cfg, n) for n in training}
    assert preset("emoji64").mirrored_init is True


@pytest.mark.parametrize("field,value,needle", [
    ("channels_a", 2, "channels_a"),
    ("n_shared", 9, "n_shared"),
    ("norm", "group", "norm"),
    ("image_size", 30, "multiple"),
    ("lr", 0.0, "lr"),
    ("gan_mode", "wgan", "gan_mode"),
    ("r1_gamma", -1.0, "r1_gamma"),
    ("dis_lr_ratio", 0.0, "dis_lr_ratio"),
    ("lambda_gan_late_scale", -0.5, "lambda_gan_late_scale"),
    ("dis_scales", 5, "too small"),
])
def test_config_rejects_impossible_values(field, value, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny_config(**{field: value})


def test_the_colour_anchor_needs_one_channel_count():
    tiny_config(channels_a=3, channels_b=3, lambda_identity=30.0)  # RGB <-> RGB: fine
    tiny_config(channels_a=1, channels_b=3)  # gray -> RGB without the anchor: fine (MNIST -> MNIST-M)
    with pytest.raises(ConfigError, match=r"lambda_identity.*channels_a=1, channels_b=3"):
        tiny_config(channels_a=1, channels_b=3, lambda_identity=30.0)


def test_config_json_round_trip_and_unknown_fields():
    cfg = preset("image256", n_shared=2)
    assert UNITConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown UNIT config field"):
        UNITConfig.from_dict({**cfg.to_dict(), "n_sharde": 1})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("image512")


def test_presets_build():
    for name in ("digits32", "emoji64", "image256"):
        cfg = preset(name)
        model = UNIT(cfg)
        assert model.config.preset == name
        x = torch.zeros(1, cfg.channels_a, cfg.image_size, cfg.image_size)
        assert model.translate(x, "a").shape == (1, cfg.channels_b, cfg.image_size, cfg.image_size)
