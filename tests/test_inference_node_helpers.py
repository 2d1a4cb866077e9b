"""Core helpers the ComfyUI nodes call: interpolation paths and cycle error maps."""
import pytest
import torch

from unit_nodes.core.config import preset
from unit_nodes.core.inference import SharedLatent, abs_error_map, encode, interpolate, interpolation_path
from unit_nodes.core.networks import UNIT


def tiny_model():
    torch.manual_seed(0)
    cfg = preset("digits32", image_size=16, base_channels=8, n_res_blocks=1, dis_layers=2)
    return UNIT(cfg, discriminators=False).eval()


def test_interpolation_path_runs_from_first_to_last_latent():
    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.rand(1, 1, 20, 12, generator=g) * 2 - 1, torch.rand(1, 1, 20, 12, generator=g) * 2 - 1
    l0, l1 = encode(model, x0, "a"), encode(model, x1, "b")

    path = interpolation_path(l0, l1, 5)

    assert path.code.shape == (5, *l0.code.shape[1:])
    assert path.image_size == (20, 12)
    torch.testing.assert_close(path.code[0:1], l0.code)
    torch.testing.assert_close(path.code[4:5], l1.code)
    torch.testing.assert_close(path.code[2:3], interpolate(l0, l1, 0.5).code)
    assert path.source == "mixed"


def test_interpolation_path_needs_two_steps():
    code = torch.zeros(1, 4, 2, 2)
    latent = SharedLatent(code, "a", (8, 8))
    with pytest.raises(ValueError, match="steps >= 2"):
        interpolation_path(latent, latent, 1)


def test_abs_error_map_is_half_the_distance_in_model_range_and_converts_channels():
    rgb = torch.full((2, 3, 4, 5), 0.5)
    rgb[:, :, 0, 0] = -1.0
    gray = torch.full((2, 1, 4, 5), -0.5)  # luminance of (0.5, 0.5, 0.5) is 0.5 -> error 0.5

    err, mean = abs_error_map(rgb, gray)

    assert err.shape == (2, 1, 4, 5)
    assert err[0, 0, 1, 1].item() == pytest.approx(0.5)
    assert err[0, 0, 0, 0].item() == pytest.approx(0.25)
    assert mean == pytest.approx(float(err.mean()))
    assert 0.0 <= err.min().item() and err.max().item() <= 1.0


def test_abs_error_map_drops_alpha_and_refuses_other_sizes():
    rgba = torch.zeros(1, 4, 3, 3)
    err, mean = abs_error_map(rgba, torch.zeros(1, 3, 3, 3))
    assert mean == 0.0 and err.shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match="cannot compare"):
        abs_error_map(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 3, 3))
