"""Tiled inference against whole-image inference on real (randomly initialised) UNIT models."""

from __future__ import annotations

import pytest
import torch

from unit_nodes.core import inference as inf
from unit_nodes.core import tiling
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT


def _model(name: str, **kw) -> UNIT:
    torch.manual_seed(0)
    return UNIT(preset(name, base_channels=8, **kw), discriminators=False).eval()


def _smooth(channels: int, h: int, w: int, noise: float = 0.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    x = torch.stack([torch.sin(3 * xx + 2 * yy), torch.cos(2 * xx * yy), xx * yy][:channels])[None]
    g = torch.Generator().manual_seed(1)
    return (x + noise * torch.randn(x.shape, generator=g)).clamp(-1, 1)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_windows_partition_unity_and_starts_cover():
    a = tiling.ramp_window(64, 0, 16)
    b = tiling.ramp_window(64, 16, 0)
    assert torch.allclose(a[-16:] + b[:16], torch.ones(16), atol=1e-6)
    assert (a > 0).all() and (b > 0).all()
    for length, tile, ov in ((200, 64, 16), (64, 64, 16), (68, 64, 16), (1000, 256, 64)):
        starts = tiling.tile_starts(length, tile, ov, align=4)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(s % 4 == 0 for s in starts)
        assert all(b - a <= tile - ov for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("name,norm,size", [
    ("digits32", "batch", (203, 171)),  # gray, odd sizes
    ("digits32", "none", (97, 130)),
    ("emoji64", "batch", (150, 77)),  # colour
])
def test_tiled_equals_whole_for_per_pixel_norms(name, norm, size):
    m = _model(name, norm=norm)
    x = _smooth(m.config.channels_a, *size, noise=0.1)
    whole = inf.translate(m, x, "a", tile=None)
    tiled = inf.translate(m, x, "a", tile=64, overlap=16)
    assert tiled.shape == whole.shape == (1, m.config.channels_b, *size)
    # the halo covers the receptive field, so only float rounding differs
    assert (tiled - whole).abs().max() < 1e-4


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_the_halo_covers_each_upsampling_mode(upsample):
    # bilinear reads a neighbour of the low-resolution map: its receptive radius must count it
    m = _model("emoji64", norm="batch", n_downsample=2, upsample=upsample)
    x = _smooth(3, 150, 133, noise=0.1)
    whole = inf.translate(m, x, "a", tile=None)
    tiled = inf.translate(m, x, "a", tile=64, overlap=16)
    assert (tiled - whole).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["emoji64", "image256"])
def test_tiled_instance_norm_global_stats_match_whole(name):
    m = _model(name)  # instance norm
    x = _smooth(3, 300, 260, noise=0.1)  # larger than a tile plus its halo
    whole = inf.translate(m, x, "a", tile=None)
    glob = tiling.translate_tiled(m, x, "a", "b", tile=64, norm_stats="global")
    assert (glob - whole).abs().max() < 1e-4  # statistics of the whole image: same result
    per_tile = tiling.translate_tiled(m, x, "a", "b", tile=64, norm_stats="tile")
    # per-tile statistics really differ (random weights amplify it); looser, stated bound
    assert 1e-3 < (per_tile - whole).abs().mean() < 1.0


def test_rgb_input_to_gray_model_and_batch():
    m = _model("digits32", norm="batch")
    x = torch.cat([_smooth(3, 90, 70), _smooth(3, 90, 70).flip(-1)])
    whole = inf.translate(m, x, "a", tile=None)
    tiled = inf.translate(m, x, "a", tile=32, overlap=8)
    assert tiled.shape == (2, 1, 90, 70)
    assert (tiled - whole).abs().max() < 1e-4


def _border_gradient_ratio(out: torch.Tensor, starts: list[int]) -> float:
    """Mean |horizontal step| on the columns where a tile core begins, over the median column."""
    g = (out[..., 1:] - out[..., :-1]).abs().mean(dim=(0, 1, 2))
    at_borders = torch.stack([g[s - 1] for s in starts[1:]]).mean()
    return float(at_borders / g.median())


def test_no_seams_with_blending_but_seams_without():
    # instance norm with per-tile statistics, the worst case for seams (the /4 architecture
    # this test was calibrated on)
    m = _model("emoji64", n_downsample=2, upsample="nearest")
    x = _smooth(3, 64, 256)
    tile, ov = 64, 32
    starts = tiling.tile_starts(256, tile, ov, align=4)
    blended = tiling.translate_tiled(m, x, "a", "b", tile=tile, overlap=ov, norm_stats="tile")
    ratio = _border_gradient_ratio(blended, starts)
    hard_starts = tiling.tile_starts(256, tile, 0, align=4)
    hard = tiling.translate_tiled(m, x, "a", "b", tile=tile, overlap=0, norm_stats="tile")
    hard_ratio = _border_gradient_ratio(hard, hard_starts)
    assert hard_ratio > 3.0, hard_ratio  # the detector sees a seam where there is one
    assert ratio < 2.0, ratio


def test_auto_tile_decision_and_auto_mode(monkeypatch):
    cfg = preset("image256")
    assert tiling.auto_tile(cfg, 256, 256, memory_budget=1 << 30) is None
    side = tiling.auto_tile(cfg, 4096, 4096, memory_budget=1 << 30)
    assert side is not None and side % cfg.stride == 0 and side >= 64
    assert tiling.auto_tile(cfg, 512, 512, max_pixels=256 * 256, memory_budget=1 << 40) == 256
    m = _model("digits32", norm="batch")
    x = _smooth(1, 120, 100)
    whole = inf.translate(m, x, "a", tile=None)
    monkeypatch.setenv("UNIT_TILE_BUDGET_MB", "0.5")  # forces tiles for this small image
    assert inf.resolve_tile(m, "auto", 120, 100, 1) is not None
    auto = inf.translate(m, x, "a")
    assert (auto - whole).abs().max() < 1e-4
    lat = inf.encode(m, x, "a")
    assert torch.allclose(lat.code, inf.encode(m, x, "a", tile=None).code, atol=1e-4)
    assert (inf.decode(m, lat, "b") - whole).abs().max() < 1e-4


def test_sampled_tiles_are_seeded_and_bad_arguments_are_named():
    m = _model("digits32", norm="batch")
    x = _smooth(1, 80, 80)
    s1 = inf.translate(m, x, "a", sample=True, seed=3, tile=32)
    s2 = inf.translate(m, x, "a", sample=True, seed=3, tile=32)
    assert torch.equal(s1, s2)
    assert not torch.allclose(s1, inf.translate(m, x, "a", tile=32))
    with pytest.raises(ValueError, match="tile"):
        inf.translate(m, x, "a", tile=-5)
    with pytest.raises(ValueError, match="overlap"):
        tiling.translate_tiled(m, x, "a", "b", tile=32, overlap=32)
    with pytest.raises(ValueError, match="norm_stats"):
        tiling.translate_tiled(m, x, "a", "b", tile=32, norm_stats="batch")


def test_progress_is_reported_per_tile_and_can_cancel():
    m = _model("digits32", norm="batch")
    x = _smooth(1, 100, 100)
    seen = []
    inf.translate(m, x, "a", tile=32, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] == len(seen)
    lat = inf.encode(m, x, "a", tile=None)
    seen.clear()
    inf.decode(m, lat, "b", tile=32, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] > 1

    class Cancel(Exception):
        pass

    def cancel(done, total):
        raise Cancel()

    with pytest.raises(Cancel):
        inf.translate(m, x, "a", tile=32, progress=cancel)
