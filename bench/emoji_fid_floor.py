"""Where an emoji pair's FID comes from: fidelity or style.

    python bench/emoji_fid_floor.py emoji-google-twitter
    python bench/emoji_fid_floor.py RUN/snapshots/step_0003000 --domain-a emoji-google --domain-b emoji-twitter

Prints, on the fixed emoji test split (474 images, the Inception network of ``eval emoji``):
the identity baseline; 474 other emoji (a seeded random draw from each style's training split)
in the true style of each side against that side's test set (what matching the style but not the
content scores: the floor of this protocol, two samples of one distribution);
the model's reconstructions G_i(E_i(x_i)) against their own style (the autoencoder's loss of
detail) and against the other style (a "translation" that changes no style); and the
translations. Real images' features are cached in ``--cache-dir``.
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core import data
from unit_nodes.tools import evaluate as ev


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model folder, .safetensors file, bundled pair name or Hub repo id")
    ev.add_pair_data_arguments(p)
    p.add_argument("--cache-dir", default="runs/featcache", help="Inception features of the real images")
    p.add_argument("--seed", type=int, default=0, help="which random training emoji stand for each style")
    args = p.parse_args()

    model, _ = ev.load_pair(args.model, domain_names=(args.domain_a, args.domain_b))
    size = model.config.image_size
    _, test_g, test_t = data.emoji_pairs("test", size, args.data_root)
    n = len(test_g)
    net_file = ev.find_inception(None)
    net = ev.load_inception(net_file)
    cache = ev.FeatureCache(args.cache_dir)

    def real(x: torch.Tensor):
        return cache.get(x, net_file, lambda: ev.inception_features(net, x))

    def fake(x: torch.Tensor):
        return ev.inception_features(net, x)

    test = {"google": test_g, "twitter": test_t}
    feats = {k: real(v) for k, v in test.items()}
    side = {k: ev.domain_of(model, f"emoji-{k}") for k in test}
    rows = [("identity: Google test, against Twitter", ev.fid_from_features(feats["google"], feats["twitter"]), None)]
    for style in ("twitter", "google"):
        # a random draw: the split is sorted by name, so its first n are a few kinds of emoji
        # (flags, people, ...) and score far worse than the style as a whole (97.7 against 48.6
        # for Twitter); the seed makes the draw, and the cached features, repeatable
        train, _, _ = data.load_emoji_arrays(style, "train", size, args.data_root)
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[:n]
        rows.append((f"{n} other emoji in the true {style} style, against {style}",
                     ev.fid_from_features(real(train[pick]), feats[style]), None))
    for src, dst in (("google", "twitter"), ("twitter", "google")):
        x = test[src]
        recon = ev.translate_all(model, x, side[src], side[src])
        f_recon = fake(recon)
        l1 = float(ev.l1_01(recon, x).mean())
        rows.append((f"reconstruction of {src}, against {src}", ev.fid_from_features(f_recon, feats[src]), l1))
        rows.append((f"reconstruction of {src}, against {dst}", ev.fid_from_features(f_recon, feats[dst]), None))
        y = ev.translate_all(model, x, side[src], side[dst])
        rows.append((f"translation {src} -> {dst}, against {dst}", ev.fid_from_features(fake(y), feats[dst]), None))
    for name, fid, l1 in rows:
        print(f"{name:<58} FID {fid:7.1f}" + (f"   L1 {l1:.4f}" if l1 is not None else ""), flush=True)


if __name__ == "__main__":
    main()
