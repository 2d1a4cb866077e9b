"""Ways to compute the translator's instance norm on channels_last activations, timed forward + backward.

Usage: python bench/instance_norm_variants.py [THREADS] [PRECISION]   (defaults 2 bf16; PRECISION bf16 or fp32)
The shapes and counts are those of one emoji64 training step (base_channels 32, batch 4: the
per-image instance norms are about a fifth of a bf16 step in a profile). Each variant first has to
agree with the stock ``F.instance_norm`` in fp32 (output and input/weight/bias gradients), then is
timed on the step's shapes (5 warm-up + 20 timed calls each); prints ms per call and ms per
training step (summed over the step's norm calls), and the load average. Variants:

- ``per_image``: the model's ``networks.InstanceNorm2d`` (each image batch-normalised in its layout);
- ``stock``: ``F.instance_norm`` (views the input as [1, B*C, H, W]: copies a channels_last tensor);
- ``group``: ``F.group_norm`` with one group per channel (the same statistics);
- ``formula``: ``var_mean`` over H, W and the normalisation written out.
"""
import os
import sys

import torch
import torch.nn.functional as F

from unit_nodes.core.networks import InstanceNorm2d
from unit_nodes.tools.bench import time_calls

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
precision = sys.argv[2] if len(sys.argv) > 2 else "bf16"
if precision not in ("bf16", "fp32"):
    raise SystemExit(f"PRECISION must be bf16 or fp32, got {precision!r}")
torch.set_num_threads(threads)
EPS = 1e-5
# (shape, calls per emoji64 step at base_channels 32, batch 4): counted with forward hooks on a Trainer's step
STEP_SHAPES = [((4, 32, 64, 64), 6), ((4, 64, 32, 32), 28), ((8, 64, 32, 32), 16), ((8, 32, 64, 64), 2)]


def per_image(w, b):
    norm = InstanceNorm2d(w.shape[0], affine=True, eps=EPS)
    norm.weight, norm.bias = torch.nn.Parameter(w), torch.nn.Parameter(b)
    return norm, (norm.weight, norm.bias)


def stock(w, b):
    return (lambda x: F.instance_norm(x, None, None, w, b, True, 0.0, EPS)), (w, b)


def group(w, b):
    return (lambda x: F.group_norm(x, x.shape[1], w, b, EPS)), (w, b)


def formula(w, b):
    def norm(x):
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
        return (x - mean) * (torch.rsqrt(var + EPS) * w.view(1, -1, 1, 1)) + b.view(1, -1, 1, 1)
    return norm, (w, b)


VARIANTS = dict(per_image=per_image, stock=stock, group=group, formula=formula)


def grads(make, x0, w0, b0, g):
    x = x0.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    norm, (pw, pb) = make(w0.clone().requires_grad_(), b0.clone().requires_grad_())
    y = norm(x)
    y.backward(g)
    return y.detach().float(), x.grad.float(), pw.grad.float(), pb.grad.float()


gen = torch.Generator().manual_seed(0)
# agreement in fp32 on a small channels_last tensor
x0 = torch.randn(3, 8, 16, 16, generator=gen).contiguous(memory_format=torch.channels_last)
w0, b0 = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
g0 = torch.randn(3, 8, 16, 16, generator=gen)
ref = grads(stock, x0, w0, b0, g0)
for name, make in VARIANTS.items():
    err = max((a - r).abs().max().item() for a, r in zip(grads(make, x0, w0, b0, g0), ref))
    if err > 1e-4:
        raise SystemExit(f"{name} is not an instance norm: max difference {err:.2e} from F.instance_norm")

dtype = torch.bfloat16 if precision == "bf16" else torch.float32
per_step = {name: 0.0 for name in VARIANTS}
print(f"threads {threads}, {precision}, channels_last; ms per forward+backward call")
for shape, calls in STEP_SHAPES:
    x0 = torch.randn(shape, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    g = torch.randn(shape, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    w0, b0 = torch.randn(shape[1], generator=gen), torch.randn(shape[1], generator=gen)
    row = []
    for name, fn in VARIANTS.items():
        x = x0.clone(memory_format=torch.preserve_format).requires_grad_()
        norm, _ = fn(w0.clone().requires_grad_(), b0.clone().requires_grad_())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            times, _ = time_calls(lambda: norm(x).backward(g), torch.device("cpu"), iters=20, warmup=5)
        ms = sum(times) / len(times) * 1e3
        per_step[name] += ms * calls
        row.append(f"{name} {ms:6.2f}")
    print(f"{str(list(shape)):18s} x{calls:2d}: " + "  ".join(row))
print("per training step: " + "  ".join(f"{name} {ms:.1f} ms" for name, ms in per_step.items())
      + f"   (load average {os.getloadavg()[0]:.2f})")
