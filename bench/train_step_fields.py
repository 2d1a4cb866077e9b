"""What a config change costs per emoji64 training step, measured in one run.

    python bench/train_step_fields.py lambda_edges=0 lambda_edges=100 [--batch 2] [--threads 2] [--precision auto]

Each argument is one variant: comma-separated FIELD=VALUE pairs on top of the emoji64 preset ("" for
the preset itself). One Trainer per variant does 3 warm-up steps and 10 timed steps on fixed random
64 px batches; the variants are interleaved three times and the fastest round of each is kept, so a
drift in the machine's speed hits every variant alike. Prints s/step and the ratio to the first
variant, and the load average (figures compare only on an otherwise idle machine).
"""

import argparse
import os

import torch

from unit_nodes.cli import _parse_overrides
from unit_nodes.core.config import preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
from unit_nodes.tools.bench import time_calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+")
    p.add_argument("--batch", type=int, default=2, help="images per domain per step (emoji64's default run: 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="auto")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    best: dict[str, float] = {}
    gen = torch.Generator().manual_seed(1)
    xa = torch.rand(args.batch, 3, 64, 64, generator=gen) * 2 - 1
    xb = torch.rand(args.batch, 3, 64, 64, generator=gen) * 2 - 1
    for _ in range(3):
        for variant in args.variants:
            torch.manual_seed(0)
            fields = _parse_overrides([pair for pair in variant.split(",") if pair])
            trainer = Trainer(UNIT(preset("emoji64", **fields)), device="cpu", seed=0, precision=args.precision)
            times, _ = time_calls(lambda: trainer.train_step(xa, xb), torch.device("cpu"), iters=10, warmup=3)
            best[variant] = min(best.get(variant, float("inf")), sum(times) / len(times))
    print(f"batch {args.batch}, threads {args.threads}, {trainer.precision}, load average {os.getloadavg()[0]:.2f}")
    first = best[args.variants[0]]
    for variant in args.variants:
        print(f"{variant or '(the preset)':40s} {best[variant]:.4f} s/step  {best[variant] / first:.3f}x")


if __name__ == "__main__":
    main()
