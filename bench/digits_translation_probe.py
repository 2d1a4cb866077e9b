"""Why does a digit pair's translation lose digits? Translated-target accuracy under variants of inference.

Usage: python bench/digits_translation_probe.py [MODEL] [THREADS]   (defaults weights/mnist-usps 2)
For both tasks of an MNIST <-> USPS pair, the bundled source classifier reads the target test set
translated into the source domain (the translated-target protocol of ``eval digits``) with:
the batch norms' running statistics or the test batch's own (batches of 256), and the mean code or a
sampled one (z = mean + N(0, I), seed 0); then the target test images reconstructed through their own
domain, G_target(E_target(x)), read by the same classifier (does the autoencoder keep the digits?).
Writes a PNG per task (first 32 test images, their translations, 32 real source-domain images) when
``--grid DIR`` follows the arguments.
"""
import copy
import sys
from pathlib import Path

import torch
import torchvision

from unit_nodes.core import data
from unit_nodes.tools.classifier import accuracy, load_classifier
from unit_nodes.tools.evaluate import DIGIT_TASKS, classifier_path, domain_of, load_pair, map_batches

args = sys.argv[1:]
grid_dir = None
if "--grid" in args:
    grid_dir = Path(args[args.index("--grid") + 1])
    del args[args.index("--grid"):args.index("--grid") + 2]
spec = args[0] if args else "weights/mnist-usps"
torch.set_num_threads(int(args[1]) if len(args) > 1 else 2)
model, _ = load_pair(spec)
model.eval()


def translate(x: torch.Tensor, source: str, target: str, sampled: bool = False, batch_stats: bool = False) -> torch.Tensor:
    # a copy when the batch norms use batch statistics: in train mode they would also update the model's running ones
    net = copy.deepcopy(model) if batch_stats else model
    if batch_stats:
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.train()
    noise = torch.Generator().manual_seed(0)

    def one_batch(xb: torch.Tensor) -> torch.Tensor:
        mu = net.encode(xb, source)
        z = mu + torch.randn(mu.shape, generator=noise) if sampled else mu
        return net.decode(z, target).clamp(-1, 1)

    with torch.no_grad():
        return map_batches(one_batch, x, batch_size=256)


for task in ("mnist->usps", "usps->mnist"):
    source, target = DIGIT_TASKS[task][:2]
    side_s, side_t = domain_of(model, source), domain_of(model, target)
    size = model.config.image_size
    test = data.DigitDataset(target, "test", size, None, channels=model.config.channels(side_t))
    classifier = load_classifier(classifier_path(task))
    print(f"{task}: source only {100 * accuracy(classifier, test.images, test.labels):.2f} %", flush=True)
    for sampled in (False, True):
        for batch_stats in (False, True):
            y = translate(test.images, side_t, side_s, sampled, batch_stats)
            print(f"  translated, {'sampled' if sampled else 'mean'} code, "
                  f"{'test-batch' if batch_stats else 'running'} BN statistics: "
                  f"{100 * accuracy(classifier, y, test.labels):.2f} %", flush=True)
    y = translate(test.images, side_t, side_t)
    print(f"  reconstructed in its own domain: {100 * accuracy(classifier, y, test.labels):.2f} %", flush=True)
    if grid_dir is not None:
        grid_dir.mkdir(parents=True, exist_ok=True)
        real = data.DigitDataset(source, "test", size, None, channels=model.config.channels(side_s)).images[:32]
        rows = torch.cat([test.images[:32], translate(test.images[:32], side_t, side_s), real])
        out = grid_dir / f"{target}_to_{source}.png"
        torchvision.utils.save_image((rows + 1) / 2, out, nrow=16, padding=1)
        print(f"  grid: {out}", flush=True)
