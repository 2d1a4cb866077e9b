"""Where an emoji pair's FID comes from: fidelity or style.

    python bench/emoji_fid_floor.py emoji-google-twitter
    python bench/emoji_fid_floor.py RUN/snapshots/step_0003000 --domain-a emoji-google --domain-b emoji-twitter

Prints, on the fixed emoji test split (474 images, the Inception network of ``eval emoji``):
the identity baseline; 474 other emoji (a seeded random draw from each style's training split)
in the true style of each side against that side's test set (what matching the style but not the
content scores: the floor of this protocol, two samples of one distribution);
the model's reconstructions G_i(E_i(x_i)) against their own style (the autoencoder's loss of
detail) and against the other style (a "translation" that changes no style); and the
translations, against the target style and against their *own source* style. The last is how
far a translation moved away from where it started: 0 for the untranslated input, the identity's
FID (78.8) for a translation as far from the source style as the true target drawings are, and
the input resized by the pair's frame scale (printed beside it) is what resizing alone moves.
The paired L1 of each translation to its input resized by the frame scale says the same in
pixels. Real images' features are cached in ``--cache-dir``.
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
    p.add_argument("--translations-only", action="store_true",
                   help="only the translations and the resized inputs (skips the other-emoji draws and the reconstructions)")
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
    for style in () if args.translations_only else ("twitter", "google"):
        # a random draw: the split is sorted by name, so its first n are a few kinds of emoji
        # (flags, people, ...) and score far worse than the style as a whole (97.7 against 48.6
        # for Twitter); the seed makes the draw, and the cached features, repeatable
        train, _, _ = data.load_emoji_arrays(style, "train", size, args.data_root)
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[:n]
        rows.append((f"{n} other emoji in the true {style} style, against {style}",
                     ev.fid_from_features(real(train[pick]), feats[style]), None))
    for src, dst in (("google", "twitter"), ("twitter", "google")):
        x = test[src]
        if not args.translations_only:
            recon = ev.translate_all(model, x, side[src], side[src])
            f_recon = fake(recon)
            l1 = float(ev.l1_01(recon, x).mean())
            rows.append((f"reconstruction of {src}, against {src}", ev.fid_from_features(f_recon, feats[src]), l1))
            rows.append((f"reconstruction of {src}, against {dst}", ev.fid_from_features(f_recon, feats[dst]), None))
        y = ev.translate_all(model, x, side[src], side[dst])
        f_y = fake(y)
        rows.append((f"translation {src} -> {dst}, against {dst}", ev.fid_from_features(f_y, feats[dst]), None))
        # what the translation changed beyond the frame: the pair's resize (and fill) alone, scored the same way
        resized = model.reframe_into(x, side[src], side[dst])
        rows.append((f"{src} resized x{model.frame_factor(side[src], side[dst]):.4f} (no translation), against {src}",
                     ev.fid_from_features(real(resized), feats[src]), float(ev.l1_01(resized, x).mean())))
        rows.append((f"translation {src} -> {dst}, against {src} (its source)", ev.fid_from_features(f_y, feats[src]),
                     float(ev.l1_01(y, resized).mean())))
    for name, fid, l1 in rows:
        print(f"{name:<58} FID {fid:7.1f}" + (f"   L1 {l1:.4f}" if l1 is not None else ""), flush=True)


if __name__ == "__main__":
    main()
