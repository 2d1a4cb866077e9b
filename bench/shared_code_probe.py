"""Is the latent code of an emoji pair shared, and how much style do the generators add?

    python bench/shared_code_probe.py emoji-google-twitter
    python bench/shared_code_probe.py RUN --domain-a emoji-google --domain-b emoji-twitter

UNIT's assumption is one code for a Google emoji and its Twitter twin, with the style added by
the generators. On the paired test split (the same emoji drawn in both styles; row i of both
sets is one emoji) this prints:

- distance: mean squared distance between the codes (E's means) of an emoji's two drawings,
  divided by the same between an emoji and a random *other* emoji's twin (1.0: the pairing is
  invisible in code space; 0: the two drawings share their code exactly); and the same for the
  images themselves (what a code that copied its input would score);
- a domain probe: a logistic regression that tells E_a's codes from E_b's, trained on half
  the emoji and tested on the other half (50 %: the codes carry no style; 100 %: the style,
  which G should add, is already in the code), on spatially pooled and on whole codes, and
  on the images;
- the style a generator adds: mean L1 between G_b(z) and G_a(z) for the same code (what a
  translation changes against the reconstruction), beside the mean L1 between the real
  drawings of each emoji (the change a perfect translation makes) and the paired L1 of the
  translations (what ``eval emoji`` reports).

No training of the pair, no Inception; a few seconds on a CPU.
"""

from __future__ import annotations

import argparse

import torch

from unit_nodes.core import data
from unit_nodes.tools import evaluate as ev


def codes(model, x: torch.Tensor, side: str) -> torch.Tensor:
    from unit_nodes.core.inference import encode

    return ev.map_batches(lambda batch: encode(model, batch, side, tile=None).code, x)


def probe_accuracy(za: torch.Tensor, zb: torch.Tensor, steps: int = 100, weight_decay: float = 1e-3) -> float:
    """Held-out accuracy of a logistic regression telling side a's codes from side b's: fitted
    on the first half of the emoji (both drawings), tested on the second half."""
    n = len(za)
    half = n // 2
    feats = torch.cat([za, zb]).flatten(1)
    labels = torch.cat([torch.zeros(n), torch.ones(n)])
    rows = torch.arange(2 * n)
    train = (rows % n) < half
    mean, std = feats[train].mean(0), feats[train].std(0).clamp_min(1e-6)
    feats = (feats - mean) / std
    w = torch.zeros(feats.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = feats[train] @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[train])
        loss = loss + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = (feats[~train] @ w + b) > 0
    return float((pred.float() == labels[~train]).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model folder, .safetensors file, bundled pair name or Hub repo id")
    ev.add_pair_data_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="which random other emoji stand for 'unpaired'")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    model, _ = ev.load_pair(args.model, domain_names=(args.domain_a, args.domain_b))
    _, test_g, test_t = data.emoji_pairs("test", model.config.image_size, args.data_root)
    ga, tb = ev.domain_of(model, "emoji-google"), ev.domain_of(model, "emoji-twitter")
    with torch.inference_mode():
        zg, zt = codes(model, test_g, ga), codes(model, test_t, tb)
    n = len(zg)
    shift = torch.randperm(n - 1)[0] + 1  # a derangement: every emoji against another one's twin
    print(f"model {args.model}: {n} paired test emoji, code {tuple(zg.shape[1:])}")
    # the same measures on the images themselves: what a code that merely copied its input would score
    for name, a, b in (("code", zg, zt), ("pixels", test_g, test_t)):
        paired = (a - b).pow(2).flatten(1).sum(1).mean()
        other = (a - b.roll(int(shift), 0)).pow(2).flatten(1).sum(1).mean()
        print(f"{name}: distance paired / unpaired {float(paired / other):.3f}; domain probe (held-out accuracy, "
              f"50 % = no style) pooled {100 * probe_accuracy(a.mean((2, 3)), b.mean((2, 3))):.1f} %, "
              f"whole {100 * probe_accuracy(a, b):.1f} %", flush=True)
    with torch.inference_mode():
        for name, x, y, z, src, dst in (("google -> twitter", test_g, test_t, zg, ga, tb),
                                        ("twitter -> google", test_t, test_g, zt, tb, ga)):
            recon = ev.map_batches(lambda c: model.decode(c, src).clamp(-1, 1), z)
            trans = ev.map_batches(lambda c: model.decode(c, dst).clamp(-1, 1), z)
            print(f"{name}: L1 translation vs reconstruction {float(ev.l1_01(trans, recon).mean()):.4f}; "
                  f"real drawings' L1 {float(ev.l1_01(x, y).mean()):.4f}; translation vs real twin "
                  f"{float(ev.l1_01(trans, y).mean()):.4f}; reconstruction vs input {float(ev.l1_01(recon, x).mean()):.4f}")


if __name__ == "__main__":
    main()
