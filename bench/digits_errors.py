"""Which digits does a pair's translation break? Per-digit comparison of translated-target against source only.

Usage: python bench/digits_errors.py [MODEL] [THREADS] [--grid OUT.png]   (defaults weights/mnist-usps 2)

For the MNIST -> USPS task of an MNIST <-> USPS pair, the bundled MNIST classifier reads each USPS test
digit twice: untranslated (source only) and translated into MNIST style (the translated-target protocol
of ``eval digits``). Prints how many digits the translation breaks (read right untranslated, wrong
translated) and mends (the reverse), the most frequent true -> read pairs among the broken ones, and
the mean ink fraction and ink height (rows with any pixel above 0, of 32) of the raw USPS digits, their
translations and 2000 MNIST test digits: does the translation move the digits towards MNIST's size and
stroke weight? ``--grid`` writes the first 48 broken digits, each raw beside its translation.
"""
import collections
import sys

import torch

from unit_nodes.core import data
from unit_nodes.tools.classifier import load_classifier
from unit_nodes.tools.evaluate import classifier_path, domain_of, load_pair, translate_all

args = sys.argv[1:]
grid = None
if "--grid" in args:
    grid = args[args.index("--grid") + 1]
    del args[args.index("--grid"):args.index("--grid") + 2]
spec = args[0] if args else "weights/mnist-usps"
torch.set_num_threads(int(args[1]) if len(args) > 1 else 2)

model, _ = load_pair(spec)
model.eval()
side_mnist, side_usps = domain_of(model, "mnist"), domain_of(model, "usps")
test = data.DigitDataset("usps", "test", 32, None, channels=1)
images, labels = test.images, test.labels
classifier = load_classifier(classifier_path("mnist->usps"))
with torch.no_grad():
    translated = translate_all(model, images, side_usps, side_mnist)
    read_raw = classifier(images).argmax(1)
    read_translated = classifier(translated).argmax(1)

broken = ((read_raw == labels) & (read_translated != labels)).nonzero().flatten()
mended = ((read_raw != labels) & (read_translated == labels)).nonzero().flatten()
n = len(labels)
print(f"model {spec}: {n} USPS test digits read by the MNIST classifier")
print(f"source only {(read_raw == labels).float().mean().item():.2%}   "
      f"translated-target {(read_translated == labels).float().mean().item():.2%}")
print(f"broken by the translation {len(broken)}   mended {len(mended)}")
pairs = collections.Counter((int(labels[i]), int(read_translated[i])) for i in broken).most_common(8)
print("broken, true -> read:", ", ".join(f"{t}->{p} x{c}" for (t, p), c in pairs))


def ink(x: torch.Tensor) -> tuple[float, float]:
    on = (x > 0).float()
    return on.mean().item(), on.amax(dim=(1, 3)).sum(1).mean().item()


mnist = data.DigitDataset("mnist", "test", 32, None, channels=1, limit=2000).images
for name, x in (("USPS raw", images), ("USPS -> MNIST style", translated), ("MNIST test", mnist)):
    fraction, height = ink(x)
    print(f"{name:22s} ink {fraction:.3f}   ink height {height:.1f} px")

if grid:
    import torchvision
    first = broken[:48]
    pairs_img = torch.stack([images[first], translated[first]], 1).flatten(0, 1)
    torchvision.utils.save_image(pairs_img * 0.5 + 0.5, grid, nrow=16, padding=1)
    print("wrote", grid)
