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
