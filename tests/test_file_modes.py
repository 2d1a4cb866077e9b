"""Every file the pack writes gets the mode the umask gives any new file (as open() would),
not the owner-only 0600 of the temporary file it is written to before the rename."""
import os
import stat

import numpy as np
import pytest
import torch

from tiny import TensorImages, shapes_and_inversions, tiny_config
from unit_nodes.core import weights
from unit_nodes.tools.classifier import DigitClassifier, save_classifier
from unit_nodes.core.data.mnistm import _atomic_save_npz
from unit_nodes.core.images import save_image
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
                         indirect=["umask"], ids=["umask022", "umask002", "umask077"])
def test_models_checkpoints_samples_and_data_get_the_umask_mode(tmp_path, umask, expected):
    with open(tmp_path / "plain.txt", "w") as fh:  # what any program gets under this umask
        fh.write("x")
    assert mode(tmp_path / "plain.txt") == expected
    assert weights.current_umask() == umask
    torch.manual_seed(0)
    model = UNIT(tiny_config())

    written = [*weights.save_model(model, tmp_path / "model").parent.glob("*")]
    trainer = Trainer(model, seed=0)
    a, b = shapes_and_inversions(4)
    trainer.fit(TensorImages(a), TensorImages(b), steps=1, batch_size=2,
                checkpoint_path=tmp_path / "run" / "checkpoint.safetensors", checkpoint_every=1)
    written.append(tmp_path / "run" / "checkpoint.safetensors")
    written.append(save_image(torch.zeros(3, 8, 8), tmp_path / "samples" / "grid.png"))
    written.append(weights.atomic_write_text(tmp_path / "notes.json", "{}"))
    written.append(save_classifier(DigitClassifier(), tmp_path / "classifier.safetensors"))
    _atomic_save_npz(tmp_path / "cache" / "mnistm.npz", images=np.zeros((2, 4, 4), np.uint8))
    written.append(tmp_path / "cache" / "mnistm.npz")

    assert {p.name for p in written} >= {"model.safetensors", "config.json", "checkpoint.safetensors"}
    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in written} == \
        {str(p.relative_to(tmp_path)): oct(expected) for p in written}
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
