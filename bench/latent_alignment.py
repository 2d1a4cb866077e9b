"""Does matching the statistics of the shared codes across styles make translations better? (a screen)

    python bench/latent_alignment.py emoji-google-twitter
    python bench/latent_alignment.py RUN --domain-a emoji-google --domain-b emoji-twitter

UNIT assumes one shared code per image, whatever its style; ``bench/shared_code_probe.py`` finds
the style in the codes instead. This measures a fix at inference that needs no training: the
per-channel mean and covariance of E's mean codes over each style's *training* split, and the
source's test codes mapped onto the target's statistics before G_t decodes them:

- ``diag``: z' = (z - m_s) * s_t / s_s + m_t per channel;
- ``wct``: whitening and colouring, z' = C_t^1/2 C_s^-1/2 (z - m_s) + m_t over all channels;
- ``wct@a``: (1 - a) z + a wct(z).

It prints, on the fixed emoji test split (474 images, the Inception network and measures of
``eval emoji``), the identity, the plain translation and each variant: FID, KID x1000, L1, SSIM.
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core import data
from unit_nodes.tools import evaluate as ev


@torch.inference_mode()
def codes(model, x: torch.Tensor, side: str, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([model.encode(c, side).float() for c in x.split(batch_size)])


def code_statistics(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean [C] and covariance [C, C] over images and positions (float64)."""
    flat = z.double().permute(1, 0, 2, 3).reshape(z.shape[1], -1)
    mean = flat.mean(1)
    centred = flat - mean[:, None]
    return mean, centred @ centred.T / (flat.shape[1] - 1)


def _matrix_power(cov: torch.Tensor, power: float, eps: float = 1e-5) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    return vectors @ torch.diag(values.clamp_min(eps) ** power) @ vectors.T


def aligner(source_stats, target_stats, kind: str, strength: float = 1.0):
    (ms, cs), (mt, ct) = source_stats, target_stats
    if kind == "diag":
        scale = (ct.diagonal() / cs.diagonal()).sqrt()
        matrix = torch.diag(scale)
    elif kind == "wct":
        matrix = _matrix_power(ct, 0.5) @ _matrix_power(cs, -0.5)
    else:
        raise ValueError(f"unknown alignment {kind!r}: use 'diag' or 'wct'")

    def align(z: torch.Tensor) -> torch.Tensor:
        c = z.shape[1]
        flat = z.double().permute(0, 2, 3, 1).reshape(-1, c)
        mapped = (flat - ms) @ matrix.T + mt
        mapped = mapped.reshape(z.shape[0], z.shape[2], z.shape[3], c).permute(0, 3, 1, 2)
        return ((1 - strength) * z.double() + strength * mapped).to(z.dtype)

    return align


@torch.inference_mode()
def translations(model, x: torch.Tensor, source: str, target: str, align=None, batch_size: int = 256):
    """``translate_all``'s translations with ``align`` applied to each chunk's (mean) codes."""
    def one(chunk: torch.Tensor) -> torch.Tensor:
        z = model.encode(chunk, source)
        if align is not None:
            z = align(z.float())
        return model.reframe_into(model.decode(z, target), source, target).clamp(-1, 1)

    return ev.map_batches(one, x, batch_size)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model folder, .safetensors file, bundled pair name or Hub repo id")
    ev.add_pair_data_arguments(p)
    p.add_argument("--variants", nargs="+", default=["diag", "wct", "wct@0.5"],
                   help="alignments to score: diag, wct, or either as KIND@STRENGTH")
    p.add_argument("--cache-dir", default="runs/featcache", help="Inception features of the real images")
    p.add_argument("--limit", type=int, default=None, help="first N test and training images only (a smoke test)")
    args = p.parse_args()

    model, _ = ev.load_pair(args.model, domain_names=(args.domain_a, args.domain_b))
    model.eval()
    size = model.config.image_size
    split = ev.EmojiTestSplit(size, args.data_root, args.cache_dir, args.limit)
    side = {k: ev.domain_of(model, f"emoji-{k}") for k in split.STYLES}
    stats = {k: code_statistics(codes(model, data.load_emoji_arrays(k, "train", size, args.data_root)[0][: args.limit], side[k]))
             for k in split.STYLES}
    for src, dst in (("google", "twitter"), ("twitter", "google")):
        x, s, t = split.images[src], side[src], side[dst]
        print(f"{src} -> {dst} ({len(x)} images)")
        split.print_row("identity", x, dst, width=30)
        split.print_row("translation", translations(model, x, s, t), dst, width=30)
        for variant in args.variants:
            kind, _, strength = variant.partition("@")
            align = aligner(stats[src], stats[dst], kind, float(strength or 1.0))
            split.print_row(f"aligned {variant}", translations(model, x, s, t, align), dst, width=30)


if __name__ == "__main__":
    main()
