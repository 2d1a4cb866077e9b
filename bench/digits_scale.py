"""Translating at the wrong scale: USPS test digits at their native 16 px through a 32 px digit pair.

Usage: python bench/digits_scale.py [MODEL] [THREADS]   (defaults weights/mnist-usps 2)
The full USPS test set at 16 px is translated to MNIST style as is and with ``resize="training"``
(up to the model's training size and back), and the bundled MNIST classifier reads the results
resized to 32 px; beside them, the same classifier on the untranslated digits at 32 px.
"""
import sys

import torch

from unit_nodes.core import inference
from unit_nodes.core.data import DigitDataset
from unit_nodes.tools.classifier import accuracy, load_classifier
from unit_nodes.tools.evaluate import classifier_path, domain_of, load_pair

spec = sys.argv[1] if len(sys.argv) > 1 else "weights/mnist-usps"
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
model, _ = load_pair(spec)
model.eval()
mnist, usps = domain_of(model, "mnist"), domain_of(model, "usps")
small = DigitDataset("usps", "test", size=16)
x, labels = small.images, small.labels
classifier = load_classifier(classifier_path("mnist->usps"))
read = lambda y: 100 * accuracy(classifier, inference.resize_images(y, (32, 32)), labels)  # noqa: E731
with torch.no_grad():
    as_is = inference.translate(model, x, usps, mnist)
    rescaled = inference.translate(model, x, usps, mnist, resize="training")
print(f"{spec}: {len(labels)} USPS test digits at 16 px, read by the MNIST classifier at 32 px")
print(f"translated as is {read(as_is):.1f} %   with resize='training' {read(rescaled):.1f} %   "
      f"untranslated {100 * accuracy(classifier, DigitDataset('usps', 'test', size=32).images, labels):.1f} %")
