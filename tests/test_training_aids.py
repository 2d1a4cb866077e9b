"""EMA of the translator and differentiable augmentation of D's inputs: the additions of the
fast recipe. Both are config fields whose zero / empty values give the paper's training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tiny import TensorImages, shapes_and_inversions, tiny_config
from unit_nodes.core.augment import cutout, diff_augment, parse_policy, scale, translation
from unit_nodes.core.config import ConfigError, UNITConfig
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.weights import load_model, save_model


def test_translation_moves_content_without_changing_it():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    y = translation(x, torch.Generator().manual_seed(0), ratio=0.25)
    for i in range(2):
        # find the shift: every nonzero output pixel must be the input pixel shifted by it
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(x[i])
                src = x[i][:, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
                shifted[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
                found |= torch.equal(shifted, y[i])
        assert found, f"image {i} is not a pure shift of its input"


def test_cutout_zeroes_one_square_of_the_given_size_per_image():
    x = torch.ones(16, 3, 16, 16)
    y = cutout(x, torch.Generator().manual_seed(1), ratio=0.5)
    zeros = (y == 0).all(dim=1).flatten(1).sum(1)
    assert (zeros <= 64).all() and (zeros >= 16).all()  # an 8x8 square, clipped at the border
    assert torch.equal((y == 0).any(dim=1), (y == 0).all(dim=1))  # all channels alike


def test_scale_zooms_each_image_about_its_centre_within_the_range():
    # a centred 16 x 16 square in a 32 x 32 frame: a zoom by f covers about (16 f)^2 pixels
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 8:24, 8:24] = 1
    y = scale(x, torch.Generator().manual_seed(3), ratio=0.35)
    factor = (y.flatten(1).sum(1) / 256).sqrt()
    assert factor.min() >= 0.70 - 0.03 and factor.max() <= 1.42 + 0.03
    assert factor.min() < 0.85 and factor.max() > 1.2  # the draws spread over the range
    coords = torch.arange(32, dtype=torch.float32) + 0.5
    mass = y[:, 0].sum((1, 2))
    cy = (y[:, 0].sum(2) * coords).sum(1) / mass
    cx = (y[:, 0].sum(1) * coords).sum(1) / mass
    assert torch.allclose(cy, torch.full_like(cy, 16.0), atol=1e-3) and torch.allclose(cx, cy, atol=1e-3)
    assert torch.allclose(scale(x, torch.Generator(), ratio=0.0), x, atol=1e-6)  # factor 1: unchanged
    # bf16 inputs (autocast) keep their dtype and get the same zoom, sampled on an fp32 grid
    y16 = scale(x.bfloat16(), torch.Generator().manual_seed(3), ratio=0.35)
    assert y16.dtype == torch.bfloat16 and torch.allclose(y16.float(), y, atol=1e-2)


def test_augmentation_is_differentiable_and_seeded():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    policy = parse_policy("color,translation,cutout,scale")
    y1 = diff_augment(x, policy, torch.Generator().manual_seed(5))
    y1.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    y2 = diff_augment(x.detach(), policy, torch.Generator().manual_seed(5))
    assert torch.equal(y1.detach(), y2)
    assert diff_augment(x, ()) is x


def test_bad_fields_are_refused_by_name():
    with pytest.raises(ConfigError, match="augment.*unknown augmentation.*'flip'"):
        tiny_config(augment="translation,flip")
    with pytest.raises(ConfigError, match="ema_decay"):
        tiny_config(ema_decay=1.0)
    paper = UNITConfig()
    assert (paper.ema_decay, paper.augment) == (0.0, "")  # the paper's training, unchanged


def test_ema_follows_the_weights_with_warm_up_and_is_what_gets_exported(tmp_path):
    a, b = shapes_and_inversions(8)
    torch.manual_seed(0)
    trainer = Trainer(UNIT(tiny_config(ema_decay=0.99)), device="cpu", seed=0)
    before = [p.detach().clone() for p in trainer.ema.translator_parameters()]
    trainer.train_step(a[:4], b[:4])
    raw = [p.detach() for p in trainer.model.translator_parameters()]
    # step 0: the warm-up decay min(0.99, 1/10) = 0.1 keeps a tenth of the old average
    for e, old, new in zip(trainer.ema.translator_parameters(), before, raw):
        assert torch.allclose(e, 0.1 * old + 0.9 * new, atol=1e-6)
    assert any(not torch.equal(e, r) for e, r in zip(trainer.ema.translator_parameters(), raw))
    # the shared blocks stay shared in the average
    assert trainer.ema.enc["a"].shared is trainer.ema.enc["b"].shared
    assert trainer.export_model() is trainer.ema
    path = save_model(trainer.export_model(), tmp_path / "m", include_discriminators=False)
    loaded = load_model(path)
    for (k, v), e in zip(loaded.state_dict().items(), trainer.ema.state_dict().values()):
        assert torch.equal(v, e), k
    plain = Trainer(UNIT(tiny_config()), device="cpu")
    assert plain.ema is None and plain.export_model() is plain.model


def assert_resume_is_bit_identical(cfg, tmp_path, stop_at: int, steps: int = 6) -> None:
    """A run of ``cfg`` checkpointed at ``stop_at`` and resumed (under another global seed) to
    ``steps`` ends with exactly the weights and moving average of the run done in one go."""
    a, b = shapes_and_inversions(24)
    ds_a, ds_b = TensorImages(a), TensorImages(b)
    torch.manual_seed(1)
    straight = Trainer(UNIT(cfg), device="cpu", seed=3)
    straight.fit(ds_a, ds_b, steps, batch_size=4)
    torch.manual_seed(1)
    first = Trainer(UNIT(cfg), device="cpu", seed=3)
    first.fit(ds_a, ds_b, stop_at, batch_size=4)
    ckpt = first.save_checkpoint(tmp_path / "ck.safetensors")
    torch.manual_seed(999)
    resumed = Trainer.from_checkpoint(ckpt, device="cpu", seed=3)
    resumed.fit(ds_a, ds_b, steps, batch_size=4)
    for part in ("model", "ema"):
        s, r = getattr(straight, part).state_dict(), getattr(resumed, part).state_dict()
        for k in s:
            assert torch.equal(s[k], r[k]), (part, k)


def test_resume_with_ema_and_augmentation_is_bit_identical(tmp_path):
    assert_resume_is_bit_identical(tiny_config(ema_decay=0.9, augment="color,translation,cutout"), tmp_path, stop_at=3)


def test_instance_noise_on_d_inputs_falls_to_zero_and_resumes_bit_identically(tmp_path):
    """dis_input_noise: D's inputs get Gaussian noise of that standard deviation at step 0, falling
    linearly to none at total_steps, drawn from the trainer's checkpointed generator; 0 (the paper)
    leaves them as they are."""
    cfg = tiny_config(dis_input_noise=0.2, total_steps=10)
    trainer = Trainer(UNIT(cfg), device="cpu", seed=0)
    x = torch.zeros(64, 3, 16, 16)
    assert trainer.dis_input_noise_at(0) == pytest.approx(0.2)
    assert trainer.dis_input_noise_at(5) == pytest.approx(0.1)
    assert trainer.dis_input_noise_at(10) == trainer.dis_input_noise_at(12) == 0.0
    assert trainer._augment(x).std().item() == pytest.approx(0.2, rel=0.05)
    trainer.step = 5
    assert trainer._augment(x).std().item() == pytest.approx(0.1, rel=0.05)
    trainer.step = 10
    assert torch.equal(trainer._augment(x), x)
    plain = Trainer(UNIT(tiny_config()), device="cpu", seed=0)
    assert plain.dis_input_noise_at(0) == 0.0 and torch.equal(plain._augment(x), x)
    with pytest.raises(ConfigError, match="dis_input_noise"):
        tiny_config(dis_input_noise=-0.1)
    assert_resume_is_bit_identical(tiny_config(dis_input_noise=0.3, total_steps=6, augment="translation", ema_decay=0.9),
                                  tmp_path, stop_at=3)


def test_step_timer_reports_the_steady_rate_and_time_left():
    from unit_nodes.core.progress import StepTimer, format_duration

    now = [100.0]
    timer = StepTimer(start_step=10, smoothing=0.5, clock=lambda: now[0])
    assert timer.describe(10, 110) == "step 10/110"
    now[0] += 30.0  # first step after a (re)start: warm-up, not counted
    timer.update(11)
    assert timer.seconds_per_step is None
    now[0] += 2.0
    timer.update(12)
    now[0] += 4.0
    timer.update(13)
    assert timer.seconds_per_step == pytest.approx(3.0)
    assert timer.describe(13, 113) == "step 13/113, 3.00 s/step, 5 min 00 s left"
    assert format_duration(3725) == "1 h 02 min" and format_duration(59.4) == "59 s"


def _logged_losses(name: str) -> list[dict]:
    path = Path(__file__).parent / "data" / name
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("trace, broke_at", [
    # emoji64 at batch 2 in bf16 on a CPU (session 23): D_b's loss spiked to 9 at step 6550 and the
    # reconstruction error went from about 0.06 to 0.3-0.6 (swapped colours in the samples)
    ("losses_emoji64_b2_bf16_breakdown.jsonl", range(6550, 6701)),
    # the same recipe with n_shared=3, 29000 steps: healthy throughout (its lowest error comes late,
    # when the rate decays, so a late noisy step is measured against a low best)
    ("losses_emoji64_ns3_b2_bf16_healthy.jsonl", None),
])
def test_breakdown_watch_flags_a_real_breakdown_once_and_not_a_healthy_run(trace, broke_at):
    from unit_nodes.core.progress import BreakdownWatch

    watch = BreakdownWatch()
    alarms = [(row["step"], alarm) for row in _logged_losses(trace) if (alarm := watch.update(row["step"], row))]
    if broke_at is None:
        assert alarms == [] and watch.broke_at is None
        return
    [(step, alarm)] = alarms
    assert step in broke_at and watch.broke_at == step
    assert f"broken down at step {step}" in alarm and "swapped colours" in alarm and "another seed" in alarm


def random_translator_pass(seed: int):
    """A seeded stand-in for TranslatorPass's outputs on 2 gray 8 px images (4 x 2 x 2 codes),
    and the draw function, to draw D's outputs from the same stream."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    x_a, x_b = r(2, 1, 8, 8), r(2, 1, 8, 8)
    f = {k: r(2, 4, 2, 2) for k in ("mu_a", "mu_b", "mu_ab", "mu_ba")}
    f.update({k: r(2, 1, 8, 8) for k in ("x_aa", "x_bb", "x_ab", "x_ba", "x_aba", "x_bab")})
    return r, x_a, x_b, f


def test_objective_reads_like_the_paper():
    """UNITObjective.translator is lambda1*KL + lambda2*L1 (VAE) + lambda0*GAN + lambda3*KLs +
    lambda4*cycle L1, checked term by term against the formula written out here."""
    from unit_nodes.core.losses import GANLoss, UNITObjective, kl_unit_variance, l1

    r, x_a, x_b, f = random_translator_pass(seed=0)
    d_a, d_b = [r(2, 1, 2, 2)], [r(2, 1, 2, 2)]
    cfg = tiny_config(lambda_gan=3.0, lambda_kl=0.5, lambda_recon=7.0, lambda_cc_kl=0.25, lambda_cc_recon=11.0)
    loss, terms = UNITObjective(cfg).translator(x_a, x_b, f, d_a, d_b)
    gan = GANLoss(cfg.gan_mode)
    kl = {k: kl_unit_variance(f[k]) for k in ("mu_a", "mu_b", "mu_ab", "mu_ba")}
    expected = (0.5 * (kl["mu_a"] + kl["mu_b"]) + 7.0 * (l1(f["x_aa"], x_a) + l1(f["x_bb"], x_b))
                + 3.0 * (gan.generator_loss(d_a) + gan.generator_loss(d_b))
                + 0.25 * sum(kl.values()) + 11.0 * (l1(f["x_aba"], x_a) + l1(f["x_bab"], x_b)))
    assert torch.allclose(loss, expected)
    assert set(terms) == {"kl_a", "kl_b", "kl_ab", "kl_ba", "recon_a", "recon_b", "cycle_a", "cycle_b", "g_gan_a", "g_gan_b"}
    d_loss, d_terms = UNITObjective(cfg).discriminator(d_a, d_b, d_b, d_a)
    assert torch.allclose(d_loss, 3.0 * (gan.discriminator_loss(d_a, d_b) + gan.discriminator_loss(d_b, d_a)))


def test_identity_anchor_adds_its_weighted_l1_and_is_off_by_default():
    from unit_nodes.core.losses import UNITObjective, l1

    r, x_a, x_b, f = random_translator_pass(seed=1)
    d = [r(2, 1, 2, 2)]
    base, terms = UNITObjective(tiny_config()).translator(x_a, x_b, f, d, d)
    assert "identity_a" not in terms and UNITConfig().lambda_identity == 0.0
    anchored, terms = UNITObjective(tiny_config(lambda_identity=5.0)).translator(x_a, x_b, f, d, d)
    assert torch.allclose(anchored - base, 5.0 * (l1(f["x_ab"], x_a) + l1(f["x_ba"], x_b)))
    with pytest.raises(ConfigError, match="lambda_identity"):
        tiny_config(lambda_identity=-1.0)


def test_block_anchor_keeps_colours_and_frees_the_drawing_inside_each_block():
    """identity_pool=4: a translation that redraws inside each 4 x 4 block (same block means) costs
    nothing, one that recolours a block costs its colour change; pool 1 charges both pixel by pixel."""
    from unit_nodes.core.losses import UNITObjective

    r, x_a, x_b, f = random_translator_pass(seed=2)
    d = [r(2, 1, 2, 2)]
    checker = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * 2.0 - 1.0  # mean 0 in every 2 x 2
    f["x_ab"], f["x_ba"] = x_a + 0.5 * checker, x_b.clone()
    base, _ = UNITObjective(tiny_config()).translator(x_a, x_b, f, d, d)

    def anchor_terms(pool):
        loss, terms = UNITObjective(tiny_config(lambda_identity=5.0, identity_pool=pool)).translator(x_a, x_b, f, d, d)
        return loss - base, terms

    extra, terms = anchor_terms(4)
    assert float(terms["identity_a"]) == pytest.approx(0.0, abs=1e-6) and float(extra) == pytest.approx(0.0, abs=1e-5)
    extra, terms = anchor_terms(1)
    assert float(terms["identity_a"]) == pytest.approx(0.5) and float(extra) == pytest.approx(2.5)
    f["x_ab"] = x_a.clone()
    f["x_ab"][:, :, :4, :4] += 0.8  # one block of the 2 x 2 block map recoloured in each image
    _, terms = anchor_terms(4)
    assert float(terms["identity_a"]) == pytest.approx(0.8 / 4)
    _, terms = anchor_terms(3)  # blocks that do not tile the image: the edge blocks average what they hold
    assert float(terms["identity_a"]) > 0
    for bad in (0, 17, 2.5):
        with pytest.raises(ConfigError, match="identity_pool"):
            tiny_config(identity_pool=bad)


def test_discriminator_features_are_the_hidden_layers_of_its_forward_pass():
    torch.manual_seed(0)
    dis = UNIT(tiny_config(dis_scales=2, dis_layers=2, dis_shared_layers=1)).dis["a"].eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    feats = dis.features(x)
    # 2 scales x 2 hidden layers (the logit layer is not a feature); the shared tail's
    # hidden layer is included, and each scale's logits follow from its last feature
    assert [tuple(f.shape) for f in feats] == [(3, 16, 8, 8), (3, 32, 4, 4), (3, 16, 4, 4), (3, 32, 2, 2)]
    logits = dis(x)
    for s, last in ((0, feats[1]), (1, feats[3])):
        torch.testing.assert_close(dis.shared[s][-1](last), logits[s])


def test_feature_matching_adds_its_weighted_terms_and_is_off_by_default():
    """lambda_fm * (FM(x_i, x_ii) + w_i FM(x_i, x_iji)) per domain, FM = mean over D's layers
    of the L1 between hidden activations; the cycle part follows cycle_domains."""
    from unit_nodes.core.losses import UNITObjective, feature_matching, l1

    assert UNITConfig().lambda_fm == 0.0
    r, x_a, x_b, f = random_translator_pass(seed=2)
    d = [r(2, 1, 2, 2)]
    feats = {k: [r(6, 3, 4, 4), r(6, 5, 2, 2)] for k in ("a", "b")}  # [x; recon; cycle] per layer
    base, terms = UNITObjective(tiny_config()).translator(x_a, x_b, f, d, d, feats)
    assert not any(k.startswith("fm") for k in terms)
    loss, terms = UNITObjective(tiny_config(lambda_fm=4.0, cycle_domains="a")).translator(x_a, x_b, f, d, d, feats)
    fm = {k: [(h[:2], h[2:4], h[4:]) for h in feats[k]] for k in feats}
    expect = {}
    for k in "ab":
        expect[f"fm_{k}"] = (l1(fm[k][0][1], fm[k][0][0]) + l1(fm[k][1][1], fm[k][1][0])) / 2
        expect[f"fm_cycle_{k}"] = (l1(fm[k][0][2], fm[k][0][0]) + l1(fm[k][1][2], fm[k][1][0])) / 2
        torch.testing.assert_close(terms[f"fm_{k}"], expect[f"fm_{k}"])
        torch.testing.assert_close(terms[f"fm_cycle_{k}"], expect[f"fm_cycle_{k}"])
    base_a, _ = UNITObjective(tiny_config(cycle_domains="a")).translator(x_a, x_b, f, d, d)
    torch.testing.assert_close(loss - base_a, 4.0 * (expect["fm_a"] + expect["fm_cycle_a"] + expect["fm_b"]), rtol=1e-4, atol=1e-4)
    assert torch.allclose(feature_matching(feats["a"], feats["a"]), torch.tensor(0.0))
    with pytest.raises(ValueError, match="lambda_fm"):
        UNITObjective(tiny_config(lambda_fm=1.0)).translator(x_a, x_b, f, d, d)
    with pytest.raises(ConfigError, match="lambda_fm"):
        tiny_config(lambda_fm=-1.0)


def assert_adds_fidelity_terms(field: str, prefix: str, distance, f, x_a, x_b, d, cycle_domains: str) -> None:
    """``field`` = 3 adds 3 * (distance(x_ii, x_i) + w_i distance(x_iji, x_i)) per domain, logged as
    ``<prefix>_i`` and ``<prefix>_cycle_i``, w_i as cycle_domains says; 0 adds nothing; < 0 is refused."""
    from unit_nodes.core.losses import UNITObjective

    base, terms = UNITObjective(tiny_config(cycle_domains=cycle_domains)).translator(x_a, x_b, f, d, d)
    assert not any(k.startswith(prefix) for k in terms)
    loss, terms = UNITObjective(tiny_config(**{field: 3.0}, cycle_domains=cycle_domains)).translator(x_a, x_b, f, d, d)
    expect = {f"{prefix}_a": distance(f["x_aa"], x_a), f"{prefix}_cycle_a": distance(f["x_aba"], x_a),
              f"{prefix}_b": distance(f["x_bb"], x_b), f"{prefix}_cycle_b": distance(f["x_bab"], x_b)}
    for k, v in expect.items():
        torch.testing.assert_close(terms[k], v)
    kept = [f"{prefix}_a", f"{prefix}_b"] + [f"{prefix}_cycle_{c}" for c in cycle_domains]
    torch.testing.assert_close(loss - base, 3.0 * sum(expect[k] for k in kept), rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match=field):
        tiny_config(**{field: -1.0})


def test_edge_loss_charges_blur_that_a_pixel_l1_barely_sees_and_adds_its_weighted_terms():
    """lambda_edges * (GDL(x_i, x_ii) + w_i GDL(x_i, x_iji)) per domain, GDL = L1 of the
    neighbour differences; the cycle part follows cycle_domains; 0 (the paper) adds nothing."""
    from unit_nodes.core.losses import gradient_l1, l1

    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0  # a vertical edge
    blurred = step.clone()
    blurred[..., 3], blurred[..., 4] = 0.25, 0.75  # the same edge spread over two more pixels
    assert l1(blurred, step).item() == pytest.approx(2 * 0.25 / 8)  # the pixel L1 sees 1/16
    assert gradient_l1(blurred, step).item() == pytest.approx(0.5 * (0.25 + 0.5 + 0.25) / 7)  # more, per pixel pair
    assert gradient_l1(step.transpose(-1, -2), step.transpose(-1, -2) + 3.0).item() == 0.0  # differences only

    assert UNITConfig().lambda_edges == 0.0
    r, x_a, x_b, f = random_translator_pass(seed=2)
    assert_adds_fidelity_terms("lambda_edges", "edges", gradient_l1, f, x_a, x_b, [r(2, 1, 2, 2)], cycle_domains="a")


def test_edges_cycle_scale_weights_only_the_cycle_part_of_the_edge_loss():
    """edges_cycle_scale multiplies the cycle reconstructions' edge terms alone (0: reconstructions
    only); 1, the default, is the edge loss as it was; out of [0, 10] is refused by name."""
    from unit_nodes.core.losses import UNITObjective

    assert UNITConfig().edges_cycle_scale == 1.0
    r, x_a, x_b, f = random_translator_pass(seed=3)
    d = [r(2, 1, 2, 2)]
    base, _ = UNITObjective(tiny_config()).translator(x_a, x_b, f, d, d)
    full, t = UNITObjective(tiny_config(lambda_edges=3.0)).translator(x_a, x_b, f, d, d)
    recon_only, _ = UNITObjective(tiny_config(lambda_edges=3.0, edges_cycle_scale=0.0)).translator(x_a, x_b, f, d, d)
    half, _ = UNITObjective(tiny_config(lambda_edges=3.0, edges_cycle_scale=0.5)).translator(x_a, x_b, f, d, d)
    cycle = t["edges_cycle_a"] + t["edges_cycle_b"]
    assert cycle.item() > 0
    torch.testing.assert_close(recon_only - base, 3.0 * (t["edges_a"] + t["edges_b"]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(full - recon_only, 3.0 * cycle, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(half - recon_only, 1.5 * cycle, rtol=1e-4, atol=1e-4)
    for bad in (-0.5, 11.0):
        with pytest.raises(ConfigError, match="edges_cycle_scale"):
            tiny_config(edges_cycle_scale=bad)


def test_focal_frequency_loss_is_a_weighted_mse_of_the_spectrum_and_adds_its_weighted_terms():
    """lambda_freq * (FFL(x_i, x_ii) + w_i FFL(x_i, x_iji)) per domain; FFL weighs each
    frequency's squared error by its error over the largest (so it is at most the pixel MSE, by
    Parseval, and equal to it when every frequency is off by as much); 0 (the paper) adds nothing."""
    from unit_nodes.core.losses import focal_frequency

    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    mse = (x - y).square().mean()
    assert 0 < focal_frequency(x, y).item() < mse.item()
    assert focal_frequency(x, x).item() == 0.0
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[..., 0, 0] = 1.0  # its spectrum is flat: every frequency off by the same amount
    torch.testing.assert_close(focal_frequency(impulse, torch.zeros_like(impulse)), impulse.square().mean())
    sharp = torch.zeros(1, 1, 8, 8)
    sharp[..., 4:] = 1.0
    blurred = sharp.clone()
    blurred[..., 3], blurred[..., 4] = 0.25, 0.75
    shifted = sharp + 0.125  # the same pixel MSE as the blur, all of it at frequency 0
    assert (blurred - sharp).square().mean().item() == pytest.approx((shifted - sharp).square().mean().item())
    assert focal_frequency(blurred, sharp).item() < focal_frequency(shifted, sharp).item()  # spread thinner

    assert UNITConfig().lambda_freq == 0.0
    r, x_a, x_b, f = random_translator_pass(seed=4)
    assert_adds_fidelity_terms("lambda_freq", "freq", focal_frequency, f, x_a, x_b, [r(2, 1, 2, 2)], cycle_domains="a")


def test_ssim_loss_is_evals_ssim_made_a_loss_and_adds_its_weighted_terms():
    """lambda_ssim * ((1 - SSIM(x_i, x_ii)) + w_i (1 - SSIM(x_i, x_iji))) per domain, SSIM the very
    function ``eval`` reports (in float64 there), differentiable; 0 (the paper) adds nothing."""
    from unit_nodes.core.losses import structural_similarity
    from unit_nodes.tools.evaluate import ssim

    g = torch.Generator().manual_seed(6)
    x = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(2, 3, 16, 16, generator=g)).clamp(-1, 1).requires_grad_(True)
    s = structural_similarity(y, x)
    torch.testing.assert_close(s.detach(), ssim(y.detach(), x), rtol=1e-5, atol=1e-5)
    assert structural_similarity(x, x).allclose(torch.ones(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in a bf16 training step: still float32 inside
        torch.testing.assert_close(structural_similarity(y, x), s)
    (1 - s.mean()).backward()
    assert y.grad is not None and y.grad.abs().sum() > 0

    assert UNITConfig().lambda_ssim == 0.0
    r, _, _, f = random_translator_pass(seed=7)  # SSIM's 11 px window needs larger images than its 8 px
    x_a, x_b = (r(2, 1, 16, 16).clamp(-1, 1) for _ in range(2))
    f.update({k: r(2, 1, 16, 16).clamp(-1, 1) for k in ("x_aa", "x_bb", "x_ab", "x_ba", "x_aba", "x_bab")})
    assert_adds_fidelity_terms("lambda_ssim", "ssim", lambda y, x: 1 - structural_similarity(y, x).mean(),
                               f, x_a, x_b, [r(2, 1, 2, 2)], cycle_domains="b")
    with pytest.raises(ConfigError, match="lambda_ssim.*11"):
        tiny_config(lambda_ssim=1.0, image_size=8)


@pytest.mark.parametrize("dis_norm", ["none", "batch"])
def test_feature_matching_trains_the_translator_and_leaves_d_alone(dis_norm):
    """With lambda_fm the E+G step also follows D's features of the reconstructions: the same
    step from the same state moves G differently than without it, D's weights move only in
    D's own step, and the run stays finite."""
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    gens = {}
    for lambda_fm in (0.0, 10.0):
        torch.manual_seed(0)
        trainer = Trainer(UNIT(tiny_config(lambda_fm=lambda_fm, dis_norm=dis_norm, dis_scales=2)), device="cpu")
        fwd = trainer.forward(x_a, x_b)
        trainer.d_step(x_a, x_b, fwd)
        d_before = [p.detach().clone() for p in trainer.model.dis.parameters()]
        losses = trainer.g_step(x_a, x_b, fwd)
        assert all(torch.equal(a, b) for a, b in zip(d_before, trainer.model.dis.parameters()))
        assert ({"fm_a", "fm_b", "fm_cycle_a", "fm_cycle_b"} <= set(losses)) == bool(lambda_fm)
        gens[lambda_fm] = [p.detach().clone() for p in trainer.model.gen["a"].parameters()]
        assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_step(x_a, x_b).values())
    assert not all(torch.equal(a, b) for a, b in zip(gens[0.0], gens[10.0]))


def test_code_gain_scales_the_mean_everywhere_it_is_computed(tmp_path):
    """E's output is gain x the paper's encoder output, in inference (encode) and in the
    training pass alike, and the gain is part of the saved config."""
    assert UNITConfig().code_gain == 1.0
    torch.manual_seed(0)
    paper = UNIT(tiny_config(norm="instance"))  # per-image statistics: one batch or two give the same codes
    torch.manual_seed(0)
    gained = UNIT(tiny_config(norm="instance", code_gain=4.0))
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(gained.encode(x, "b"), 4.0 * paper.encode(x, "b"))
        fwd = Trainer(gained, device="cpu").forward(x, x)
        torch.testing.assert_close(fwd["mu_a"], 4.0 * paper.encode(x, "a"))
        torch.testing.assert_close(fwd["mu_b"], 4.0 * paper.encode(x, "b"))
    save_model(gained, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config.code_gain == 4.0
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().encode(x, "a"), gained.eval().encode(x, "a"))
    with pytest.raises(ConfigError, match="code_gain"):
        tiny_config(code_gain=0.0)


def test_latent_noise_scales_eta_in_training_and_in_seeded_samples(tmp_path):
    """z = mean + latent_noise * eta with the same eta: training draws the same numbers at any
    setting, 0 decodes the means, and a seeded sample at inference uses the trained noise."""
    from unit_nodes.core import inference as inf

    assert UNITConfig().latent_noise == 1.0
    torch.manual_seed(0)
    model = UNIT(tiny_config(norm="instance"))
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    passes = {}
    for noise in (1.0, 0.25, 0.0):
        trainer = Trainer(model, device="cpu", seed=5)
        trainer.g_pass.latent_noise = noise  # the same networks, the same stream of eta
        state = trainer.noise.get_state()
        with torch.no_grad():
            passes[noise] = trainer.forward(x_a, x_b)
    with torch.no_grad():
        mu = passes[1.0]["mu_a"]
        torch.testing.assert_close(passes[0.0]["x_aa"], model.decode(mu, "a"))  # no noise: the mean's decoding
        replay = torch.Generator()
        replay.set_state(state)
        eta = torch.randn(torch.Size([4, *mu.shape[1:]]), generator=replay)[:2]  # drawn for [mu_a; mu_b]
        assert not torch.allclose(passes[1.0]["x_aa"], passes[0.25]["x_aa"])
        torch.testing.assert_close(passes[0.25]["x_aa"], model.decode(mu + 0.25 * eta, "a"))
        torch.testing.assert_close(passes[1.0]["x_aa"], model.decode(mu + eta, "a"))
    quiet = UNIT(tiny_config(norm="instance", latent_noise=0.25)).eval()
    plain = UNIT(tiny_config(norm="instance")).eval()
    plain.load_state_dict(quiet.state_dict())
    mean = inf.encode(quiet, x_a, "a", tile=None).code
    for tile in (None, 8):
        sampled_q = inf.encode(quiet, x_a, "a", tile=tile, sample=True, seed=3).code
        sampled_p = inf.encode(plain, x_a, "a", tile=tile, sample=True, seed=3).code
        torch.testing.assert_close(sampled_q - mean, 0.25 * (sampled_p - mean), atol=1e-5, rtol=1e-4)
        if tile is None:
            translated_q = inf.translate(quiet, x_a, "a", tile=None, sample=True, seed=3)
            assert not torch.allclose(translated_q, inf.translate(plain, x_a, "a", tile=None, sample=True, seed=3))
    save_model(quiet, tmp_path / "m")
    assert load_model(tmp_path / "m").config.latent_noise == 0.25
    for bad in (-0.1, 11.0):
        with pytest.raises(ConfigError, match="latent_noise"):
            tiny_config(latent_noise=bad)


def test_mirrored_init_starts_translation_as_reconstruction_with_untied_copies():
    torch.manual_seed(0)
    assert UNITConfig().mirrored_init is False  # the paper: independent initialisation
    model = UNIT(tiny_config(mirrored_init=True)).eval()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.translate(x, "a"), model.decode(model.encode(x, "a"), "a"))
    # values were copied, not tied: a step on B's private layers leaves A's alone
    w_a, w_b = model.gen["a"].private[-1][1].weight, model.gen["b"].private[-1][1].weight
    assert w_a is not w_b and torch.equal(w_a, w_b)
    with torch.no_grad():
        w_b.add_(1.0)
    assert not torch.equal(w_a, w_b)
    # the independent default draws different private layers
    torch.manual_seed(0)
    plain = UNIT(tiny_config()).eval()
    with torch.no_grad():
        assert not torch.equal(plain.translate(x, "a"), plain.decode(plain.encode(x, "a"), "a"))


def test_mirrored_init_copies_what_fits_when_the_channel_counts_differ():
    model = UNIT(tiny_config(channels_b=3, mirrored_init=True))
    first_a, first_b = model.enc["a"].private[0][1].weight, model.enc["b"].private[0][1].weight
    assert first_a.shape != first_b.shape  # the image-side conv cannot be copied
    assert torch.equal(model.enc["a"].private[1][1].weight, model.enc["b"].private[1][1].weight)


def test_set_reads_true_and_false_for_switches():
    from unit_nodes.cli import UserError, _parse_overrides

    assert _parse_overrides(["mirrored_init=true", "ema_decay=0.5"]) == {"mirrored_init": True, "ema_decay": 0.5}
    assert _parse_overrides(["mirrored_init=No"]) == {"mirrored_init": False}
    with pytest.raises(UserError, match="mirrored_init.*'maybe'"):
        _parse_overrides(["mirrored_init=maybe"])


def test_linear_policy_holds_the_rate_until_its_decay_start_then_falls_to_zero():
    a, b = shapes_and_inversions(8)
    trainer = Trainer(UNIT(tiny_config(lr=1e-3, lr_policy="linear", total_steps=4, lr_decay_start=0.5)), device="cpu")
    assert [trainer.lr_at(s) for s in range(5)] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 0.0])
    # the optimisers get the step's rate
    for want in (1e-3, 1e-3, 1e-3, 5e-4):
        trainer.train_step(a[:2], b[:2])
        assert [g["lr"] for opt in (trainer.opt_g, trainer.opt_d) for g in opt.param_groups] == pytest.approx(
            [want] * sum(len(opt.param_groups) for opt in (trainer.opt_g, trainer.opt_d)))
    # 0 (the default) is the plain linear decay from the first step
    plain = Trainer(UNIT(tiny_config(lr=1e-3, lr_policy="linear", total_steps=4)), device="cpu")
    assert [plain.lr_at(s) for s in range(5)] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4, 0.0])
    with pytest.raises(ConfigError, match="lr_decay_start"):
        tiny_config(lr_decay_start=1.0)


def test_r1_penalty_is_the_mean_squared_input_gradient_per_domain():
    """For D(x) = x^2 (summed over every logit, all scales) the gradient is 2x: the penalty is
    the per-image sum of 4x^2, averaged over images, summed over the two domains."""
    from unit_nodes.core.losses import r1_penalty

    x_a = torch.tensor([[1.0, 2.0], [0.0, -1.0]]).view(2, 1, 1, 2).requires_grad_(True)
    x_b = torch.tensor([[3.0, 0.0]]).view(1, 1, 1, 2).requires_grad_(True)
    penalty = r1_penalty([[x_a.pow(2), x_a.pow(2)], [x_b.pow(2)]], [x_a, x_b])
    # two scales of x^2 -> gradient 4x for a; one scale -> 2x for b
    expected = (16 * (1 + 4) + 16 * (0 + 1)) / 2 + 4 * 9
    assert penalty.item() == pytest.approx(expected)
    penalty.backward()  # the graph is kept: the penalty itself can be trained on
    assert torch.allclose(x_a.grad, 16 * x_a.detach())  # d/dx of mean over 2 images of 16 x^2


def test_r1_enters_d_loss_with_its_weight_and_only_d_steps_use_it():
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    dis_after = {}
    for gamma in (0.0, 4.0):
        torch.manual_seed(0)
        trainer = Trainer(UNIT(tiny_config(r1_gamma=gamma, dis_scales=2, augment="translation,cutout")), device="cpu")
        fwd = trainer.forward(x_a, x_b)
        gen_before = [p.detach().clone() for p in trainer.model.gen.parameters()]
        losses = trainer.d_step(x_a, x_b, fwd)
        assert all(torch.equal(a, b) for a, b in zip(gen_before, trainer.model.gen.parameters()))
        assert ("r1" in losses) == bool(gamma)
        gan = 10.0 * (losses["d_a"] + losses["d_b"])
        assert losses["d_total"] == pytest.approx(gan + 0.5 * gamma * losses.get("r1", 0.0), rel=1e-5)
        if gamma:
            assert losses["r1"] > 0
        dis_after[gamma] = [p.detach().clone() for p in trainer.model.dis.parameters()]
        assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_step(x_a, x_b).values())
    assert not all(torch.equal(a, b) for a, b in zip(dis_after[0.0], dis_after[4.0]))
    with pytest.raises(ValueError, match="r1_gamma.*distributed"):
        Trainer(UNIT(tiny_config(r1_gamma=1.0)), device="cpu", distributed=True)


def test_dis_lr_ratio_scales_only_d_and_follows_the_schedule(tmp_path):
    cfg = tiny_config(lr=2e-3, dis_lr_ratio=0.25, lr_policy="linear", total_steps=10, lr_decay_start=0.5)
    trainer = Trainer(UNIT(cfg), device="cpu")
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    for step, lr in ((1, 2e-3), (8, 2e-3 * 2 / 5)):
        while trainer.step < step:
            trainer.train_step(x, x)
        trainer._set_lr()
        assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(lr)
        assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(lr * 0.25)
    path = trainer.save_checkpoint(tmp_path / "ckpt.safetensors")
    resumed = Trainer.from_checkpoint(path, device="cpu")
    resumed.train_step(x, x)  # the ratio is part of the saved config, so a resume keeps it
    assert resumed.config.dis_lr_ratio == 0.25
    assert resumed.opt_d.param_groups[0]["lr"] == pytest.approx(resumed.opt_g.param_groups[0]["lr"] * 0.25)


def test_hinge_mode_trains():
    torch.manual_seed(0)
    trainer = Trainer(UNIT(tiny_config(gan_mode="hinge")), device="cpu")
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    losses = [trainer.train_step(x_a, x_b) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(v)) for step in losses for v in step.values())
    assert losses[0]["d_a"] >= 0 and losses[0]["d_a"] <= 4.0  # two hinge terms of one scale, near 1 at the start


def test_spectral_norm_bounds_every_d_layer_and_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(dis_spectral_norm=True, dis_shared_layers=1, dis_scales=2, r1_gamma=1.0)
    trainer = Trainer(UNIT(cfg), device="cpu")
    convs = [m for m in trainer.model.dis.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    for _ in range(3):  # R1's double backward goes through the normalisation too
        assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_step(x_a, x_b).values())
    # from initialisation on (init_weights re-converges the power iteration), every layer's
    # largest singular value is 1, though Adam moved the raw weights
    for m in convs:
        w = m.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)
        assert torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), ord=2) > 1.05
    # the shared tail is one parametrised module in both critics
    assert trainer.model.dis["a"].shared is trainer.model.dis["b"].shared
    path = trainer.save_checkpoint(tmp_path / "ckpt.safetensors")
    resumed = Trainer.from_checkpoint(path, device="cpu")
    trainer.model.eval(), resumed.model.eval()  # eval: no power-iteration update on the forward
    with torch.no_grad():
        for d in ("a", "b"):
            for s, r in zip(trainer.model.dis[d](x_a), resumed.model.dis[d](x_a)):
                assert torch.equal(s, r)
    # a model without the field (every file written before it) still loads: it defaults to off
    plain = tmp_path / "plain"
    save_model(UNIT(tiny_config()), plain)
    assert load_model(plain, discriminators=True).config.dis_spectral_norm is False


def test_lambda_gan_late_scale_weights_both_gan_terms_from_the_decay_start():
    """Before lr_decay_start * total_steps a run trains exactly as with the paper's one weight;
    from there on D's and E+G's GAN terms both carry lambda_gan * lambda_gan_late_scale."""
    a, b = shapes_and_inversions(8)
    x_a, x_b = a[:4], b[:4]
    schedule = dict(lr_policy="linear", total_steps=6, lr_decay_start=0.5)

    def run(steps, **fields):
        torch.manual_seed(0)
        trainer = Trainer(UNIT(tiny_config(**schedule, **fields)), device="cpu", seed=0)
        return trainer, [trainer.train_step(x_a, x_b) for _ in range(steps)]

    late, late_losses = run(6, lambda_gan_late_scale=0.25)
    plain, plain_losses = run(3)
    assert [late.gan_weight_at(s) for s in (0, 2, 3, 5)] == [10.0, 10.0, 2.5, 2.5]
    # the held half is the paper's training, bit for bit
    assert late_losses[:3] == plain_losses
    # D's loss carries the late weight; the E+G step's GAN term does too: the translator's
    # total is its non-GAN terms plus 2.5 x (g_gan_a + g_gan_b)
    for i, weight in ((2, 10.0), (3, 2.5), (5, 2.5)):
        step = late_losses[i]
        assert step["d_total"] == pytest.approx(weight * (step["d_a"] + step["d_b"]), rel=1e-5)
    from unit_nodes.core.losses import UNITObjective

    cfg = tiny_config()
    f = {k: torch.rand(2, 1, 16, 16) for k in ("x_aa", "x_bb", "x_ab", "x_ba", "x_aba", "x_bab")}
    f.update({k: torch.randn(2, 8, 4, 4) for k in ("mu_a", "mu_b", "mu_ab", "mu_ba")})
    d = [torch.randn(2, 1, 2, 2)]
    full, t = UNITObjective(cfg).translator(x_a[:2], x_b[:2], f, d, d)
    weak, _ = UNITObjective(cfg).translator(x_a[:2], x_b[:2], f, d, d, gan_weight=2.5)
    assert (full - weak).item() == pytest.approx(7.5 * (t["g_gan_a"] + t["g_gan_b"]).item(), rel=1e-5)
    # the late steps differ from a run that kept the one weight
    _, kept = run(4)
    assert kept[3]["d_total"] != pytest.approx(late_losses[3]["d_total"], rel=1e-3)
    with pytest.raises(ConfigError, match="lambda_gan_late_scale"):
        tiny_config(lambda_gan_late_scale=0.0)
    assert UNITConfig().lambda_gan_late_scale == 1.0


def test_gan_warmup_trains_without_d_then_resumes_exactly_across_the_switch(tmp_path):
    """gan_warmup_steps: the first steps train E+G on the VAE and cycle terms alone (no D call,
    no D update, lambda0 = 0); from the switch on, D trains and the GAN terms count. A run
    checkpointed inside the warm start resumes bit for bit past the switch."""
    a, b = shapes_and_inversions(24)
    cfg = tiny_config(gan_warmup_steps=3, ema_decay=0.9, augment="translation,cutout")
    torch.manual_seed(1)
    trainer = Trainer(UNIT(cfg), device="cpu", seed=3)
    d_before = {k: v.clone() for k, v in trainer.model.dis.state_dict().items()}
    x_a, x_b = a[:4], b[:4]
    warm = [trainer.train_step(x_a, x_b) for _ in range(3)]
    assert [trainer.gan_weight_at(s) for s in (0, 2, 3)] == [0.0, 0.0, 10.0]
    for losses in warm:
        assert "d_total" not in losses and losses["g_gan_a"] == losses["g_gan_b"] == 0.0
        non_gan = (0.1 * (losses["kl_a"] + losses["kl_b"]) + 100 * (losses["recon_a"] + losses["recon_b"])
                   + 0.1 * (losses["kl_a"] + losses["kl_b"] + losses["kl_ab"] + losses["kl_ba"])
                   + 100 * (losses["cycle_a"] + losses["cycle_b"]))
        assert losses["g_total"] == pytest.approx(non_gan, rel=1e-5)
    d_after = trainer.model.dis.state_dict()
    assert all(torch.equal(v, d_after[k]) for k, v in d_before.items())  # D untouched
    after = trainer.train_step(x_a, x_b)
    assert after["d_total"] > 0 and after["g_gan_a"] > 0
    assert any(not torch.equal(v, trainer.model.dis.state_dict()[k]) for k, v in d_before.items())

    assert_resume_is_bit_identical(cfg, tmp_path, stop_at=2)  # checkpointed inside the warm start
    with pytest.raises(ConfigError, match="gan_warmup_steps"):
        tiny_config(gan_warmup_steps=-1)
    assert UNITConfig().gan_warmup_steps == 0


def test_reconstruction_critic_adds_its_weighted_terms_and_is_off_by_default():
    """lambda_gan_recon: D_i's loss gains lambda * GAN(D_i(x_ii) is fake) and E+G's lambda *
    GAN(D_i(x_ii) passes as real), per domain; the translations' terms are unchanged."""
    from unit_nodes.core.losses import GANLoss, UNITObjective

    assert UNITConfig().lambda_gan_recon == 0.0
    r, x_a, x_b, f = random_translator_pass(seed=3)
    d_ba, d_ab, d_aa, d_bb = ([r(2, 1, 2, 2), r(2, 1, 1, 1)] for _ in range(4))
    real_a, real_b = [r(2, 1, 2, 2)], [r(2, 1, 2, 2)]
    gan = GANLoss("lsgan")
    base, base_terms = UNITObjective(tiny_config()).translator(x_a, x_b, f, d_ba, d_ab)
    assert not any(k.startswith("g_gan_rec") for k in base_terms)
    loss, terms = UNITObjective(tiny_config(lambda_gan_recon=3.0)).translator(x_a, x_b, f, d_ba, d_ab,
                                                                              d_on_recon=(d_aa, d_bb))
    torch.testing.assert_close(terms["g_gan_rec_a"], gan.generator_loss(d_aa))
    torch.testing.assert_close(loss - base, 3.0 * (gan.generator_loss(d_aa) + gan.generator_loss(d_bb)))
    d_base, _ = UNITObjective(tiny_config()).discriminator(real_a, d_ba, real_b, d_ab)
    d_loss, d_terms = UNITObjective(tiny_config(lambda_gan_recon=3.0)).discriminator(real_a, d_ba, real_b, d_ab,
                                                                                     None, d_aa, d_bb)
    torch.testing.assert_close(d_loss - d_base, 3.0 * (gan(d_aa, False) + gan(d_bb, False)))
    for call in (lambda o: o.translator(x_a, x_b, f, d_ba, d_ab), lambda o: o.discriminator(real_a, d_ba, real_b, d_ab)):
        with pytest.raises(ValueError, match="reconstructions"):
            call(UNITObjective(tiny_config(lambda_gan_recon=1.0)))
    with pytest.raises(ConfigError, match="lambda_gan_recon"):
        tiny_config(lambda_gan_recon=-1.0)


@pytest.mark.parametrize("dis_norm", ["none", "batch"])
def test_reconstruction_critic_trains_d_on_reconstructions_and_g_against_it(dis_norm):
    """With lambda_gan_recon D's step sees the reconstructions as fakes (D moves differently
    from the same state), E+G's step is pushed by D's verdict on them (G moves differently),
    D's weights do not move in E+G's step, and a warm start still skips D."""
    x_a, x_b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    dis_after, gen_after = {}, {}
    for weight in (0.0, 5.0):
        torch.manual_seed(0)
        trainer = Trainer(UNIT(tiny_config(lambda_gan_recon=weight, dis_norm=dis_norm, dis_scales=2)), device="cpu")
        fwd = trainer.forward(x_a, x_b)
        d_losses = trainer.d_step(x_a, x_b, fwd)
        assert ({"d_rec_a", "d_rec_b"} <= set(d_losses)) == bool(weight)
        dis_after[weight] = [p.detach().clone() for p in trainer.model.dis.parameters()]
        losses = trainer.g_step(x_a, x_b, fwd)
        assert all(torch.equal(a, b) for a, b in zip(dis_after[weight], trainer.model.dis.parameters()))
        assert ({"g_gan_rec_a", "g_gan_rec_b"} <= set(losses)) == bool(weight)
        gen_after[weight] = [p.detach().clone() for p in trainer.model.gen["a"].parameters()]
        assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_step(x_a, x_b).values())
    assert not all(torch.equal(a, b) for a, b in zip(dis_after[0.0], dis_after[5.0]))
    assert not all(torch.equal(a, b) for a, b in zip(gen_after[0.0], gen_after[5.0]))
    trainer = Trainer(UNIT(tiny_config(lambda_gan_recon=5.0, gan_warmup_steps=2)), device="cpu")
    losses = trainer.train_step(x_a, x_b)
    assert "d_a" not in losses and "g_gan_rec_a" not in losses


def test_restart_begins_a_second_phase_from_the_average_with_a_fresh_d_and_its_own_schedule(tmp_path):
    """restart_step: the last part of a run as a fine-tune of its own moving average (what took the
    bundled emoji pair's Google -> Twitter from 84.49 to 82.98): the translator takes the average's
    weights, D is re-initialised from the seed and the step alone, both Adam states are cleared,
    the average's warm-up and the rate's schedule start again (scaled by restart_lr_scale). A run
    checkpointed before or exactly at the restart resumes bit for bit through it."""
    schedule = dict(lr=1e-3, lr_policy="linear", total_steps=8, lr_decay_start=0.5)
    cfg = tiny_config(ema_decay=0.9, restart_step=4, restart_lr_scale=0.25, **schedule)
    trainer = Trainer(UNIT(cfg), device="cpu", seed=3)
    assert [trainer.lr_at(s) for s in range(9)] == pytest.approx(
        [1e-3, 1e-3, 1e-3, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4, 1.25e-4, 0.0])
    # without a second phase the schedule is the one the run always had
    plain = Trainer(UNIT(tiny_config(**schedule)), device="cpu")
    assert [plain.lr_at(s) for s in range(9)] == pytest.approx([1e-3] * 5 + [7.5e-4, 5e-4, 2.5e-4, 0.0])

    a, b = shapes_and_inversions(24)
    ds_a, ds_b = TensorImages(a), TensorImages(b)
    trainer.fit(ds_a, ds_b, 4, batch_size=4)
    ema = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    d_trained = {k: v.clone() for k, v in trainer.model.dis.state_dict().items()}
    assert trainer.opt_g.state and trainer.opt_d.state
    trainer.restart()
    for k, v in trainer.model.enc.state_dict().items():
        assert torch.equal(v, ema[f"enc.{k}"]), k
    for k, v in trainer.model.gen.state_dict().items():
        assert torch.equal(v, ema[f"gen.{k}"]), k
    d_fresh = trainer.model.dis.state_dict()
    assert all(not torch.equal(d_fresh[k], v) for k, v in d_trained.items() if k.endswith("weight"))
    assert not trainer.opt_g.state and not trainer.opt_d.state
    # the new D depends on the seed and the step, not on what the run had learnt
    other = Trainer(UNIT(cfg), device="cpu", seed=3)
    other.fit(TensorImages(b), TensorImages(a), 4, batch_size=2)
    other.restart()
    for k, v in other.model.dis.state_dict().items():
        assert torch.equal(v, d_fresh[k]), k
    # the average's warm-up starts again: its first update keeps a tenth of the old average
    before = [p.detach().clone() for p in trainer.ema.translator_parameters()]
    trainer.train_step(a[:4], b[:4])  # step 4 == restart_step: restarts (again) inside the step
    for e, old, new in zip(trainer.ema.translator_parameters(), before, trainer.model.translator_parameters()):
        assert torch.allclose(e, 0.1 * old + 0.9 * new, atol=1e-6)
    assert [g["lr"] for g in trainer.opt_g.param_groups] == pytest.approx([2.5e-4])

    resumable = cfg.replace(total_steps=6, restart_step=3)
    assert_resume_is_bit_identical(resumable, tmp_path, stop_at=3)  # checkpointed at the restart
    assert_resume_is_bit_identical(resumable, tmp_path, stop_at=2)  # and before it
    for bad in (dict(restart_step=8), dict(restart_step=-1), dict(restart_step=2, gan_warmup_steps=2),
                dict(restart_step=4, restart_lr_scale=0)):
        with pytest.raises(ConfigError, match="restart"):
            tiny_config(**{**schedule, **bad})
    assert UNITConfig().restart_step == 0


def test_restart_every_adds_phases_and_a_finished_run_resumed_with_one_more_trains_as_if_asked_from_the_start(tmp_path):
    """restart_every: more phases like the second one (each from the average, with a fresh D and
    its own schedule). A finished two-phase run, resumed with a longer total_steps and one more
    phase, ends bit for bit where a run asked for the three phases from the start ends: the
    bundled emoji pair's third phase was trained that way."""
    schedule = dict(lr=1e-3, lr_policy="linear", lr_decay_start=0.5, ema_decay=0.9)
    cfg = tiny_config(total_steps=12, restart_step=4, restart_every=4, restart_lr_scale=0.5, **schedule)
    assert cfg.restart_steps() == [4, 8] and [s for s in range(14) if cfg.begins_phase(s)] == [4, 8]
    trainer = Trainer(UNIT(cfg), device="cpu", seed=3)
    assert [trainer.lr_at(s) for s in range(12)] == pytest.approx(
        [1e-3, 1e-3, 1e-3, 5e-4] + [5e-4, 5e-4, 5e-4, 2.5e-4] * 2)
    # a last phase shorter than the others follows the policy over its own length
    short = tiny_config(total_steps=10, restart_step=4, restart_every=4, restart_lr_scale=0.5, **schedule)
    assert short.restart_steps() == [4, 8] and short.phase(9) == short.phase(12) == (8, 10, 0.5)
    assert [Trainer(UNIT(short), device="cpu").lr_at(s) for s in (8, 9, 10, 11)] == pytest.approx([5e-4, 5e-4, 0.0, 0.0])
    restarts = []
    trainer.restart = lambda: restarts.append(trainer.step)  # which steps begin a phase, as the loop sees them
    a, b = shapes_and_inversions(24)
    trainer.fit(TensorImages(a), TensorImages(b), 12, batch_size=4)
    assert restarts == [4, 8]

    two_phases = cfg.replace(total_steps=8, restart_every=0)
    three_phases = cfg
    ds_a, ds_b = TensorImages(a), TensorImages(b)
    torch.manual_seed(1)
    straight = Trainer(UNIT(three_phases), device="cpu", seed=3)
    straight.fit(ds_a, ds_b, 12, batch_size=4)
    torch.manual_seed(1)
    finished = Trainer(UNIT(two_phases), device="cpu", seed=3)
    finished.fit(ds_a, ds_b, 8, batch_size=4)
    ckpt = finished.save_checkpoint(tmp_path / "finished.safetensors")
    torch.manual_seed(999)
    resumed = Trainer.from_checkpoint(ckpt, device="cpu", seed=3)
    assert resumed.change_schedule(total_steps=12, restart_every=4) == {"total_steps": (8, 12), "restart_every": (0, 4)}
    resumed.fit(ds_a, ds_b, 12, batch_size=4)
    for part in ("model", "ema"):
        s, r = getattr(straight, part).state_dict(), getattr(resumed, part).state_dict()
        for k in s:
            assert torch.equal(s[k], r[k]), (part, k)
    # a phase that has begun cannot be moved or taken back; one that has not can
    late = Trainer.from_checkpoint(ckpt, device="cpu", seed=3)
    for moved in (dict(restart_step=2), dict(restart_step=6), dict(restart_step=0),
                  dict(total_steps=14, restart_every=3)):  # the last would have begun one at step 7
        with pytest.raises(ValueError, match="have begun at steps: \\[4\\]"):
            late.change_schedule(**moved)
    assert late.config == two_phases
    late.change_schedule(total_steps=14, restart_every=4, restart_lr_scale=0.25)
    assert late.config.restart_steps() == [4, 8, 12] and late.lr_at(8) == pytest.approx(2.5e-4)
    for bad in (dict(restart_every=-1), dict(restart_every=2.5), dict(restart_step=0, restart_every=4)):
        with pytest.raises(ConfigError, match="restart_every"):
            tiny_config(total_steps=12, **{"restart_step": 4, **bad})
    assert UNITConfig().restart_every == 0


@pytest.mark.parametrize("trace, dis_scales, collapsed_at", [
    # digits32 with the frame scale, seed 0 of session 31: flat gray translations (an independent
    # classifier read 29.8 % / 23.1 % of them); its reconstruction and cycle errors stayed level
    # with the healthy seeds', so BreakdownWatch stays silent on it
    ("losses_digits32_fs_collapsed.jsonl", 1, range(1000, 1101)),
    # the same recipe, seed 2: the shipped mnist-usps pair (97.81 % / 97.07 %)
    ("losses_digits32_fs_healthy.jsonl", 1, None),
    # emoji64 with norm=none (session 30): every image decoded white from step 500 on, FID 364 / 313
    ("losses_emoji64_norm_none_collapsed.jsonl", 2, range(1000, 1101)),
    # emoji64 with lambda_edges=1000, seed 0 (session 36): washed-out, colour-inverted translations
    # (FID 139 / 127) while its reconstructions stayed at 0.05-0.10; D's scales sat at 0.46-0.64
    ("losses_emoji64_edges1000_s0_broken_translations.jsonl", 2, range(1100, 1201)),
    # the same recipe, seed 1: healthy (85.0 / 74.9)
    ("losses_emoji64_edges1000_s1_healthy.jsonl", 2, None),
    # the highest healthy two-scale trace we logged (lambda_gan_recon=10: weak, 96 / 81, but sound)
    ("losses_emoji64_gan_recon10_healthy.jsonl", 2, None),
    # the emoji traces of the breakdown watch: a swapped-colour breakdown is not a collapse
    ("losses_emoji64_b2_bf16_breakdown.jsonl", 2, None),
    ("losses_emoji64_ns3_b2_bf16_healthy.jsonl", 2, None),
])
def test_collapse_watch_flags_collapsed_runs_once_and_no_healthy_or_merely_broken_one(trace, dis_scales, collapsed_at):
    from unit_nodes.core.progress import BreakdownWatch, CollapseWatch

    rows = _logged_losses(trace)
    watch = CollapseWatch(dis_scales)
    alarms = [(row["step"], alarm) for row in rows if (alarm := watch.update(row["step"], row))]
    if collapsed_at is None:
        assert alarms == [] and watch.collapsed_at is None
    else:
        [(step, alarm)] = alarms
        assert step in collapsed_at and watch.collapsed_at == step
        assert f"collapsed at step {step}" in alarm and "another seed" in alarm
        # the reconstruction watch cannot see it
        breakdown = BreakdownWatch()
        assert not [row for row in rows if breakdown.update(row["step"], row)]
    # the per-scale reading: the same trace read as a D of twice the scales stays quiet
    doubled = CollapseWatch(2 * dis_scales)
    assert not [row for row in rows if doubled.update(row["step"], row)]
    # one D scale is held to the higher bar its healthy runs need (digits reach 0.59): the broken
    # emoji trace read as single-scale per-scale values would pass it
    if "broken_translations" in trace:
        assert CollapseWatch(1).threshold == 0.7 and CollapseWatch(dis_scales).threshold == 0.55
        single = CollapseWatch(1)
        assert not [row for row in rows if single.update(
            row["step"], {k: v / dis_scales for k, v in row.items() if k.startswith("g_gan")})]
    # other GAN losses have other scales: the watch is for LSGAN only
    hinge = CollapseWatch(dis_scales, gan_mode="hinge")
    assert not [row for row in rows if hinge.update(row["step"], row)]
    assert CollapseWatch.for_config(tiny_config(dis_scales=1)).dis_scales == 1


def test_collapse_watch_waits_for_a_fresh_discriminator_after_a_resume_or_a_restart():
    """A resumed run (the watch has no history) and each later phase (D re-initialised) start the
    warm-up again: the bundled emoji run resumed for a third phase was flagged at 0.85 one step
    after its fresh D began, a false alarm; a run that stays collapsed is still flagged."""
    from unit_nodes.core.progress import CollapseWatch

    fresh_d = {"g_gan_a": 1.70, "g_gan_b": 0.52}  # step 22001 of that run, two D scales
    assert CollapseWatch(2).update(22001, fresh_d) is not None  # what the watch said without a start
    resumed = CollapseWatch(2, start_step=22000)
    assert all(resumed.update(s, fresh_d) is None for s in range(22001, 22999))
    assert "collapsed at step 23000" in resumed.update(23000, fresh_d)  # a D that keeps winning is a collapse

    collapsed = _logged_losses("losses_emoji64_norm_none_collapsed.jsonl")
    late = CollapseWatch(2, start_step=30000)
    alarms = [row["step"] + 30000 for row in collapsed if late.update(row["step"] + 30000, row)]
    assert len(alarms) == 1 and 31000 <= alarms[0] <= 31100

    healthy = _logged_losses("losses_emoji64_ns3_b2_bf16_healthy.jsonl")
    watch = CollapseWatch(2)
    assert not [row for row in healthy if watch.update(row["step"], row)]
    start = healthy[-1]["step"] + 1
    assert all(watch.update(s, fresh_d, phase_start=start) is None for s in range(start + 1, start + 1000))
    assert "collapsed at step %d" % (start + 1000) in watch.update(start + 1000, fresh_d, phase_start=start)
