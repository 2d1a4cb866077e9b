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


def test_channels_last_is_chosen_for_cpu_training_only():
    from unit_nodes.core.trainer import channels_last_pays

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert channels_last_pays(preset("emoji64"), cpu)
    assert not channels_last_pays(preset("digits32"), cpu)  # 32 px, batch norm
    # on an H200 the emoji64 step ran 6.7x slower in channels_last at batch 64
    assert not channels_last_pays(preset("emoji64"), cuda)
    assert Trainer(UNIT(preset("emoji64", base_channels=8, dis_channels=8)), device="cpu").channels_last


def test_cpu_precision_choices():
    from unit_nodes.core.device import autocast_dtype, cpu_has_fast_bf16

    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    # 'auto' pays for bf16 only where the CPU has bf16 arithmetic (AMX, AVX512-BF16), and is exact fp32 elsewhere
    assert autocast_dtype(cpu, "auto") is (torch.bfloat16 if cpu_has_fast_bf16() else None)
    for bad, words in (("fp16", "GPU setting"), ("half", "precision must be")):
        try:
            autocast_dtype(cpu, bad)
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted on CPU")


def test_auto_precision_follows_the_cpus_bf16_arithmetic(monkeypatch):
    """'auto' trains in bf16 on a CPU with AMX or with AVX512-BF16 (both measured faster at a level FID) and
    in fp32 on one with neither; a probe that fails or that this torch lacks counts as absent."""
    from unit_nodes.core import device as dev

    def probes(amx, avx512_bf16):
        for name, value in (("_is_amx_tile_supported", amx), ("_is_avx512_bf16_supported", avx512_bf16)):
            if value is None:
                monkeypatch.delattr(torch.cpu, name, raising=False)
            elif value == "error":
                def fail():
                    raise RuntimeError("cpuinfo could not read the CPU")
                monkeypatch.setattr(torch.cpu, name, fail, raising=False)
            else:
                monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)

    cpu = torch.device("cpu")
    for amx, avx512_bf16, expected in ((True, False, torch.bfloat16), (False, True, torch.bfloat16),
                                       (False, False, None), (None, None, None), ("error", True, torch.bfloat16),
                                       ("error", "error", None), (None, True, torch.bfloat16)):
        probes(amx, avx512_bf16)
        assert dev.autocast_dtype(cpu, "auto") is expected, (amx, avx512_bf16)
        assert dev.autocast_dtype(cpu, "fp32") is None  # an explicit choice is never overridden


def test_bf16_training_step_on_cpu_tracks_fp32_and_keeps_fp32_weights():
    torch.manual_seed(0)
    cfg = preset("emoji64", image_size=32, base_channels=8, dis_channels=8, dis_layers=2)
    model = UNIT(cfg)
    x_a, x_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    exact = Trainer(copy.deepcopy(model), device="cpu", seed=1)
    fast = Trainer(copy.deepcopy(model), device="cpu", seed=1, precision="bf16")
    assert fast.amp_dtype is torch.bfloat16 and exact.amp_dtype is None
    for _ in range(2):
        ref, got = exact.train_step(x_a, x_b), fast.train_step(x_a, x_b)
    for k in ref:
        # bf16 keeps 8 bits of mantissa: the losses agree to a few per cent, not to 1e-3
        assert abs(ref[k] - got[k]) <= 0.05 * max(1.0, abs(ref[k])), (k, ref[k], got[k])
    assert all(p.dtype == torch.float32 for p in fast.model.parameters())
    assert all(p.dtype == torch.float32 for p in fast.export_model().parameters())
    # and it did learn: the translator's weights moved
    moved = [not torch.equal(p, q) for p, q in zip(fast.model.translator_parameters(), model.translator_parameters())]
    assert any(moved)


def test_reflection_pad_keeps_bf16_under_cpu_autocast():
    from unit_nodes.core.networks import ReflectionPad2d

    x = torch.randn(2, 3, 6, 5).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock, ours = nn.ReflectionPad2d(2)(x), ReflectionPad2d(2)(x)
    assert stock.dtype == torch.float32  # the cast this module avoids
    assert ours.dtype == torch.bfloat16 and torch.equal(ours.float(), stock)
    assert torch.equal(ReflectionPad2d(2)(x.float()), nn.ReflectionPad2d(2)(x.float()))  # no autocast: stock
