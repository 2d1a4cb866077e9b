import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tiny import TensorImages, shapes_and_inversions, tiny_config
from unit_nodes.core import weights
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.sources import resolve
from unit_nodes.core.weights import UNITWeightsError, load_model, read_config, save_model


def _params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_round_trip_is_bit_exact_and_keeps_ties(tmp_path):
    torch.manual_seed(0)
    model = UNIT(tiny_config(n_res_blocks=3, n_shared=2, dis_shared_layers=1))
    Trainer(model, device="cpu").train_step(*shapes_and_inversions(4))  # move BN stats off init
    path = save_model(model, tmp_path / "m")
    assert path == tmp_path / "m" / "model.safetensors"
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == model.config.to_dict()
    loaded = load_model(tmp_path / "m")
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert loaded.enc["a"].shared is loaded.enc["b"].shared
    assert loaded.dis["a"].shared is loaded.dis["b"].shared
    # tied tensors are stored once
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert not any(k.startswith("enc.b.shared") for k in keys) or not any(k.startswith("enc.a.shared") for k in keys)
    # same outputs
    x = torch.rand(2, 1, 20, 20) * 2 - 1
    model.eval()
    assert torch.equal(model.translate(x[:, :, :16, :16], "a"), loaded.translate(x[:, :, :16, :16], "a"))


def test_inference_export_without_discriminators(tmp_path):
    model = UNIT(tiny_config())
    save_model(model, tmp_path / "m.safetensors", include_discriminators=False)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.dis is None
    assert read_config(tmp_path / "m.safetensors") == model.config
    with pytest.raises(UNITWeightsError, match="no discriminators"):
        load_model(tmp_path / "m.safetensors", discriminators=True)
    # a trainer re-attaches fresh critics for fine-tuning
    t = Trainer(loaded, device="cpu")
    assert t.model.dis is not None


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        load_model(tmp_path / "empty")


def test_pickle_renamed_is_refused(tmp_path):
    bad = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(UNITWeightsError, match="pickle") as err:
        load_model(bad)
    assert str(bad) in str(err.value)
    old = tmp_path / "old.safetensors"
    torch.save({"x": torch.zeros(1)}, old, _use_new_zipfile_serialization=False)
    with pytest.raises(UNITWeightsError, match="pickle"):
        load_model(old)


def test_header_length_that_looks_like_a_pickle_opcode_still_loads(tmp_path):
    """A safetensors header length whose low byte is 0x80 (a pickle's first byte) is a valid file."""
    model = UNIT(tiny_config())
    for pad in range(0, 400, 8):  # safetensors pads its header to 8 bytes: try every length
        path = save_model(model, tmp_path / "m", metadata={"note": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    loaded = load_model(path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_truncated_file(tmp_path):
    model = UNIT(tiny_config())
    path = save_model(model, tmp_path / "m")
    data = path.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(UNITWeightsError, match="truncated|corrupt") as err:
            load_model(path)
        assert str(path) in str(err.value)


def test_unknown_version_foreign_file_and_bad_config(tmp_path):
    model = UNIT(tiny_config())
    tensors = weights.untied_state_dict(model.enc, "enc.")
    tensors.update(weights.untied_state_dict(model.gen, "gen."))
    meta = weights.base_metadata(model.config, "model")
    f = tmp_path / "v99.safetensors"
    save_file(tensors, str(f), metadata={**meta, "format_version": "99"})
    with pytest.raises(UNITWeightsError, match="version '99'"):
        load_model(f)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(UNITWeightsError, match="not a unit-nodes model"):
        load_model(foreign)
    bad_cfg = tmp_path / "badcfg.safetensors"
    save_file(tensors, str(bad_cfg), metadata={**meta, "config": json.dumps({**model.config.to_dict(), "n_shared": 7})})
    with pytest.raises(UNITWeightsError, match="n_shared"):
        load_model(bad_cfg)


def test_missing_keys_and_shape_mismatch(tmp_path):
    model = UNIT(tiny_config())
    tensors = weights.untied_state_dict(model.enc, "enc.")
    tensors.update(weights.untied_state_dict(model.gen, "gen."))
    meta = weights.base_metadata(model.config, "model")
    dropped = dict(tensors)
    dropped.pop(sorted(dropped)[0])
    f = tmp_path / "missing.safetensors"
    save_file(dropped, str(f), metadata=meta)
    with pytest.raises(UNITWeightsError, match="missing tensor"):
        load_model(f)
    other = UNIT(tiny_config(base_channels=12))
    t2 = weights.untied_state_dict(other.enc, "enc.")
    t2.update(weights.untied_state_dict(other.gen, "gen."))
    f2 = tmp_path / "shape.safetensors"
    save_file(t2, str(f2), metadata=meta)  # config says 8 channels, tensors have 12
    with pytest.raises(UNITWeightsError, match="shape"):
        load_model(f2)


def _train(trainer, steps, ds_a, ds_b):
    trainer.fit(ds_a, ds_b, steps, batch_size=4)


@pytest.mark.parametrize("critic", [{}, {"dis_spectral_norm": True}], ids=["plain", "spectral-norm"])
def test_resume_is_bit_identical(tmp_path, critic):
    a, b = shapes_and_inversions(24)
    ds_a, ds_b = TensorImages(a), TensorImages(b)
    cfg = tiny_config(lr_policy="step", lr_step_size=3, lr_gamma=0.5, **critic)

    torch.manual_seed(1)
    straight = Trainer(UNIT(cfg), device="cpu", seed=3)
    _train(straight, 8, ds_a, ds_b)

    torch.manual_seed(1)
    first = Trainer(UNIT(cfg), device="cpu", seed=3)
    _train(first, 4, ds_a, ds_b)
    ckpt = first.save_checkpoint(tmp_path / "ck.safetensors")
    del first
    torch.manual_seed(12345)  # the checkpoint must restore every RNG itself
    resumed = Trainer.from_checkpoint(ckpt, device="cpu", seed=3)
    assert resumed.step == 4
    _train(resumed, 8, ds_a, ds_b)
    s, r = straight.model.state_dict(), resumed.model.state_dict()
    for k in s:
        assert torch.equal(s[k], r[k]), k
    for o1, o2 in ((straight.opt_g, resumed.opt_g), (straight.opt_d, resumed.opt_d)):
        st1, st2 = o1.state_dict()["state"], o2.state_dict()["state"]
        assert st1.keys() == st2.keys()
        for idx in st1:
            for key in st1[idx]:
                assert torch.equal(torch.as_tensor(st1[idx][key]), torch.as_tensor(st2[idx][key]))
    # a checkpoint is also loadable as a model: the weights of step 4
    m = load_model(ckpt)
    at4 = Trainer.from_checkpoint(ckpt, device="cpu").model.state_dict()
    for k, v in m.state_dict().items():
        assert torch.equal(v, at4[k]), k


def test_schedule_change_on_resume_is_kept_and_replayable(tmp_path):
    """A resumed run may decay its learning rate; the change is in every later checkpoint, and
    making it at the same step of an unbroken run gives the same weights."""
    a, b = shapes_and_inversions(24)
    ds_a, ds_b = TensorImages(a), TensorImages(b)
    torch.manual_seed(1)
    straight = Trainer(UNIT(tiny_config()), device="cpu", seed=3)
    _train(straight, 3, ds_a, ds_b)
    straight.change_schedule(lr=2.5e-5)
    _train(straight, 6, ds_a, ds_b)

    torch.manual_seed(1)
    first = Trainer(UNIT(tiny_config()), device="cpu", seed=3)
    _train(first, 3, ds_a, ds_b)
    ckpt = first.save_checkpoint(tmp_path / "ck.safetensors")
    resumed = Trainer.from_checkpoint(ckpt, device="cpu", seed=3)
    assert resumed.change_schedule(lr=2.5e-5, total_steps=resumed.config.total_steps) == {"lr": (1e-4, 2.5e-5)}
    assert all(g["lr"] == 2.5e-5 for opt in (resumed.opt_g, resumed.opt_d) for g in opt.param_groups)
    _train(resumed, 5, ds_a, ds_b)
    again = Trainer.from_checkpoint(resumed.save_checkpoint(tmp_path / "ck.safetensors"), device="cpu", seed=3)
    assert again.config.lr == 2.5e-5 and again.schedule_changes == [{"step": 3, "lr": 2.5e-5}]
    assert json.loads(again.schedule_metadata()["schedule_changes"]) == [{"step": 3, "lr": 2.5e-5}]
    _train(again, 6, ds_a, ds_b)
    s, r = straight.model.state_dict(), again.model.state_dict()
    for k in s:
        assert torch.equal(s[k], r[k]), k

    with pytest.raises(ValueError, match=r"\['n_shared'\] cannot change"):
        again.change_schedule(lr=1e-5, n_shared=0)
    assert again.config.lr == 2.5e-5 and len(again.schedule_changes) == 1  # refused as a whole
    assert Trainer(UNIT(tiny_config()), device="cpu").schedule_metadata() == {}


def test_checkpoint_with_other_config_is_refused(tmp_path):
    t = Trainer(UNIT(tiny_config()), device="cpu")
    ck = t.save_checkpoint(tmp_path / "ck.safetensors")
    other = Trainer(UNIT(tiny_config(lambda_gan=1.0)), device="cpu")
    with pytest.raises(UNITWeightsError, match="lambda_gan"):
        other.load_checkpoint(ck)


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    model = UNIT(tiny_config())
    path = save_model(model, tmp_path / "m")
    good = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(weights, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model(UNIT(tiny_config(base_channels=4)), tmp_path / "m")
    assert path.read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]


def test_killed_process_during_checkpoint_keeps_previous(tmp_path):
    """A process killed in the middle of writing a checkpoint leaves the old one intact."""
    script = f"""
import os, sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from tiny import tiny_config
from unit_nodes.core import weights
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
t = Trainer(UNIT(tiny_config()), device="cpu")
t.save_checkpoint({str(tmp_path / 'ck.safetensors')!r})
real = weights.save_file
def dying(tensors, filename, metadata=None):
    real(tensors, filename, metadata=metadata)
    with open(filename, "r+b") as fh:
        fh.truncate(1000)  # half-written
    os._exit(9)  # killed before the rename
weights.save_file = dying
t.step = 99
t.save_checkpoint({str(tmp_path / 'ck.safetensors')!r})
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    assert proc.returncode == 9
    t = Trainer.from_checkpoint(tmp_path / "ck.safetensors", device="cpu")
    assert t.step == 0


def test_resolve_order(tmp_path):
    model = UNIT(tiny_config())
    folder = tmp_path / "models" / "mine"
    save_model(model, folder)
    assert resolve(folder) == folder / "model.safetensors"
    assert resolve(folder / "model.safetensors") == folder / "model.safetensors"
    assert resolve("mine", models_dirs=[tmp_path / "models"]) == folder / "model.safetensors"
    with pytest.raises(FileNotFoundError, match="no model found"):
        resolve("definitely-not-a-model", models_dirs=[tmp_path / "models"])
    with pytest.raises(ValueError, match="no model given"):
        resolve("  ")
