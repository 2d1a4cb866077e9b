import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tiny import TensorImages, shapes_and_inversions, tiny_config
from unit_nodes.core.inference import translate
from unit_nodes.core.networks import UNIT
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.weights import load_model

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return env


@pytest.mark.slow
def test_short_training_learns_the_known_mapping():
    """Unpaired shapes vs inverted shapes: reconstruction, cycle and the A->B translation
    error against the true mapping (x -> -x) all fall during a short run."""
    torch.manual_seed(0)
    a, b = shapes_and_inversions(256, seed=0)
    held_out, _ = shapes_and_inversions(64, seed=99)
    trainer = Trainer(UNIT(tiny_config(lr=2e-4)), device="cpu", seed=0)

    def translation_error():
        trainer.model.eval()
        err = (translate(trainer.model, held_out, "a") - (-held_out)).abs().mean().item()
        trainer.model.train()
        return err

    before = translation_error()
    history = []
    trainer.fit(TensorImages(a), TensorImages(b), steps=300, batch_size=8, callback=lambda r: history.append(r.losses))
    after = translation_error()

    def mean(key, part):
        return sum(h[key] for h in part) / len(part)

    for key in ("recon_a", "recon_b", "cycle_a", "cycle_b"):
        assert mean(key, history[-20:]) < 0.75 * mean(key, history[:20]), key
    assert after < 0.8 * before, (before, after)
    identity_error = (held_out - (-held_out)).abs().mean().item()
    assert after < 0.5 * identity_error


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "spike"])
def test_ddp_two_processes_hold_identical_weights(tmp_path, mode):
    """Also with config.spike_rollback when only rank 0 spikes: both ranks roll back together."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "ddp_worker.py"), str(tmp_path)] + ([mode] if mode == "spike" else [])
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # identical weights although each rank trained on different data (DDP averaged the gradients)
    assert (tmp_path / "order0.txt").read_text() != (tmp_path / "order1.txt").read_text()
    if mode == "spike":
        assert (tmp_path / "rollbacks0.txt").read_text() == (tmp_path / "rollbacks1.txt").read_text() == \
            "[{'step': 11, 'to': 8}]"


def _write_pngs(folder: Path, images: torch.Tensor, extra_junk: bool = False):
    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        arr = ((x[0].numpy() + 1) * 127.5).astype(np.uint8)
        sub = folder / ("nested" if i % 2 else "")
        sub.mkdir(exist_ok=True)
        Image.fromarray(arr, "L").save(sub / f"img{i}.png")
    if extra_junk:
        (folder / "notes.txt").write_text("not an image")


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "unit_nodes", *map(str, args)], env=_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_cycle_domains_drops_the_cycle_l1_of_the_other_side_only():
    """cycle_domains='a' keeps x_a -> B -> A and drops x_b -> A -> B: the E+G objective
    differs by exactly lambda_cc_recon * cycle_b."""
    from unit_nodes.core.config import ConfigError

    a, b = shapes_and_inversions(4)
    totals = {}
    for domains in ("ab", "a"):
        torch.manual_seed(0)
        trainer = Trainer(UNIT(tiny_config(cycle_domains=domains)), device="cpu", seed=0)
        x_a, x_b = trainer._prepare(a), trainer._prepare(b)
        totals[domains] = trainer.g_step(x_a, x_b, trainer.forward(x_a, x_b))
    full, one_sided = totals["ab"], totals["a"]
    assert full["cycle_b"] == pytest.approx(one_sided["cycle_b"]) and full["cycle_b"] > 0.01
    cfg = tiny_config()
    assert full["g_total"] - one_sided["g_total"] == pytest.approx(cfg.lambda_cc_recon * full["cycle_b"], rel=1e-4)
    with pytest.raises(ConfigError, match="cycle_domains"):
        tiny_config(cycle_domains="ba")


@pytest.mark.slow
def test_cli_train_resume_and_translate(tmp_path):
    a, b = shapes_and_inversions(12)
    _write_pngs(tmp_path / "A", a, extra_junk=True)
    _write_pngs(tmp_path / "B", b)
    out = tmp_path / "run"
    common = ["--domain-a", tmp_path / "A", "--domain-b", tmp_path / "B", "--out", out, "--preset", "digits32",
              "--size", "16", "--batch-size", "2", "--sample-every", "2", "--log-every", "1",
              "--set", "base_channels=8", "--set", "dis_channels=16", "--set", "dis_layers=2"]
    proc = _cli("train", *common, "--steps", "2", "--export-every", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for step in (1, 2):  # inference exports along the way, each loadable, with its wall time
        snap = load_model(out / "snapshots" / f"step_{step:07d}")
        assert not snap.has_discriminators
    from unit_nodes.core.weights import read_safetensors
    meta = read_safetensors(out / "snapshots" / "step_0000002" / "model.safetensors")[1]
    assert meta["trained_steps"] == "2" and float(meta["run_seconds"]) > 0
    from unit_nodes.core.device import autocast_dtype, precision_name
    # the default --precision auto is recorded as what it resolved to on this machine
    assert meta["precision"] == precision_name(autocast_dtype(torch.device("cpu"), "auto"))
    assert f", {meta['precision']}" in proc.stderr
    assert "skipp" in proc.stderr.lower()  # the .txt file was skipped with a warning
    for name in ("model.safetensors", "config.json", "checkpoint.safetensors", "losses.jsonl"):
        assert (out / name).is_file(), name
    assert (out / "samples" / "step_0000002.png").is_file()
    model = load_model(out)
    assert model.config.image_size == 16 and model.config.base_channels == 8

    # an existing run is never overwritten by accident
    again = _cli("train", *common, "--steps", "4")
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = _cli("train", *common, "--steps", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and "step 2" in resumed.stderr
    assert len((out / "losses.jsonl").read_text().splitlines()) == 4

    # resuming may decay the learning rate, never change what is trained
    changed = _cli("train", *common, "--steps", "5", "--resume", "--set", "dis_layers=3")
    assert changed.returncode == 2 and "dis_layers=2" in changed.stderr and "Traceback" not in changed.stderr
    decayed = _cli("train", *common, "--steps", "5", "--resume", "--lr", "3e-5")
    assert decayed.returncode == 0, decayed.stderr[-3000:]
    assert "lr: 0.0001 -> 3e-05 from step 4" in decayed.stderr
    assert read_safetensors(out / "model.safetensors")[1]["schedule_changes"] == '[{"step": 4, "lr": 3e-05}]'
    assert load_model(out).config.lr == 3e-5
    # a resume's --steps past the end of a linear schedule would train at rate 0: refused, with the fix
    past = _cli("train", *common, "--steps", "6", "--resume", "--set", "lr_policy=linear")
    assert past.returncode == 2 and "--set total_steps=6" in past.stderr and "Traceback" not in past.stderr
    moved = _cli("train", *common, "--steps", "6", "--resume", "--set", "total_steps=6", "--set", "restart_step=3")
    assert moved.returncode == 2 and "have begun at steps: none; the requested schedule would have begun them at: [3]" in moved.stderr and "Traceback" not in moved.stderr
    phase = _cli("train", *common, "--steps", "6", "--resume", "--set", "lr_policy=linear", "--set", "total_steps=6",
                 "--set", "restart_step=5")  # one more phase, from the current step
    assert phase.returncode == 0, phase.stderr[-3000:]
    assert "restart_step: 0 -> 5 from step 5" in phase.stderr and load_model(out).config.restart_step == 5

    tr = _cli("translate", "--model", out, "--direction", "a2b", "--out", tmp_path / "t", "--cycle", tmp_path / "A")
    assert tr.returncode == 0, tr.stderr[-3000:]
    outs = sorted((tmp_path / "t").glob("*_a2b.png"))
    assert len(outs) == 12
    assert Image.open(outs[0]).size == (16, 16)
    assert len(sorted((tmp_path / "t").glob("*_a2b_cycle.png"))) == 12


def test_cli_errors_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "B").mkdir()
    proc = _cli("train", "--domain-a", tmp_path / "empty", "--domain-b", tmp_path / "B", "--out", tmp_path / "o",
                "--preset", "digits32", "--steps", "1")
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("train", "--domain-a", tmp_path / "missing", "--domain-b", tmp_path / "B", "--out", tmp_path / "o",
                "--preset", "digits32", "--steps", "1")
    assert proc.returncode == 2 and "missing" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("train", "--domain-a", "mnist", "--domain-b", "usps", "--out", tmp_path / "o", "--preset", "nope")
    assert proc.returncode == 2 and "unknown preset" in proc.stderr
    proc = _cli("translate", "--model", tmp_path / "nomodel", "--direction", "a2b", "--out", tmp_path / "t", tmp_path)
    assert proc.returncode == 2 and "no model found" in proc.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04junk")
    proc = _cli("translate", "--model", bad, "--direction", "a2b", "--out", tmp_path / "t", tmp_path)
    assert proc.returncode == 2 and "pickle" in proc.stderr
    proc = _cli("train", "--help")
    assert proc.returncode == 0
    for option in ("--domain-a", "--domain-b", "--out", "--preset", "--size", "--steps", "--resume"):
        assert option in proc.stdout


def test_resume_takes_the_runs_seed_from_the_checkpoint(tmp_path):
    # the data order of a resumed run must not depend on the seed its resumer happened to pass
    a, b = shapes_and_inversions(8)
    first = Trainer(UNIT(tiny_config()), device="cpu", seed=3)
    first.train_step(a[:2], b[:2])
    first.save_checkpoint(tmp_path / "ckpt.safetensors")
    resumed = Trainer(UNIT(tiny_config()), device="cpu", seed=99)
    resumed.load_checkpoint(tmp_path / "ckpt.safetensors")
    assert resumed.seed == 3
    fresh = Trainer(UNIT(tiny_config()), device="cpu", seed=3)
    assert resumed._sampler("a", 8).order.tolist() == fresh._sampler("a", 8).order.tolist()


def test_training_time_adds_up_across_resumes(tmp_path):
    # time-to-quality curves of a resumed run: the resumed process must go on from the
    # checkpoint's training time, not restart at 0, and the pause between processes is not counted
    import time as _time

    from unit_nodes.core.weights import read_safetensors

    a, b = shapes_and_inversions(8)
    ckpt = tmp_path / "ckpt.safetensors"
    first = Trainer(UNIT(tiny_config()), device="cpu", seed=0)
    # several steps each: enough CPU time to show in the checkpoint's 0.1 s resolution on one fast thread
    first.fit(TensorImages(a), TensorImages(b), steps=8, batch_size=2, checkpoint_path=ckpt,
              callback=lambda r: _time.sleep(0.05))
    meta = read_safetensors(ckpt)[1]
    wall_1, cpu_1 = float(meta["train_seconds"]), float(meta["train_cpu_seconds"])
    assert wall_1 >= 0.4 and cpu_1 > 0

    _time.sleep(0.5)
    resumed = Trainer(UNIT(tiny_config()), device="cpu", seed=0)
    resumed.load_checkpoint(ckpt)
    assert resumed.clock.elapsed() == (wall_1, cpu_1)
    t0 = _time.time()
    resumed.fit(TensorImages(a), TensorImages(b), steps=18, batch_size=2, checkpoint_path=ckpt,
                callback=lambda r: _time.sleep(0.05))
    second_fit = _time.time() - t0
    meta = read_safetensors(ckpt)[1]
    wall_2, cpu_2 = float(meta["train_seconds"]), float(meta["train_cpu_seconds"])
    assert wall_1 + 0.4 <= wall_2 <= wall_1 + second_fit + 0.1
    assert cpu_2 > cpu_1
