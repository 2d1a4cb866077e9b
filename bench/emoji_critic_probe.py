"""Can a translator's discriminator tell the two emoji styles apart at all?

    python bench/emoji_critic_probe.py [--steps 1500] [--frame-scale 1.0592] [--fields dis_layers=4,dis_channels=64]
    python bench/emoji_critic_probe.py --model RUN [--domain-a emoji-google --domain-b emoji-twitter]

Trains one emoji64 discriminator (the preset's multi-scale PatchGAN, plus ``--fields``) as a
plain classifier on real images only: Twitter training emoji against Google training emoji resized
by the frame scale. That is D_b's task against a translator that changes no style (the input only
resized), with D's own augmentation policy (``--augment``, default the preset's) on both sides and
the cross-entropy of every patch logit at every scale. Then prints, on the fixed test split (474
emoji drawn in both styles), how often the mean logit of an image, per scale and over all scales,
puts it on the right side, and the mean logit of each style.

Near 50 %, this critic cannot see the styles' difference, and no translator needs to redraw to fool
it; near 100 %, it can, so a critic that sits near chance in training is failing to learn, not
blind. With ``--model``, the other side is the model's Google -> Twitter translations instead (of
the training emoji to train, of the test emoji to test): a fresh critic's accuracy on them beside
the resized input's says whether the translations came any closer to Twitter's style for a critic
that the translator never trained against. One thread: the default 1500 steps took 2.3 minutes on a 2-vCPU Intel
Xeon with AMX beside another one-thread job (session 48).
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

from unit_nodes.cli import UserError, _parse_overrides
from unit_nodes.core import data
from unit_nodes.core.augment import diff_augment, parse_policy
from unit_nodes.core.config import FRAME_SCALE_BOUNDS, ConfigError, frame_scale_allowed, preset
from unit_nodes.core.networks import Discriminator, reframe
from unit_nodes.tools import evaluate as ev


def train_probe(real: torch.Tensor, other: torch.Tensor, fields: dict, steps: int, batch: int, augment: str,
                seed: int = 0, lr: float = 2e-4) -> Discriminator:
    """A discriminator of the emoji64 preset (with ``fields``) trained to score ``real`` above ``other``."""
    torch.manual_seed(seed)
    cfg = preset("emoji64", **fields)
    dis = Discriminator(3, cfg, None)
    opt = torch.optim.Adam(dis.parameters(), lr=lr, betas=(0.5, 0.999))
    policy = parse_policy(augment)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick_r = torch.randint(len(real), (batch,), generator=gen)
        pick_o = torch.randint(len(other), (batch,), generator=gen)
        x = diff_augment(torch.cat([real[pick_r], other[pick_o]]), policy, gen)
        loss = 0.0
        for out in dis(x):
            target = torch.cat([torch.ones(batch), torch.zeros(batch)]).view(-1, 1, 1, 1).expand_as(out)
            loss = loss + F.binary_cross_entropy_with_logits(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return dis.eval()


@torch.no_grad()
def image_logits(dis: Discriminator, x: torch.Tensor) -> torch.Tensor:
    """[scales, N]: each image's mean patch logit at each scale."""
    return torch.stack([out.mean(dim=(1, 2, 3)) for out in dis(x)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=16, help="images of each style per step")
    p.add_argument("--frame-scale", type=float, default=1.0592,
                   help="how much larger Twitter draws than Google (the bundled pair's 1.0592); Google is resized by it "
                        "(not with --model: its translations are in its own frame)")
    p.add_argument("--fields", default="", help="comma-separated FIELD=VALUE on top of emoji64's discriminator")
    p.add_argument("--augment", default=None, help="D's augmentation policy (default: the preset's; '' for none)")
    p.add_argument("--model", default=None,
                   help="model folder, .safetensors file or bundled pair: its Google -> Twitter translations are the other side")
    ev.add_pair_data_arguments(p)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.steps < 1 or args.batch < 1:
        p.error(f"--steps and --batch must be at least 1, not {args.steps} and {args.batch}")
    if not frame_scale_allowed(args.frame_scale):
        p.error(f"--frame-scale {args.frame_scale} is outside {FRAME_SCALE_BOUNDS}")
    try:
        fields = _parse_overrides([pair for pair in args.fields.split(",") if pair])
        augment = preset("emoji64", **fields).augment if args.augment is None else args.augment
        parse_policy(augment)
    except (ConfigError, UserError, ValueError) as exc:
        p.error(str(exc))
    torch.set_num_threads(args.threads)

    if args.model is None:
        other = f"the same emoji drawn by Google, resized x{args.frame_scale}"

        def google_side(images: torch.Tensor) -> torch.Tensor:
            return reframe(images, args.frame_scale, (1.0, 1.0, 1.0))
    else:
        model, _ = ev.load_pair(args.model, domain_names=(args.domain_a, args.domain_b))
        if model.config.image_size != 64:
            p.error(f"--model {args.model} was trained at {model.config.image_size} px; the probe's emoji are 64 px")
        source, target = ev.domain_of(model, "emoji-google"), ev.domain_of(model, "emoji-twitter")
        other = f"{args.model}'s translations of the same emoji drawn by Google"

        def google_side(images: torch.Tensor) -> torch.Tensor:
            return ev.translate_all(model, images, source, target)

    train_t = data.load_emoji_arrays("twitter", "train", 64, args.data_root)[0]
    train_g = google_side(data.load_emoji_arrays("google", "train", 64, args.data_root)[0])
    dis = train_probe(train_t, train_g, fields, args.steps, args.batch, augment, args.seed)
    _, test_g, test_t = data.emoji_pairs("test", 64, args.data_root)
    on_t, on_g = image_logits(dis, test_t), image_logits(dis, google_side(test_g))
    print(f"critic: emoji64 discriminator {args.fields or '(the preset)'}, augment {augment!r}, {args.steps} steps of "
          f"{args.batch} + {args.batch}, seed {args.seed}, {args.threads} thread(s), load average {os.getloadavg()[0]:.2f}")
    print(f"test: {len(test_t)} Twitter emoji (real) against {other}")
    print(f"{'scale':>8} {'accuracy':>9} {'mean logit Twitter':>19} {'mean logit other':>17}")
    rows = [(str(s + 1), on_t[s], on_g[s]) for s in range(len(on_t))] + [("all", on_t.mean(0), on_g.mean(0))]
    for name, t, g in rows:
        accuracy = 0.5 * ((t > 0).float().mean() + (g < 0).float().mean())
        print(f"{name:>8} {100 * float(accuracy):8.1f}% {float(t.mean()):19.2f} {float(g.mean()):18.2f}")


if __name__ == "__main__":
    main()
