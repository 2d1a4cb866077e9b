"""Does adding back what the source autoencoder loses make translations better? (a screen; session 34: no)

    python bench/detail_transfer.py emoji-google-twitter
    python bench/detail_transfer.py RUN --domain-a emoji-google --domain-b emoji-twitter --alphas 0.5 1

UNIT decodes the translation G_t(z) and the reconstruction G_s(z) from one code z = E_s(x). The
decoders learn from noisy codes against an L1, so both paint a blurred average of what z allows;
the reconstruction's error x - G_s(z) is the detail the code did not carry. This prints, on the
fixed emoji test split (474 images, the Inception network and measures of ``eval emoji``), the
identity, the plain translation and G_t(z) + alpha * (x - G_s(z)) (in the source frame, then
resized by the frame scale like every translation) for each alpha: FID, KID x1000, L1, SSIM.
Real images' features are cached in ``--cache-dir``.
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core.networks import reframe
from unit_nodes.tools import evaluate as ev


@torch.inference_mode()
def translations(model, x: torch.Tensor, source: str, target: str, alpha: float, batch_size: int = 256) -> torch.Tensor:
    """G_t(z) + alpha * (x - G_s(z)) for z = E_s(x) (the mean), in the source frame, then resized into
    the target's like every translation (the border it uncovers gets nothing added), clamped."""
    def one(chunk: torch.Tensor) -> torch.Tensor:
        z = model.encode(chunk, source)
        y = model.reframe_into(model.decode(z, target), source, target)
        if alpha:
            lost = chunk - model.decode(z, source)
            y = y + alpha * reframe(lost, model.frame_factor(source, target), (0.0,) * lost.shape[1])
        return y.clamp(-1, 1)

    return ev.map_batches(one, x, batch_size)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model folder, .safetensors file, bundled pair name or Hub repo id")
    ev.add_pair_data_arguments(p)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1.0], help="weights of the added detail")
    p.add_argument("--cache-dir", default="runs/featcache", help="Inception features of the real images")
    p.add_argument("--limit", type=int, default=None, help="first N test images only (a smoke test)")
    args = p.parse_args()

    model, _ = ev.load_pair(args.model, domain_names=(args.domain_a, args.domain_b))
    model.eval()
    split = ev.EmojiTestSplit(model.config.image_size, args.data_root, args.cache_dir, args.limit)
    side = {k: ev.domain_of(model, f"emoji-{k}") for k in split.STYLES}
    for src, dst in (("google", "twitter"), ("twitter", "google")):
        x, s, t = split.images[src], side[src], side[dst]
        print(f"{src} -> {dst} ({len(x)} images)")
        split.print_row("identity", x, dst)
        split.print_row("translation G_t(z)", translations(model, x, s, t, 0.0), dst)
        for alpha in args.alphas:
            split.print_row(f"G_t(z) + {alpha:g} * (x - G_s(z))", translations(model, x, s, t, alpha), dst)


if __name__ == "__main__":
    main()
