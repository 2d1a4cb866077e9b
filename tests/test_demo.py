"""`python -m unit_nodes demo` with the bundled pairs, and its grid on a tiny pair."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tiny import tiny_config
from unit_nodes.core.networks import UNIT
from unit_nodes.core.sources import bundled_pairs
from unit_nodes.core.weights import save_model
from unit_nodes.demo import pair_grid

ROOT = Path(__file__).resolve().parents[1]


def run_demo(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "unit_nodes", "demo", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_demo_writes_one_grid_per_bundled_pair(tmp_path):
    pairs = bundled_pairs()
    if not pairs:
        pytest.skip("no bundled pairs in weights/ (train and export them first; see docs/RESULTS.md)")
    out = run_demo("--out", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    for name, folder in pairs.items():
        grid = tmp_path / "demo" / f"{name}.png"
        assert grid.is_file(), f"no grid for {name}"
        n_samples = len(list((folder / "samples" / "a").iterdir()))
        with Image.open(grid) as img:
            assert img.mode == "RGB" and img.height > n_samples * 32 and img.width > 6 * 32


def test_pair_grid_layout_on_a_tiny_pair(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(channels_a=1, channels_b=3).replace(domain_a="gray", domain_b="colour")
    folder = tmp_path / "tiny-pair"
    save_model(UNIT(cfg, discriminators=False), folder, include_discriminators=False)
    for side, channels, count in (("a", "L", 3), ("b", "RGB", 2)):
        (folder / "samples" / side).mkdir(parents=True)
        for i in range(count):
            Image.new(channels, (16 + 8 * i, 16), 40 * i if channels == "L" else (40 * i, 10, 200)).save(
                folder / "samples" / side / f"{i}.png")
    grid = pair_grid(folder, scale=2)
    # 6 columns of 32 px tiles (16 px x2) with 2 px gaps; a 14 px header; one row per sample of the longer side
    assert grid.size == (6 * (32 + 2) + 2, 14 + 3 * (32 + 2) + 2)


def test_pair_without_samples_and_unknown_pair_are_clear_errors(tmp_path):
    folder = tmp_path / "bare"
    save_model(UNIT(tiny_config(), discriminators=False), folder, include_discriminators=False)
    with pytest.raises(FileNotFoundError, match="no sample images"):
        pair_grid(folder)
    out = run_demo("--pair", "no-such-pair", "--out", str(tmp_path / "x"))
    if not bundled_pairs():
        assert out.returncode == 2 and "no bundled pairs" in out.stderr
    else:
        assert out.returncode == 2 and "unknown pair" in out.stderr and "no-such-pair" in out.stderr
