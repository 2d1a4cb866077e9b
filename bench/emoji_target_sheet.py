"""Translations beside the truth: test emoji of both styles, each pair's translations, and the same
emoji as the other style really draws it.

    python bench/emoji_target_sheet.py emoji-google-twitter --out docs/grids/emoji-google-twitter-test.png
    python bench/emoji_target_sheet.py RUN --domain-a emoji-google --domain-b emoji-twitter --out sheet.png

Each row holds two emoji of the fixed test split (every ``--every``-th, from the first), each as
four tiles: the Google drawing | its translation into Twitter's style | the Twitter drawing (what
that translation should look like, and the input of the next tile) | its translation into
Google's style (to be compared with the first tile). The emoji data set's pairs are aligned, so
the sheet shows what FID cannot: whether a translation redraws the emoji in the other style or
returns its input.
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core import data
from unit_nodes.core.images import labelled_grid, save_pil
from unit_nodes.tools import evaluate as ev


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model folder, .safetensors file, bundled pair name or Hub repo id")
    ev.add_pair_data_arguments(p)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--rows", type=int, default=6, help="rows of two emoji each (default 6)")
    p.add_argument("--every", type=int, default=40, help="take every N-th test emoji (default 40)")
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour zoom of every tile (default 2)")
    args = p.parse_args()
    if args.rows < 1 or args.every < 1 or args.scale < 1:
        p.error("--rows, --every and --scale must be at least 1")

    model, _ = ev.load_pair(args.model, domain_names=(args.domain_a, args.domain_b))
    _, google, twitter = data.emoji_pairs("test", model.config.image_size, args.data_root)
    pick = torch.arange(0, len(google), args.every)[: 2 * args.rows]
    if len(pick) < 2 * args.rows:
        p.error(f"the test split has {len(google)} emoji: {args.rows} rows of two every {args.every} need "
                f"{(2 * args.rows - 1) * args.every + 1}")
    g, t = google[pick], twitter[pick]
    side_g, side_t = ev.domain_of(model, "emoji-google"), ev.domain_of(model, "emoji-twitter")
    g2t = ev.translate_all(model, g, side_g, side_t)
    t2g = ev.translate_all(model, t, side_t, side_g)
    tiles = [[g[i], g2t[i], t[i], t2g[i]] for i in range(len(pick))]
    rows = [tiles[2 * r] + tiles[2 * r + 1] for r in range(args.rows)]
    labels = ["Google", "-> Twitter", "Twitter", "-> Google"] * 2
    print(save_pil(labelled_grid(rows, labels, scale=args.scale), args.out))


if __name__ == "__main__":
    main()
