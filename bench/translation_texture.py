"""How much fine texture emoji translations carry, against the real drawings of each style: the mean
absolute difference between neighbouring pixels (horizontal plus vertical, pixel units in [0, 1]) over
the fixed test split. Google shades its emoji, Twitter draws them flat, so a Google -> Twitter
translation that changes the style should come out near Twitter's figure, one that keeps its source's
shading near Google's. A diagnostic, not a quality measure: FID and KID (``eval emoji``) decide.

    python bench/translation_texture.py emoji-google-twitter runs/mine [...]

Each model is scored with the emoji domains named as ``eval emoji --domain-a emoji-google --domain-b
emoji-twitter`` names them (the bundled pair's own names need no renaming).
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core import data
from unit_nodes.tools import evaluate as ev


def neighbour_difference(images: torch.Tensor) -> float:
    """Mean |x[i, j+1] - x[i, j]| + mean |x[i+1, j] - x[i, j]| of images in [-1, 1], in [0, 1] units."""
    x = (images.clamp(-1, 1) + 1) / 2
    return float((x[..., 1:] - x[..., :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model specs: a bundled pair's name, a run folder, a Hub repo id")
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    _, google, twitter = data.emoji_pairs("test", 64, args.data_root)
    print(f"real test drawings: google {neighbour_difference(google):.4f}, twitter {neighbour_difference(twitter):.4f}")
    for spec in args.models:
        model, _ = ev.load_pair(spec, domain_names=("emoji-google", "emoji-twitter"))
        side = {name: ev.domain_of(model, name) for name in ("emoji-google", "emoji-twitter")}
        g2t = ev.translate_all(model, google, side["emoji-google"], side["emoji-twitter"])  # in inference mode
        t2g = ev.translate_all(model, twitter, side["emoji-twitter"], side["emoji-google"])
        print(f"{spec}: google->twitter {neighbour_difference(g2t):.4f}, "
              f"twitter->google {neighbour_difference(t2g):.4f}")


if __name__ == "__main__":
    main()
