"""The speed paths compute the same thing as the plain ones: channels_last instance norm,
channels_last models in inference and training."""

from __future__ import annotations

import copy

import torch
from torch import nn

from unit_nodes.core import inference as inf
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT, InstanceNorm2d
from unit_nodes.core.trainer import Trainer


def test_instance_norm_channels_last_matches_stock_forward_and_backward():
    torch.manual_seed(0)
    ref, ours = nn.InstanceNorm2d(6, affine=True), InstanceNorm2d(6, affine=True)
    with torch.no_grad():
        ref.weight.normal_(), ref.bias.normal_()
    ours.load_state_dict(ref.state_dict())
    x, proj = torch.randn(3, 6, 9, 7) * 3 + 1, torch.randn(3, 6, 9, 7)
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.contiguous(memory_format=fmt).requires_grad_(True)
        y_ref, y = ref(xi), ours(xi)
        assert torch.allclose(y, y_ref, atol=1e-5)
        g_ref = torch.autograd.grad((y_ref * proj).sum(), [xi, ref.weight, ref.bias])
        g = torch.autograd.grad((y * proj).sum(), [xi, ours.weight, ours.bias])
        for a, b in zip(g, g_ref):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert ours(x.contiguous(memory_format=torch.channels_last)).is_contiguous(memory_format=torch.channels_last)


def test_channels_last_model_translates_the_same():
    torch.manual_seed(0)
    for name in ("digits32", "emoji64"):
        m = UNIT(preset(name, base_channels=8), discriminators=False).eval()
        x = torch.rand(2, m.config.channels_a, 37, 29) * 2 - 1
        plain = inf.translate(m, x, "a", tile=None)
        fast = inf.translate(inf.optimize_for_inference(copy.deepcopy(m)), x, "a", tile=None)
        assert torch.allclose(plain, fast, atol=1e-4)


def test_channels_last_training_step_matches_plain():
    torch.manual_seed(0)
    cfg = preset("emoji64", image_size=32, base_channels=8, dis_channels=8, dis_layers=2)
    model = UNIT(cfg)
    x_a, x_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    plain = Trainer(copy.deepcopy(model), device="cpu", seed=1).train_step(x_a, x_b)
    fast = Trainer(copy.deepcopy(model), device="cpu", seed=1, channels_last=True).train_step(x_a, x_b)
    for k in plain:
        assert abs(plain[k] - fast[k]) <= 1e-3 * max(1.0, abs(plain[k])), k
