"""A small user-style folder pair from the emoji training split (issue 10, goal 4).

    python bench/make_small_emoji_folders.py --n 200 --out runs/small200

Copies ``n`` emoji files of each style, drawn at random from the fixed training split (never a
test emoji), into ``OUT/google`` and ``OUT/twitter``. The two draws use different seeds
(``--seed`` and ``--seed + 1``), so the folders hold mostly different emoji, as two folders a
user collected would: the training stays unpaired in content as well as in order. Train on them
as on any folder: ``train --domain-a OUT/google --domain-b OUT/twitter``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from unit_nodes.core.data.emoji import _emoji_folder, emoji_names
from unit_nodes.core.data.roots import resolve_root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="images per style")
    p.add_argument("--out", required=True, help="new folder; gets google/ and twitter/")
    p.add_argument("--seed", type=int, default=0, help="seed of the Google draw (Twitter: seed + 1)")
    p.add_argument("--data-root", default=None)
    args = p.parse_args()

    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; choose a new folder (nothing is overwritten)")
    root = resolve_root(args.data_root)
    draws = {}
    for offset, style in enumerate(("google", "twitter")):
        names = emoji_names(style, "train", root)
        if not 0 < args.n <= len(names):
            raise SystemExit(f"--n must be in 1..{len(names)} (the {style} training split), got {args.n}")
        picked = np.random.default_rng(args.seed + offset).choice(len(names), size=args.n, replace=False)
        draws[style] = [names[i] for i in sorted(picked)]
    # built beside OUT and renamed into place: a failure leaves no half-filled OUT, and a folder
    # already there under the working name (an earlier run's, or the user's) is never reused or removed
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        raise SystemExit(f"{partial} exists (left by an interrupted run?); remove it or choose another --out")
    try:
        for style, names in draws.items():
            (partial / style).mkdir(parents=True)
            source = _emoji_folder(style, root)
            for name in names:
                shutil.copyfile(source / name, partial / style / name)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    for offset, (style, names) in enumerate(draws.items()):
        print(f"{out / style}: {len(names)} training emoji (seed {args.seed + offset})")


if __name__ == "__main__":
    main()
