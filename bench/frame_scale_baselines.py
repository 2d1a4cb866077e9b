"""The resize-only baselines of ``frame_scale``: the untranslated test images resized by the frame
scale (``networks.reframe``) and scored like a translation. A pair with a frame scale must beat
these, not only the identity, for its translation (not its resize) to count.

    python bench/frame_scale_baselines.py            # emoji (eval-emoji metrics) and digits (translated-target)
    python bench/frame_scale_baselines.py --only emoji --emoji-scale 1.0626   # at a run's own measured scale

Prints the measured frame scales (``core.framing``, training splits) and, per direction, the
identity and the resized input. Real images' Inception features are cached in ``--cache-dir``.
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core import data
from unit_nodes.core.config import FRAME_SCALE_BOUNDS, fill_colour, frame_scale_allowed
from unit_nodes.core.framing import background_colour, colour_hex, estimate_frame_scale
from unit_nodes.core.networks import reframe
from unit_nodes.tools import evaluate as ev
from unit_nodes.tools.classifier import accuracy, load_classifier


def emoji(args) -> None:
    google, _, _ = data.load_emoji_arrays("google", "train", 64, args.data_root)
    twitter, _, _ = data.load_emoji_arrays("twitter", "train", 64, args.data_root)
    if args.emoji_scale is None:
        scale, origin = estimate_frame_scale(google, twitter, ("emoji-google", "emoji-twitter")), "training splits"
    else:  # the scale a run measured on its own folders (train --frame-scale auto prints it)
        scale, origin = args.emoji_scale, "given"
    fills = {"google": colour_hex(background_colour(google)[0]), "twitter": colour_hex(background_colour(twitter)[0])}
    print(f"emoji: Twitter draws its emoji {scale:.4f}x the size of Google's ({origin}); backgrounds {fills}")
    _, g, t = data.emoji_pairs("test", 64, args.data_root)
    net_file = ev.find_inception(None)
    net, cache = ev.load_inception(net_file), ev.FeatureCache(args.cache_dir)
    real = {"google": g, "twitter": t}
    feats = {k: cache.get(v, net_file, lambda v=v: ev.inception_features(net, v)) for k, v in real.items()}
    for src, dst, factor in (("google", "twitter", scale), ("twitter", "google", 1 / scale)):
        rows = [("identity", real[src]), (f"resized x{factor:.4f}", reframe(real[src], factor))]
        if factor < 1:  # what a shrink uncovers: each image's border colour above, the target's background here
            rows.append((f"resized, {fills[dst]} fill", reframe(real[src], factor, fill_colour(fills[dst], 3))))
        for name, y in rows:
            f = feats[src] if name == "identity" else ev.inception_features(net, y)
            print(f"  {src}->{dst} {name:<18} FID {ev.fid_from_features(f, feats[dst]):6.2f} "
                  f"KID x1000 {1000 * ev.kid_from_features(f, feats[dst])[0]:6.2f} "
                  f"L1 {float(ev.l1_01(y, real[dst]).mean()):.4f} SSIM {float(ev.ssim(y, real[dst]).mean()):.4f}",
                  flush=True)


def digits(args) -> None:
    def stack(name, split):
        ds = data.load_domain(name, split, 32, root=args.data_root)
        return ds.batch(range(len(ds)))  # (images, labels)

    mnist, usps = stack("mnist", "train")[0], stack("usps", "train")[0]
    scale = estimate_frame_scale(mnist, usps, ("mnist", "usps"))
    fills = {"mnist": colour_hex(background_colour(mnist)[0]), "usps": colour_hex(background_colour(usps)[0])}
    print(f"digits: USPS draws its digits {scale:.4f}x the size of MNIST's (training sets, 32 px); backgrounds {fills}")
    # translated-target: the source classifier reads the target test set (translated, or here resized)
    for task, target, source, factor in (("mnist->usps", "usps", "mnist", 1 / scale),
                                         ("usps->mnist", "mnist", "usps", scale)):
        x, labels = stack(target, "test")
        clf = load_classifier(ev.classifier_path(task))
        filled = reframe(x, factor, fill_colour(fills[source], 1))  # the resized set stands in for the source domain
        print(f"  {task} the {source} classifier reads the {target} test set: as it is "
              f"{100 * accuracy(clf, x, labels):.2f} %, resized x{factor:.4f} {100 * accuracy(clf, reframe(x, factor), labels):.2f} %"
              + (f", with the {fills[source]} fill {100 * accuracy(clf, filled, labels):.2f} %" if factor < 1 else ""),
              flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None, help="data root (default: the project's)")
    p.add_argument("--cache-dir", default="runs/featcache", help="Inception features of the real images")
    p.add_argument("--only", choices=("emoji", "digits"), default=None)
    p.add_argument("--emoji-scale", type=float, default=None,
                   help="emoji: resize by this frame scale instead of the one measured on the training splits")
    args = p.parse_args()
    if args.emoji_scale is not None and not frame_scale_allowed(args.emoji_scale):
        p.error(f"--emoji-scale must be in {FRAME_SCALE_BOUNDS} (a frame scale a model may have), got {args.emoji_scale}")
    if args.only in (None, "digits"):
        digits(args)
    if args.only in (None, "emoji"):
        emoji(args)


if __name__ == "__main__":
    main()
