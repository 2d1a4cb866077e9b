"""Bad, odd and hostile inputs: every one gets a clear error (exit 2 with one line in the CLI,
a ValueError with the same text in the nodes) or the right output, nothing the user made is
lost, nothing hangs. One case per finding of the 119-case bad-input run (issue 12), and the
cases that already passed then, so that none of them comes back.

Real files, real subprocesses and real signals; the CLI's quick error cases run its ``main``
in this process (the same code as ``python -m unit_nodes``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from comfyui_harness import execution_error

from unit_nodes import cli
from unit_nodes.core import data
from unit_nodes.core.config import ConfigError, UNITConfig, parameter_estimate, preset
from unit_nodes.core.files import LOCK_FILE, RunLock, walk_files
from unit_nodes.core.images import MAX_IMAGE_PIXELS, UnreadableImageError, load_image, output_names, read_image
from unit_nodes.core.networks import UNIT
from unit_nodes.core.checkpoint import checkpoint_step
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.sources import resolve, resolve_hub
from unit_nodes.core.weights import NonFiniteTensorsError, UNITWeightsError, load_model, save_model
from unit_nodes.nodes.layout import check_save_name, training_folder

REPO = Path(__file__).resolve().parents[1]
TINY = ["--preset", "digits32", "--size", "16", "--batch-size", "2", "--sample-every", "0", "--log-every", "1",
        "--set", "base_channels=4", "--set", "dis_channels=8", "--set", "dis_layers=2", "--set", "n_res_blocks=1"]


# --- helpers ---------------------------------------------------------------------------------
def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", **extra)


def run_cli(*args, timeout=180, env=None, prefix=()):
    """``python -m unit_nodes ARGS`` in a real subprocess."""
    return subprocess.run([*prefix, sys.executable, "-m", "unit_nodes", *map(str, args)], env=env or _env(),
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def main_in_process(capsys, *args) -> tuple[int, str]:
    """``cli.main`` here: (exit code, stderr)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line_error(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.startswith("error:")]
    assert "Traceback" not in text, text[-3000:]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


def gray_pngs(folder: Path, count: int, size: int = 16, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray((g.random((size, size)) * 255).astype(np.uint8), "L").save(folder / f"{i}.png")
    return folder


def tiny_model(channels: int = 1) -> UNIT:
    torch.manual_seed(0)
    return UNIT(preset("digits32", channels_a=channels, channels_b=channels, image_size=16, base_channels=4,
                       n_res_blocks=1, dis_channels=8, dis_layers=2))


def rewrite(path: Path, tensors=None, metadata=None) -> None:
    """Rewrite a safetensors file with changed tensors and/or metadata (what a damaged or
    hand-edited file looks like)."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        ts = {k: f.get_tensor(k) for k in f.keys()}
    ts.update(tensors or {})
    meta.update(metadata or {})
    save_file(ts, str(path), metadata=meta)


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid 1-bit PNG of side x side pixels: a few kB on disk, hundreds of MB decoded."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def fifo(tmp_path):
    """A FIFO; should the code under test open it anyway, a writer shows up after a few
    seconds, so the test fails instead of hanging forever."""
    path = tmp_path / "pipe.png"
    os.mkfifo(path)

    def unblock():
        time.sleep(5)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # fails (ENXIO) when nobody reads: fine
            os.close(fd)
        except OSError:
            pass

    threading.Thread(target=unblock, daemon=True).start()
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model(tiny_model(), folder, include_discriminators=False)
    return folder


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("domains")
    return gray_pngs(root / "A", 6, seed=1), gray_pngs(root / "B", 6, seed=2)


def train_args(domains, out, steps, *extra):
    return ["train", "--domain-a", domains[0], "--domain-b", domains[1], "--out", out, "--steps", steps, *TINY, *extra]


# --- 1. a divergence never overwrites a good checkpoint ----------------------------------------
def test_a_nan_state_is_refused_by_the_checkpoint_writer_and_the_good_file_stays(tmp_path):
    trainer = Trainer(tiny_model(), device="cpu")
    ckpt = trainer.save_checkpoint(tmp_path / "checkpoint.safetensors")
    before = ckpt.read_bytes()
    with torch.no_grad():
        next(trainer.model.gen.parameters())[0].fill_(float("nan"))
    with pytest.raises(NonFiniteTensorsError, match="NaN or Inf"):
        trainer.save_checkpoint(ckpt)
    assert ckpt.read_bytes() == before
    assert list(tmp_path.iterdir()) == [ckpt]  # no temporary file left either
    with pytest.raises(NonFiniteTensorsError):
        save_model(trainer.model, tmp_path / "export")


@pytest.mark.slow
def test_a_diverging_resume_stops_naming_the_last_good_step_and_the_run_resumes(tmp_path, domains):
    out = tmp_path / "run"
    first = run_cli(*train_args(domains, out, 4, "--checkpoint-every", "2"))
    assert first.returncode == 0, first.stderr[-3000:]
    good = (out / "checkpoint.safetensors").read_bytes()

    diverged = run_cli(*train_args(domains, out, 8, "--resume", "--lr", "1e30"))
    assert diverged.returncode == cli.EXIT_DIVERGED, diverged.stderr[-3000:]
    line = one_line_error(diverged.stderr)
    assert "diverged" in line and "last good state, step 4" in line and "Nothing was saved" in line
    assert (out / "checkpoint.safetensors").read_bytes() == good

    resumed = run_cli(*train_args(domains, out, 8, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint_step(out / "checkpoint.safetensors") == 8
    assert load_model(out).config.lr == 1e-4


def test_an_infinite_learning_rate_is_a_config_error(capsys, tmp_path, domains):
    code, err = main_in_process(capsys, *train_args(domains, tmp_path / "o", 2, "--set", "lr=inf"))
    assert code == 2 and "lr=inf" in one_line_error(err) and "finite" in err
    assert not (tmp_path / "o").exists()  # nothing left behind by a refused run


# --- 2. interrupts stop at a step boundary; resume is bit-identical ---------------------------------
def _wait_for_steps(proc, log: Path, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError("training made no progress")


def _start_training(args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unit_nodes", *map(str, args)], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


STEPS = 150


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, domains) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = run_cli(*train_args(domains, out, STEPS))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_at_a_step_boundary_and_resume_is_bit_identical(tmp_path, domains, uninterrupted, sig):
    out = tmp_path / "run"
    proc = _start_training(train_args(domains, out, STEPS))
    _wait_for_steps(proc, out / "losses.jsonl", 5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == cli.EXIT_INTERRUPTED, err[-3000:]
    stopped = checkpoint_step(out / "checkpoint.safetensors")
    assert stopped is not None and 5 <= stopped < STEPS, err[-3000:]
    assert f"interrupted ({sig.name}) at step {stopped}; checkpoint saved" in err
    assert "Traceback" not in err

    resumed = run_cli(*train_args(domains, out, STEPS, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("model.safetensors", "checkpoint.safetensors"):
        got, want = _tensors(out / name), _tensors(uninterrupted / name)
        assert got.keys() == want.keys()
        different = [k for k in want if not torch.equal(got[k], want[k])]
        assert not different, f"{name}: {len(different)} tensors differ, e.g. {different[:3]}"


@pytest.mark.slow
def test_a_second_interrupt_says_truthfully_whether_the_checkpoint_was_written(tmp_path, domains):
    out = tmp_path / "run"
    proc = _start_training(train_args(domains, out, STEPS, "--checkpoint-every", "3"))
    _wait_for_steps(proc, out / "losses.jsonl", 4)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == cli.EXIT_INTERRUPTED, err[-3000:]
    assert "Traceback" not in err
    on_disk = checkpoint_step(out / "checkpoint.safetensors")
    if "checkpoint saved" in err:
        assert f"at step {on_disk}; checkpoint saved" in err
    else:  # stopped at once: the message names what is on disk, not what was hoped for
        assert on_disk is not None and f"holds step {on_disk}" in err, err[-2000:]
    assert not list(out.glob(".*.tmp"))


def test_stale_temporary_files_of_a_killed_save_are_removed_on_resume_and_on_save(tmp_path, capsys, domains):
    out = tmp_path / "run"
    code, err = main_in_process(capsys, *train_args(domains, out, 2))
    assert code == 0, err
    stale = [out / ".checkpoint.safetensors.k1ll3d.tmp", out / ".model.safetensors.abc123.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 4096)  # what a SIGKILL during a save leaves
    keep = out / "notes.tmp"
    keep.write_text("the user's own file")
    code, err = main_in_process(capsys, *train_args(domains, out, 3, "--resume"))
    assert code == 0, err
    assert not any(p.exists() for p in stale) and keep.exists()

    trainer = Trainer.from_checkpoint(out / "checkpoint.safetensors", device="cpu")
    stale[0].write_bytes(b"\0" * 4096)
    trainer.save_checkpoint(out / "checkpoint.safetensors")
    assert not stale[0].exists()


def test_a_resume_without_batch_size_continues_at_the_runs_own_batch(tmp_path, capsys, domains):
    """The preset's default batch can change between versions (emoji64: 4, then 2); a resumed run keeps its own,
    so stopping and resuming still trains exactly what one uninterrupted run does."""
    from unit_nodes.core.weights import read_safetensors, write_safetensors
    no_batch = [a for i, a in enumerate(TINY) if a != "--batch-size" and TINY[i - 1] != "--batch-size"]

    def args(out, steps, *extra):
        return ["train", "--domain-a", domains[0], "--domain-b", domains[1], "--out", out, "--steps", steps,
                *no_batch, *extra]

    code, err = main_in_process(capsys, *args(tmp_path / "straight", 4, "--batch-size", "3"))
    assert code == 0, err
    code, err = main_in_process(capsys, *args(tmp_path / "resumed", 2, "--batch-size", "3"))
    assert code == 0, err
    ckpt = tmp_path / "resumed" / "checkpoint.safetensors"
    assert read_safetensors(ckpt)[1]["batch_size"] == "3"
    code, err = main_in_process(capsys, *args(tmp_path / "resumed", 4, "--resume"))
    assert code == 0, err
    straight = read_safetensors(tmp_path / "straight" / "model.safetensors")[0]
    resumed = read_safetensors(tmp_path / "resumed" / "model.safetensors")[0]
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)

    # a checkpoint from before the batch size was recorded: the preset's default, and a note saying so
    tensors, meta = read_safetensors(ckpt)
    del meta["batch_size"]
    write_safetensors(ckpt, tensors, meta)
    code, err = main_in_process(capsys, *args(tmp_path / "resumed", 5, "--resume"))
    assert code == 0, err
    assert "does not record its batch size" in err and "--batch-size" in err


# --- 3. one lock per run folder -------------------------------------------------------------------------
def test_a_second_training_into_the_same_folder_is_refused_naming_the_other_process(tmp_path, capsys, domains):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom unit_nodes.core.files import RunLock\n"
                               f"RunLock({str(out)!r}).acquire()\nprint('locked', flush=True)\ntime.sleep(120)"],
                              env=_env(), cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = main_in_process(capsys, *train_args(domains, out, 2))
        assert code == 2
        line = one_line_error(err)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in line and "in use by another training" in line
        assert not (out / "checkpoint.safetensors").exists()
    finally:
        holder.kill()
        holder.wait()
    # killed with its lock file still there: a stale lock is taken over
    assert (out / LOCK_FILE).exists()
    code, err = main_in_process(capsys, *train_args(domains, out, 2))
    assert code == 0, err
    assert not (out / LOCK_FILE).exists()  # released at the end


def test_the_lock_is_per_folder_and_free_again_after_release(tmp_path):
    (tmp_path / "a").mkdir()
    with RunLock(tmp_path / "a"):
        with RunLock(tmp_path):  # another folder: independent
            pass
        with pytest.raises(ValueError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path / "a").acquire()
    with RunLock(tmp_path / "a"):
        pass


# --- 4. clear errors or the right output ---------------------------------------------------------------
def test_folder_scans_follow_no_symlink_loop_and_skip_fifos(tmp_path):
    folder = gray_pngs(tmp_path / "imgs", 4)
    (folder / "loop1").symlink_to(".")
    (folder / "loop2").symlink_to(".")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")
    os.mkfifo(folder / "pipe.png")
    (folder / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    assert sorted(p.name for p in walk_files(folder) if p.suffix == ".png") == ["0.png", "1.png", "2.png", "3.png"]
    assert len(data.ImageFolderDataset(folder, size=16, channels=1)) == 4
    linked = tmp_path / "linked"  # a symlinked data folder is followed, once
    linked.mkdir()
    (linked / "data").symlink_to(folder, target_is_directory=True)
    assert len(data.ImageFolderDataset(linked, size=16, channels=1)) == 4


def test_a_fifo_as_image_or_model_is_a_clear_error(capsys, tmp_path, fifo, model_dir):
    with pytest.raises(UnreadableImageError, match="FIFO"):
        load_image(fifo)
    code, err = main_in_process(capsys, "translate", "--model", model_dir, "--direction", "a2b",
                                "--out", tmp_path / "o", fifo)
    assert code == 2 and "FIFO" in one_line_error(err)
    model_fifo = tmp_path / "model.safetensors"
    os.mkfifo(model_fifo)
    with pytest.raises(UNITWeightsError, match="FIFO"):
        load_model(model_fifo)
    code, err = main_in_process(capsys, "translate", "--model", model_fifo, "--direction", "a2b",
                                "--out", tmp_path / "o", fifo)
    assert code == 2 and "FIFO" in one_line_error(err)


def test_a_symlink_loop_as_model_or_image_is_a_clear_error(capsys, tmp_path):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    with pytest.raises(UNITWeightsError, match="symbolic link loop"):
        load_model(loop)
    image_loop = tmp_path / "loop.png"
    image_loop.symlink_to(image_loop)
    with pytest.raises(UnreadableImageError, match="symbolic link loop"):
        load_image(image_loop)


@pytest.mark.parametrize("field, value", [("base_channels", 1_000_000), ("n_res_blocks", 100_000),
                                          ("dis_layers", 10**9), ("dis_channels", 10**6)])
def test_absurd_sizes_are_refused_before_anything_is_allocated(capsys, tmp_path, domains, field, value):
    code, err = main_in_process(capsys, *train_args(domains, tmp_path / "o", 1, "--set", f"{field}={value}"))
    assert code == 2
    line = one_line_error(err)
    assert field in line or "parameters" in line


def test_the_parameter_estimate_matches_the_networks(tmp_path):
    for cfg in (preset("digits32"), preset("emoji64"), preset("image256"), preset("image256", upsample="transpose"),
                preset("emoji64", upsample="bilinear")):
        with torch.device("meta"):
            real = sum(p.numel() for p in UNIT(cfg).parameters())
        assert abs(parameter_estimate(cfg) - real) < 0.01 * real


def test_absurd_sizes_in_a_files_metadata_are_refused(tmp_path, model_dir):
    path = tmp_path / "huge.safetensors"
    shutil.copy(model_dir / "model.safetensors", path)
    config = json.loads(UNITConfig.from_dict(json.loads((model_dir / "config.json").read_text())).to_json())
    rewrite(path, metadata={"config": json.dumps({**config, "base_channels": 1_000_000})})
    with pytest.raises(UNITWeightsError, match="base_channels"):
        load_model(path)


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_training(capsys, tmp_path, domains):
    code, err = main_in_process(capsys, "train", "--domain-a", domains[0], "--domain-b", domains[1], "--out",
                                tmp_path / "o", "--preset", "image256", "--batch-size", "100000", "--steps", "1")
    assert code == 2 and "lower the batch size" in one_line_error(err)


@pytest.mark.parametrize("value, expected", [(None, "must be a number"), ("1e-4", "must be a number"),
                                             (True, "must be a number"), (float("nan"), "finite")])
def test_metadata_values_are_type_checked(tmp_path, model_dir, value, expected):
    path = tmp_path / "m.safetensors"
    shutil.copy(model_dir / "model.safetensors", path)
    config = json.loads((model_dir / "config.json").read_text())
    rewrite(path, metadata={"config": json.dumps({**config, "lr": value})})
    with pytest.raises(UNITWeightsError, match=f"lr.*{expected}"):
        load_model(path)


def test_deeply_nested_metadata_json_is_a_clear_error(tmp_path, model_dir):
    path = tmp_path / "deep.safetensors"
    shutil.copy(model_dir / "model.safetensors", path)
    rewrite(path, metadata={"config": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(UNITWeightsError, match="nested too deeply"):
        load_model(path)


@pytest.mark.parametrize("damage", ["rng", "param_groups", "step"])
def test_a_damaged_checkpoint_is_a_clear_error_on_resume(capsys, tmp_path, domains, damage):
    out = tmp_path / "run"
    code, err = main_in_process(capsys, *train_args(domains, out, 1))
    assert code == 0, err
    ckpt = out / "checkpoint.safetensors"
    if damage == "rng":
        rewrite(ckpt, tensors={"rng.noise": torch.zeros(7, dtype=torch.uint8)})
    elif damage == "param_groups":
        rewrite(ckpt, metadata={"opt_g.param_groups": "[" * 100_000 + "]" * 100_000})
    else:
        rewrite(ckpt, metadata={"step": "many"})
    code, err = main_in_process(capsys, *train_args(domains, out, 2, "--resume"))
    assert code == 2 and "damaged checkpoint" in one_line_error(err)


def test_a_truncated_mnist_npz_is_a_clear_error(capsys, tmp_path):
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    x = np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8)
    np.savez_compressed(root / "mnist" / "mnist.npz", x_train=x, y_train=np.zeros(50, np.int64), x_test=x,
                        y_test=np.zeros(50, np.int64))
    full = (root / "mnist" / "mnist.npz").read_bytes()
    (root / "mnist" / "mnist.npz").write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="mnist.npz is truncated or damaged"):
        data.load_mnist_arrays("train", root)
    code, err = main_in_process(capsys, "train", "--domain-a", "mnist", "--domain-b", "mnist", "--data-root", root,
                                "--out", tmp_path / "o", "--preset", "digits32", "--steps", "1")
    assert code == 2 and "truncated or damaged" in one_line_error(err)


@pytest.mark.parametrize("command", ["train", "translate"])
def test_out_that_is_a_file_is_a_clear_error(capsys, tmp_path, domains, model_dir, command):
    target = tmp_path / "a-file"
    target.write_text("precious")
    if command == "train":
        args = train_args(domains, target, 1)
    else:
        args = ["translate", "--model", model_dir, "--direction", "a2b", "--out", target, domains[0] / "0.png"]
    code, err = main_in_process(capsys, *args)
    assert code == 2 and "is an existing file, not a folder" in one_line_error(err)
    assert target.read_text() == "precious"


@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0,
                    reason="root ignores folder permissions and setpriv is missing to drop them")
@pytest.mark.parametrize("command", ["train", "translate"])
def test_out_in_a_read_only_folder_is_a_clear_error(domains, model_dir, command):
    root = Path(tempfile.mkdtemp())  # readable by the unprivileged user the CLI runs as
    try:
        os.chmod(root, 0o755)
        for src in (domains[0], domains[1], model_dir):
            shutil.copytree(src, root / src.name)
            os.chmod(root / src.name, 0o755)
            for f in (root / src.name).iterdir():
                os.chmod(f, 0o644)
        ro = root / "ro"
        ro.mkdir()
        os.chmod(ro, 0o555)
        prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups") if os.geteuid() == 0 else ()
        for out in (ro, ro / "new"):
            if command == "train":
                args = train_args((root / "A", root / "B"), out, 1)
            else:
                args = ["translate", "--model", root / model_dir.name, "--direction", "a2b", "--out", out, root / "A"]
            proc = run_cli(*args, prefix=prefix, env=_env(HOME=str(root)))
            assert proc.returncode == 2, proc.stderr[-3000:]
            line = one_line_error(proc.stderr)
            assert str(out) in line and ("not writable" in line or "cannot create" in line)
    finally:
        shutil.rmtree(root)


def test_a_decompression_bomb_is_refused_in_translate_and_skipped_in_training(capsys, tmp_path, model_dir):
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000 and 20_000**2 > MAX_IMAGE_PIXELS
    code, err = main_in_process(capsys, "translate", "--model", model_dir, "--direction", "a2b",
                                "--out", tmp_path / "o", bomb)
    assert code == 2 and "decompression bomb" in one_line_error(err)
    folder = gray_pngs(tmp_path / "train", 2)
    shutil.copy(bomb, folder / "bomb.png")
    with pytest.warns(UserWarning, match="bomb.png.*decompression bomb"):
        dataset = data.ImageFolderDataset(folder, size=16, channels=1)
    assert len(dataset) == 2


@pytest.mark.parametrize("command", ["train", "translate"])
def test_a_bogus_device_or_seed_is_a_clear_error(capsys, tmp_path, domains, model_dir, command):
    def args(*extra):
        if command == "train":
            return train_args(domains, tmp_path / "o", 1, *extra)
        return ["translate", "--model", model_dir, "--direction", "a2b", "--out", tmp_path / "o", domains[0], *extra]

    code, err = main_in_process(capsys, *args("--device", "bogus"))
    assert code == 2 and "unknown device 'bogus'" in one_line_error(err)
    code, err = main_in_process(capsys, *args("--seed", str(10**23)))
    assert code == 2 and "--seed must be an integer from 0 to" in one_line_error(err)
    assert not (tmp_path / "o").exists()


def test_a_bad_tile_budget_names_the_variable(capsys, tmp_path, model_dir, domains, monkeypatch):
    monkeypatch.setenv("UNIT_TILE_BUDGET_MB", "abc")
    code, err = main_in_process(capsys, "translate", "--model", model_dir, "--direction", "a2b",
                                "--out", tmp_path / "o", domains[0] / "0.png")
    assert code == 2 and "UNIT_TILE_BUDGET_MB='abc'" in one_line_error(err)


def _exif_rotated_jpeg(path: Path) -> np.ndarray:
    """A 16 x 32 JPEG whose EXIF says 'rotate 90'; returns the pixels as displayed (32 x 16)."""
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :8] = 255  # a white band on the left of the stored image
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(path, quality=100, exif=exif)
    return np.rot90(arr, k=-1)


def test_one_decoder_for_training_and_inference(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    sixteen = np.full((16, 16), 32768, dtype=np.uint16)  # mid gray in 16 bit
    Image.fromarray(sixteen).save(folder / "a16.png")
    shown = _exif_rotated_jpeg(folder / "b_exif.jpg")
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black: white once composited
    Image.fromarray(rgba, "RGBA").save(folder / "c_alpha.png")

    gray = load_image(folder / "a16.png", 1)
    assert gray.shape == (1, 16, 16) and abs(float(gray.mean())) < 0.01  # mid gray, not clipped to white
    rotated = read_image(folder / "b_exif.jpg", 3)
    assert rotated.shape == (32, 16, 3)
    assert np.abs(rotated.astype(int) - shown.astype(int)).mean() < 8
    assert float(load_image(folder / "c_alpha.png", 3).min()) == 1.0

    dataset = data.ImageFolderDataset(folder, size=16, channels=1, load_size=None)
    by_name = {p.name: i for i, p in enumerate(dataset.files)}
    assert torch.allclose(dataset[by_name["a16.png"]][0], gray)
    assert torch.allclose(dataset[by_name["c_alpha.png"]][0], torch.ones(1, 16, 16))


def test_translate_applies_exif_orientation(capsys, tmp_path):
    torch.manual_seed(0)
    model_rgb = tmp_path / "rgb"
    save_model(tiny_model(3), model_rgb, include_discriminators=False)
    _exif_rotated_jpeg(tmp_path / "photo.jpg")
    code, err = main_in_process(capsys, "translate", "--model", model_rgb, "--direction", "a2b",
                                "--out", tmp_path / "o", tmp_path / "photo.jpg")
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "photo_a2b.png").size == (16, 32)  # displayed orientation: 16 wide, 32 high


def test_nan_weights_are_refused_at_load(capsys, tmp_path, model_dir):
    path = tmp_path / "nan.safetensors"
    shutil.copy(model_dir / "model.safetensors", path)
    with safe_open(str(path), framework="pt") as f:
        name = next(k for k in f.keys() if f.get_tensor(k).is_floating_point())
        t = f.get_tensor(name).clone()
    t.view(-1)[0] = float("inf")
    rewrite(path, tensors={name: t})
    with pytest.raises(NonFiniteTensorsError, match="NaN or Inf"):
        load_model(path)
    code, err = main_in_process(capsys, "translate", "--model", path, "--direction", "a2b", "--out",
                                tmp_path / "o", tmp_path)
    assert code == 2 and "NaN or Inf" in one_line_error(err)


def test_output_names_never_collide(capsys, tmp_path, model_dir):
    for sub, ext in (("a", "png"), ("b", "jpg")):
        (tmp_path / "in" / sub).mkdir(parents=True)
        Image.fromarray(np.full((16, 16), 40 if sub == "a" else 200, np.uint8), "L").save(
            tmp_path / "in" / sub / f"x.{ext}")
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(tmp_path / "in" / "a" / "X.PNG")
    code, err = main_in_process(capsys, "translate", "--model", model_dir, "--direction", "a2b", "--out",
                                tmp_path / "o", tmp_path / "in" / "a" / "x.png", tmp_path / "in" / "b" / "x.jpg",
                                tmp_path / "in")
    assert code == 0, err
    written = sorted(p.name.lower() for p in (tmp_path / "o").iterdir())
    assert len(written) == 5 == len(set(written)), written
    assert output_names([Path("a/x.png"), Path("b/x.jpg")], "_a2b") == ["x_png_a2b.png", "x_jpg_a2b.png"]
    assert output_names([Path("a/x.png"), Path("b/x.png")], "_b2a") == ["a_x_png_b2a.png", "b_x_png_b2a.png"]


def test_translate_tile_is_passed_on_and_shows_progress(tmp_path, model_dir):
    Image.fromarray(np.full((64, 64), 128, np.uint8), "L").save(tmp_path / "big.png")
    tiled = run_cli("translate", "--model", model_dir, "--direction", "a2b", "--out", tmp_path / "t",
                    "--tile", "16", tmp_path / "big.png")
    assert tiled.returncode == 0, tiled.stderr[-3000:]
    tile_bar = re.compile(r"\d+/\d+ \[.*(tile/s|s/tile)")  # tqdm's per-tile progress bar
    assert tile_bar.search(tiled.stderr), tiled.stderr[-2000:]
    whole = run_cli("translate", "--model", model_dir, "--direction", "a2b", "--out", tmp_path / "w",
                    tmp_path / "big.png")
    assert whole.returncode == 0 and not tile_bar.search(whole.stderr)
    a = np.asarray(Image.open(tmp_path / "t" / "big_a2b.png"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "w" / "big_a2b.png"), dtype=float)
    assert a.shape == b.shape == (64, 64) and np.abs(a - b).max() <= 1  # batch-norm model: tiles match


def test_resume_with_another_preset_is_refused(capsys, tmp_path, domains):
    out = tmp_path / "run"
    code, err = main_in_process(capsys, *train_args(domains, out, 1))
    assert code == 0, err
    code, err = main_in_process(capsys, *train_args(domains, out, 2, "--resume"), "--preset", "emoji64")
    assert code == 2 and "preset 'digits32', not 'emoji64'" in one_line_error(err)
    code, err = main_in_process(capsys, *train_args(domains, out, 2, "--resume", "--channels-a", "3"))
    assert code == 2 and "channels_a=1" in one_line_error(err)


# --- 5. security -------------------------------------------------------------------------------------------
def test_a_hub_id_is_never_a_local_path(tmp_path, monkeypatch, model_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    shutil.copytree(model_dir, tmp_path / "loc" / "model")
    shutil.copy(model_dir / "model.safetensors", tmp_path / "model.safetensors")
    for repo in ("loc/..", "loc/.", "./loc", "loc/model/..", "/abs/path"):
        with pytest.raises(ValueError, match="not a Hugging Face repo id"):
            resolve_hub(repo)
    with pytest.raises(FileNotFoundError) as caught:  # offline and not cached: the local folder is not used
        resolve_hub("loc/model")
    assert "loc/model" in str(caught.value)
    with pytest.raises(FileNotFoundError):
        resolve("hf:loc/model")
    assert resolve("loc/model") == Path("loc/model/model.safetensors")  # a plain CLI path stays a path


def test_train_folders_stay_under_the_input_directory_and_the_operators_roots(tmp_path):
    inputs, other = tmp_path / "input", tmp_path / "elsewhere"
    (inputs / "A").mkdir(parents=True)
    other.mkdir()
    (inputs / "escape").symlink_to(other, target_is_directory=True)
    assert training_folder("A", "folder_a", inputs, {}) == inputs / "A"
    for value in (str(other), "../elsewhere", "A/../../elsewhere", "escape", "/etc"):
        with pytest.raises(ValueError, match="outside ComfyUI's input directory.*UNIT_TRAIN_ROOTS"):
            training_folder(value, "folder_a", inputs, {})
    environ = {"UNIT_TRAIN_ROOTS": os.pathsep.join([str(other), ""])}
    assert training_folder(str(other), "folder_a", inputs, environ) == other
    assert training_folder("escape", "folder_a", inputs, environ) == inputs / "escape"
    with pytest.raises(ValueError, match="not an absolute folder"):
        training_folder("A", "folder_a", inputs, {"UNIT_TRAIN_ROOTS": "relative/dir"})


# --- what already passed in the bad-input run, kept passing -------------------------------------------------
@pytest.mark.parametrize("head", [b"\x80\x04\x95junk", b"PK\x03\x04junk"], ids=["pickle", "torch-zip"])
def test_pickles_are_never_loaded(tmp_path, head):
    path = tmp_path / "model.safetensors"
    path.write_bytes(head + b"\0" * 64)
    with pytest.raises(UNITWeightsError, match="pickle"):
        load_model(path)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "", "a\\b", "x" * 200])
def test_save_names_cannot_leave_the_models_folder(name):
    with pytest.raises(ValueError):
        check_save_name(name)


def test_truncated_files_are_clear_errors(tmp_path, model_dir, capsys):
    full = (model_dir / "model.safetensors").read_bytes()
    for size in (3, 100, len(full) // 2):
        path = tmp_path / f"cut{size}.safetensors"
        path.write_bytes(full[:size])
        with pytest.raises(UNITWeightsError, match="truncated"):
            load_model(path)
    png = tmp_path / "cut.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:60])
    code, err = main_in_process(capsys, "translate", "--model", model_dir, "--direction", "a2b",
                                "--out", tmp_path / "o", png)
    assert code == 2 and "not a readable image" in one_line_error(err)


# --- the same rules through the nodes, in a real ComfyUI ---------------------------------------------------
@pytest.fixture(scope="module")
def server(comfyui_server):
    problem = comfyui_server.pack_load_problem()
    assert problem is None, f"ComfyUI did not load the pack:\n{problem}"
    gray_pngs(comfyui_server.input_dir / "bad_inputs" / "A", 2, seed=1)
    gray_pngs(comfyui_server.input_dir / "bad_inputs" / "B", 2, seed=2)
    return comfyui_server


def train_prompt(folder_a: str, folder_b: str, save_name: str) -> dict:
    return {
        "1": {"class_type": "UNITTrain", "inputs": {
            "folder_a": folder_a, "folder_b": folder_b, "save_name": save_name, "steps": 1, "batch_size": 2,
            "image_size": 16, "learning_rate": 1e-4, "seed": 0, "preset": "digits32", "channels": "gray",
            "preview_every": 0}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}},
    }


@pytest.mark.comfyui
def test_the_train_node_reads_no_folder_outside_the_input_directory(server, tmp_path):
    outside = gray_pngs(tmp_path / "private", 2)
    for value in (str(outside), "bad_inputs/../../../../" + str(outside).lstrip("/")):
        error = execution_error(server, train_prompt(value, "bad_inputs/B", "outside-run"))
        assert error["node_type"] == "UNITTrain" and error["exception_type"] == "ValueError"
        assert "outside ComfyUI's input directory" in error["exception_message"]
    assert not (server.models_dir / "unit" / "outside-run").exists()


@pytest.mark.comfyui
def test_the_train_node_refuses_to_measure_a_frame_scale_without_a_plain_background(server):
    prompt = train_prompt("bad_inputs/A", "bad_inputs/B", "noise-frame")
    prompt["1"]["inputs"]["frame_scale"] = 0.0  # measure it: the folders hold random noise, no object on a background
    error = execution_error(server, prompt)
    assert error["node_type"] == "UNITTrain" and error["exception_type"] == "ValueError"
    assert "frame_scale 0 (measure it from the folders): domain folder_a" in error["exception_message"]
    assert "plain background" in error["exception_message"]
    assert not (server.models_dir / "unit" / "noise-frame" / "model.safetensors").exists()


@pytest.mark.comfyui
def test_the_train_node_refuses_a_run_folder_another_training_holds(server):
    folder = server.models_dir / "unit" / "locked-run"
    folder.mkdir(parents=True)
    with RunLock(folder):  # this test process stands for a CLI training into the node's folder
        error = execution_error(server, train_prompt("bad_inputs/A", "bad_inputs/B", "locked-run"))
        assert error["exception_type"].endswith("RunFolderBusy")
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in error["exception_message"]
    assert not (folder / "checkpoint.safetensors").exists()


@pytest.mark.comfyui
def test_the_load_node_never_takes_a_hub_repo_for_a_local_path(server):
    prompt = {
        "1": {"class_type": "UNITLoadModel", "inputs": {"model_name": "x", "hub_repo": "unit/..", "revision": "",
                                                        "subfolder": ""}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "UNITTranslate", "inputs": {"model": ["1", 0], "image": ["2", 0], "source_domain": "A",
                                                        "mode": "mean", "seed": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    error = execution_error(server, prompt)
    assert error["node_type"] == "UNITLoadModel"
    assert "is not a Hugging Face repo id" in error["exception_message"]
