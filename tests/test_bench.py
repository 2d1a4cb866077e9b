"""The bench command end to end on a tiny size: table, JSON fields, sane ratios."""

from __future__ import annotations

import json

import torch

from unit_nodes.cli import main
from unit_nodes.tools import bench


def test_bench_cli_writes_sane_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    try:
        rc = main(["bench", "--presets", "digits32", "--sizes", "16", "--batch", "2", "--iters", "1",
                   "--threads", "1", "--paths", "eager,tuned,bf16", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    table = capsys.readouterr().out
    assert "digits32" in table and "eager" in table and "tuned" in table
    report = json.loads(out.read_text())
    assert report["machine"]["threads"] == 1 and report["machine"]["device"] == "cpu"
    rows = report["results"]
    assert [(r["preset"], r["size"], r["path"]) for r in rows] == [
        ("digits32", 16, "eager"), ("digits32", 16, "tuned"), ("digits32", 16, "bf16")]
    # on a CPU only the bf16 path autocasts; the tuned path stays exact fp32
    assert [r["train"]["autocast"] for r in rows] == [None, None, "bfloat16"]
    for r in rows:
        for key in ("batch1", "batch2"):
            t = r["translate"][key]
            assert t["ms_per_image"] > 0 and t["images_per_s"] > 0
            assert t["flops_per_image"] > 1e5  # a real network ran under the counter
            assert 0 < t["roofline_ratio"] < 5, t  # ratio to a matmul measured in the same run
            assert t["roofline_gflops"] > 0.1 and t["peak_memory_bytes"] > 0
        tr = r["train"]
        assert tr["ms_per_iteration"] > 0 and tr["batch"] == 2
        # one iteration: forward + backward of E/G and D, several times one translation
        assert tr["flops_per_iteration"] > 4 * r["translate"]["batch1"]["flops_per_image"]
        assert 0 < tr["roofline_ratio"] < 5
        assert 0 <= tr["overhead_share"] <= 1 and 0 <= tr["conv_matmul_share"] <= 1
    assert rows[0]["translate"]["channels_last"] is False and rows[1]["translate"]["channels_last"] is True
    assert rows[1]["translate"]["autocast"] is None  # autocast stays off on CPU


def test_roofline_and_flop_counter_are_real():
    g = bench.matmul_roofline(torch.device("cpu"), seconds=0.05)
    assert 0.1 < g < 1e5
    a = torch.randn(64, 32)
    assert bench.count_flops(lambda: a @ a.T) == 2 * 64 * 32 * 64
    assert bench.peak_rss_bytes() >= bench.current_rss_bytes() > 0


def _load_bench_script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shared_code_probe_tells_style_in_the_code_from_none(tmp_path):
    """The probe's domain classifier: near 100 % held out when the two sides' codes differ by a
    constant style offset, near 50 % when both sides are draws of one distribution; then the
    whole script on a tiny RGB pair and the real paired emoji test split."""
    import os
    import subprocess
    import sys

    from tiny import tiny_config
    from unit_nodes.core.networks import UNIT
    from unit_nodes.core.weights import save_model

    probe = _load_bench_script("shared_code_probe")
    g = torch.Generator().manual_seed(0)
    content = torch.randn(200, 8, 4, 4, generator=g)
    styled = probe.probe_accuracy(content + 0.05 * torch.randn(content.shape, generator=g),
                                  content + 1.0 + 0.05 * torch.randn(content.shape, generator=g))
    none = probe.probe_accuracy(torch.randn(200, 8, 4, 4, generator=g), torch.randn(200, 8, 4, 4, generator=g))
    assert styled > 0.95 and 0.35 < none < 0.65
    torch.manual_seed(0)
    model = UNIT(tiny_config(channels_a=3, channels_b=3, domain_a="emoji-google", domain_b="emoji-twitter"),
                 discriminators=False)
    save_model(model, tmp_path / "pair")
    script = probe.__file__
    run = subprocess.run([sys.executable, script, str(tmp_path / "pair")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("code: distance paired / unpaired") for line in lines)
    pixels = next(line for line in lines if line.startswith("pixels:"))
    ratio = float(pixels.split("distance paired / unpaired ")[1].split(";")[0])
    assert 0.2 < ratio < 0.8  # the real drawings: an emoji's twin is closer than another emoji's
    assert sum(line.startswith(("google -> twitter:", "twitter -> google:")) for line in lines) == 2


def test_emoji_target_sheet_puts_each_translation_between_its_input_and_the_true_drawing(tmp_path):
    """bench/emoji_target_sheet.py: Google | -> Twitter | Twitter | -> Google per emoji, on the real
    paired test split, so that its third tile is what the second should look like."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from tiny import tiny_config
    from unit_nodes.core import data
    from unit_nodes.core.images import tensor_to_pil
    from unit_nodes.core.networks import UNIT
    from unit_nodes.core.weights import save_model

    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=64, channels_a=3, channels_b=3, domain_a="emoji-google", domain_b="emoji-twitter"),
                 discriminators=False)
    save_model(model, tmp_path / "pair")
    script = Path(__file__).resolve().parent.parent / "bench" / "emoji_target_sheet.py"
    out = tmp_path / "sheet.png"
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "pair"), "--out", str(out), "--rows", "1",
                          "--every", "7", "--scale", "1"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    sheet = np.asarray(Image.open(out).convert("RGB"))
    header, pad = 14, 2
    assert sheet.shape == (header + 64 + 2 * pad, 8 * (64 + pad) + pad, 3)
    _, google, twitter = data.emoji_pairs("test", 64, None)

    def tile(column: int) -> np.ndarray:
        top, left = header + pad, pad + column * (64 + pad)
        return sheet[top:top + 64, left:left + 64]

    for column, truth in ((0, google[0]), (2, twitter[0]), (4, google[7]), (6, twitter[7])):
        assert np.array_equal(tile(column), np.asarray(tensor_to_pil(truth).convert("RGB")))
    assert not np.array_equal(tile(1), tile(0))  # a (random) translation, not its input
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "pair"), "--out", str(out), "--rows", "40"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert bad.returncode == 2 and "the test split has 474 emoji" in bad.stderr


def test_emoji_critic_probe_tells_a_style_apart_and_not_two_draws_of_one(tmp_path):
    """bench/emoji_critic_probe.py: its critic (emoji64's discriminator trained as a classifier) tells
    flat colour fields from the same fields with fine grain held out, and not two draws of one
    kind; then the whole script on the real emoji, against a tiny model's translations."""
    import os
    import subprocess
    import sys

    from tiny import tiny_config
    from unit_nodes.core.networks import UNIT
    from unit_nodes.core.weights import save_model

    probe = _load_bench_script("emoji_critic_probe")
    g = torch.Generator().manual_seed(0)

    def fields(n):  # flat colour blocks, 8 x 8 blocks of one colour each
        return torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g) * 2 - 1, scale_factor=8)

    def accuracy(real, other, test_real, test_other):
        torch.set_num_threads(1)
        dis = probe.train_probe(real, other, {}, steps=120, batch=8, augment="translation,cutout")
        t, o = probe.image_logits(dis, test_real).mean(0), probe.image_logits(dis, test_other).mean(0)
        return 0.5 * float((t > 0).float().mean() + (o < 0).float().mean())

    grain = lambda x: (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)  # noqa: E731
    styled = accuracy(fields(64), grain(fields(64)), fields(64), grain(fields(64)))
    same = accuracy(fields(64), fields(64), fields(64), fields(64))
    assert styled > 0.9 and 0.25 < same < 0.75

    torch.manual_seed(0)
    model = UNIT(tiny_config(image_size=64, channels_a=3, channels_b=3, domain_a="emoji-google", domain_b="emoji-twitter"),
                 discriminators=False)
    save_model(model, tmp_path / "pair")
    script, env = probe.__file__, {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, script, "--steps", "2", "--batch", "2", "--model", str(tmp_path / "pair")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert "474 Twitter emoji (real) against" in run.stdout and "translations of the same emoji drawn by Google" in run.stdout
    rows = [line.split() for line in run.stdout.splitlines() if line.split()[:1] in (["1"], ["2"], ["all"])]
    assert [row[0] for row in rows] == ["1", "2", "all"] and all(0 <= float(row[1].rstrip("%")) <= 100 for row in rows)
    for bad, message in ((["--frame-scale", "3"], "outside"), (["--fields", "dis_layers=x"], "dis_layers"),
                         (["--augment", "blur"], "unknown augmentation"), (["--steps", "0"], "at least 1")):
        refused = subprocess.run([sys.executable, script, *bad], capture_output=True, text=True, timeout=300, env=env)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    small = tmp_path / "small"
    save_model(UNIT(tiny_config(image_size=32, channels_a=3, channels_b=3, domain_a="emoji-google",
                                domain_b="emoji-twitter"), discriminators=False), small)
    refused = subprocess.run([sys.executable, script, "--steps", "1", "--model", str(small)], capture_output=True,
                             text=True, timeout=300, env=env)
    assert refused.returncode == 2 and "trained at 32 px" in refused.stderr
