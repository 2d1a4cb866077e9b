"""One training-run policy (core/run.py) behind both frontends: the CLI's ``train`` and the Train
UNIT node, given the same requests, train with the same configs and refuse the same changes.

The CLI runs in this process (``cli.main``), the node in a real ComfyUI server; both train a
tiny model for a step or two on the same gray images.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_harness import execution_error
from tiny import tiny_config
from unit_nodes import cli
from unit_nodes.core import run
from unit_nodes.core.config import ConfigError, preset
from unit_nodes.core.networks import UNIT
from unit_nodes.core.checkpoint import CHECKPOINT_FILE, save_training_state
from unit_nodes.core.trainer import Trainer
from unit_nodes.core.weights import load_model, read_config, read_safetensors, save_model

INIT = "run-policy-init"  # a tiny gray model in the server's models/unit, the init model of both frontends
CYCLE_LABELS = {"ab": "both (paper)", "a": "A->B->A only", "b": "B->A->B only"}


# --- the policy itself ----------------------------------------------------------------------
def test_init_config_keeps_the_architecture_and_honours_every_other_field():
    base = tiny_config(ema_decay=0.0)
    cfg = run.init_config(base, {"cycle_domains": "a", "lambda_gan": 1.0, "image_size": 32, "channels_a": 1})
    assert (cfg.cycle_domains, cfg.lambda_gan, cfg.image_size) == ("a", 1.0, 32)
    assert {k: getattr(cfg, k) for k in run.ARCHITECTURE_FIELDS} == {k: getattr(base, k) for k in run.ARCHITECTURE_FIELDS}
    with pytest.raises(run.RunSettingsError, match=r"the model has base_channels=8 \(requested: 16\)") as caught:
        run.init_config(base, {"base_channels": 16, "lr": 1e-3}, source="the model")
    assert caught.value.fields == {"base_channels": (8, 16)}
    with pytest.raises(ConfigError, match="unknown UNIT config field"):
        run.init_config(base, {"no_such_field": 1})


def test_every_architecture_field_shapes_the_networks():
    # each field listed in ARCHITECTURE_FIELDS changes the weights' shapes or the computation that reads them
    base = tiny_config()
    other = dict(channels_a=3, channels_b=3, base_channels=4, n_downsample=1, n_res_blocks=3, n_shared=2,
                 code_gain=2.0, norm="instance", upsample="nearest", dis_channels=8, dis_layers=1, dis_scales=2, dis_shared_layers=1,
                 dis_norm="batch")
    assert set(other) == set(run.ARCHITECTURE_FIELDS)

    def layout(cfg):
        return {k: (tuple(v.shape), type(m).__name__) for m in [UNIT(cfg)] for k, v in m.state_dict().items()}, \
            [(type(m).__name__, getattr(m, "code_gain", None)) for m in UNIT(cfg).modules()]

    for name, value in other.items():
        assert layout(base.replace(**{name: value})) != layout(base), name


def test_resume_changes_only_the_schedule_and_keeps_the_runs_notes():
    saved = tiny_config(extra={"note": "the run's own"})
    assert run.resume_changes(saved, {"total_steps": 9, "lr": 5e-5, "image_size": saved.image_size,
                                      "extra": {}}) == {"lr": 5e-5, "total_steps": 9}
    with pytest.raises(run.RunSettingsError, match=r"dis_layers=2 \(requested: 3\).*only the learning-rate schedule"):
        run.resume_changes(saved, {"dis_layers": 3, "lr": 5e-5})


def test_a_resume_at_another_batch_size_is_refused_and_an_old_checkpoint_takes_any(tmp_path):
    trainer = run.start_trainer(tiny_config(), seed=0)
    images = [(torch.rand(1, 16, 16) * 2 - 1, 0) for _ in range(4)]
    trainer.fit(images, images, 1, batch_size=3)
    ckpt = save_training_state(trainer, tmp_path / CHECKPOINT_FILE)
    run.check_resume_batch_size(ckpt, 3)
    with pytest.raises(run.RunSettingsError, match=r"batch_size=3 \(requested: 2\)") as caught:
        run.check_resume_batch_size(ckpt, 2)
    assert caught.value.fields == {"batch_size": (3, 2)}
    trainer.batch_size = None  # what a checkpoint written before 2026-12-04 holds
    run.check_resume_batch_size(save_training_state(trainer, tmp_path / "old.safetensors"), 2)


# --- the same requests through the CLI and the node ------------------------------------------
@pytest.fixture(scope="module")
def server(comfyui_server):
    problem = comfyui_server.pack_load_problem()
    assert problem is None, f"ComfyUI did not load the pack:\n{problem}"
    torch.manual_seed(0)
    save_model(UNIT(tiny_config(), discriminators=False), comfyui_server.models_dir / "unit" / INIT)
    g = np.random.default_rng(0)
    for domain in ("a", "b"):
        folder = comfyui_server.input_dir / "run_policy" / domain
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(4):
            Image.fromarray((g.random((16, 16)) * 255).astype(np.uint8), "L").save(folder / f"{i}.png")
    return comfyui_server


def node_request(server, save_name, *, steps, lr, image_size=16, channels="gray", cycle="ab", preset_name="digits32",
                 init=None, batch_size=2, anchor=0.0) -> dict:
    train = {"class_type": "UNITTrain", "inputs": dict(
        folder_a="run_policy/a", folder_b="run_policy/b", save_name=save_name, steps=steps, batch_size=batch_size,
        image_size=image_size, learning_rate=lr, seed=0, preset=preset_name, channels=channels, preview_every=0,
        cycle=CYCLE_LABELS[cycle], colour_anchor=anchor)}
    graph = {"1": train, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}}}
    if init:
        graph["3"] = {"class_type": "UNITLoadModel", "inputs": {"model_name": init}}
        train["inputs"]["init_model"] = ["3", 0]
    return graph


def cli_request(server, out, *, steps, lr, image_size=16, channels=1, cycle="ab", preset_name="digits32",
                init=None, anchor=0.0, extra=()) -> list:
    """The CLI's spelling of node_request (the node always asks for all of these)."""
    args = ["train", "--domain-a", server.input_dir / "run_policy" / "a", "--domain-b",
            server.input_dir / "run_policy" / "b", "--out", out, "--steps", steps, "--batch-size", 2,
            "--size", image_size, "--seed", 0, "--preset", preset_name, "--channels-a", channels,
            "--channels-b", channels, "--set", f"cycle_domains={cycle}", "--set", f"lambda_identity={anchor}",
            "--sample-every", 0, "--log-every", 1]
    if lr:  # the node's learning_rate 0 is the CLI's absent --lr: the recipe's own rate
        args += ["--lr", lr]
    if init:
        args += ["--init", server.models_dir / "unit" / init]
    return [str(a) for a in [*args, *extra]]


def run_cli(capsys, args) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(args)
    return code, capsys.readouterr().err


def exported(folder: Path) -> tuple[dict, dict]:
    """(config, export metadata) of the model a run saved."""
    meta = read_safetensors(folder / "model.safetensors")[1]
    return read_config(folder).to_dict(), meta


def same_export(node_dir: Path, cli_dir: Path) -> dict:
    (node_cfg, node_meta), (cli_cfg, cli_meta) = exported(node_dir), exported(cli_dir)
    assert node_cfg == cli_cfg
    assert node_meta["trained_steps"] == cli_meta["trained_steps"]
    assert node_meta["precision"] == cli_meta["precision"]  # both default to 'auto'
    for key in ("domain_a_source", "domain_b_source"):
        assert Path(node_meta[key]).resolve() == Path(cli_meta[key]).resolve()
    changes = [json.loads(m.get("schedule_changes", "[]")) for m in (node_meta, cli_meta)]
    assert changes[0] == changes[1]
    return node_cfg


def node_error(server, graph) -> str:
    info = execution_error(server, graph)
    assert info["node_type"] == "UNITTrain", info
    return info["exception_message"]


def cli_error(capsys, args) -> str:
    code, err = run_cli(capsys, args)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


@pytest.mark.comfyui
@pytest.mark.slow
def test_new_and_resumed_runs_get_the_same_config_and_refusals_from_cli_and_node(server, capsys, tmp_path):
    node_dir, cli_dir = server.models_dir / "unit" / "policy-new", tmp_path / "policy-new"

    # a new run from a preset with overrides
    server.run(node_request(server, "policy-new", steps=2, lr=3e-4, cycle="a"), timeout=240)
    code, err = run_cli(capsys, cli_request(server, cli_dir, steps=2, lr=3e-4, cycle="a"))
    assert code == 0, err[-3000:]
    cfg = same_export(node_dir, cli_dir)
    assert cfg == {**preset("digits32", channels_a=1, channels_b=1, image_size=16, lr=3e-4, total_steps=2,
                            cycle_domains="a").to_dict()}

    # a resume with a new learning rate (the node's `steps` is also the run's horizon, the CLI's
    # --steps is not: --set total_steps says so)
    server.run(node_request(server, "policy-new", steps=3, lr=5e-5, cycle="a"), timeout=240)
    code, err = run_cli(capsys, cli_request(server, cli_dir, steps=3, lr=5e-5, cycle="a",
                                            extra=("--resume", "--set", "total_steps=3")))
    assert code == 0, err[-3000:]
    cfg = same_export(node_dir, cli_dir)
    assert (cfg["lr"], cfg["total_steps"]) == (5e-5, 3)
    assert json.loads(exported(cli_dir)[1]["schedule_changes"]) == [{"step": 2, "lr": 5e-5, "total_steps": 3}]
    for folder in (node_dir, cli_dir):
        assert Trainer.from_checkpoint(folder / CHECKPOINT_FILE).step == 3

    # a resume that would change what is trained: refused by both, naming the field, nothing written
    before = {f: (f / CHECKPOINT_FILE).read_bytes() for f in (node_dir, cli_dir)}
    refusals = [node_error(server, node_request(server, "policy-new", steps=4, lr=5e-5, cycle="a", image_size=32)),
                cli_error(capsys, cli_request(server, cli_dir, steps=4, lr=5e-5, cycle="a", image_size=32,
                                              extra=("--resume",)))]
    for message in refusals:
        assert "the run was trained with image_size=16 (requested: 32); only the learning-rate schedule" in message
    # the node always states a batch size: one other than the run's is refused (the CLI continues at
    # the run's own without --batch-size: tests/test_bad_inputs.py)
    message = node_error(server, node_request(server, "policy-new", steps=4, lr=5e-5, cycle="a", batch_size=3))
    assert "the run was trained with batch_size=2 (requested: 3)" in message and "another save_name" in message
    assert before == {f: (f / CHECKPOINT_FILE).read_bytes() for f in (node_dir, cli_dir)}


@pytest.mark.comfyui
@pytest.mark.slow
def test_the_node_resumes_a_run_whose_preset_recipe_changed_since_and_refuses_another_preset(server, capsys):
    """A run keeps the training settings it began with: emoji64 gained lambda_edges=100 in
    session 35, and Train UNIT runs begun before must still resume from the node (which has no
    input for it). Stood in for here by a digits32 run begun with another edge weight than the
    preset's; asking for another preset is still refused, naming it."""
    run_dir = server.models_dir / "unit" / "policy-recipe"
    code, err = run_cli(capsys, cli_request(server, run_dir, steps=2, lr=3e-4, extra=("--set", "lambda_edges=5")))
    assert code == 0, err[-3000:]
    server.run(node_request(server, "policy-recipe", steps=3, lr=3e-4), timeout=240)
    assert Trainer.from_checkpoint(run_dir / CHECKPOINT_FILE).step == 3
    assert read_config(run_dir).lambda_edges == 5.0 and preset("digits32").lambda_edges == 0.0
    before = (run_dir / CHECKPOINT_FILE).read_bytes()
    message = node_error(server, node_request(server, "policy-recipe", steps=4, lr=3e-4, preset_name="emoji64"))
    assert "preset=digits32 (requested: emoji64)" in message
    assert (run_dir / CHECKPOINT_FILE).read_bytes() == before


@pytest.mark.comfyui
@pytest.mark.slow
def test_learning_rate_0_is_the_recipes_own_rate_for_cli_and_node(server, capsys, tmp_path):
    """Train UNIT's default learning_rate 0 means the preset's rate (not emoji64's for every
    preset) and, on resume, the run's own rate: the same as leaving out the CLI's --lr."""
    node_dir, cli_dir = server.models_dir / "unit" / "policy-rate", tmp_path / "policy-rate"
    server.run(node_request(server, "policy-rate", steps=1, lr=0), timeout=240)
    code, err = run_cli(capsys, cli_request(server, cli_dir, steps=1, lr=0))
    assert code == 0, err[-3000:]
    cfg = same_export(node_dir, cli_dir)
    assert cfg["lr"] == preset("digits32").lr == 1e-4 != preset("emoji64").lr

    # a resume with a new rate, then one with 0: the second keeps the rate the run has
    server.run(node_request(server, "policy-rate", steps=2, lr=5e-5), timeout=240)
    server.run(node_request(server, "policy-rate", steps=3, lr=0), timeout=240)
    cfg, meta = exported(node_dir)
    assert (cfg["lr"], cfg["total_steps"]) == (5e-5, 3)
    assert json.loads(meta["schedule_changes"]) == [{"step": 1, "lr": 5e-5, "total_steps": 2},
                                                    {"step": 2, "total_steps": 3}]


@pytest.mark.comfyui
@pytest.mark.slow
def test_init_from_a_model_gets_the_same_config_and_refusals_from_cli_and_node(server, capsys, tmp_path):
    node_dir, cli_dir = server.models_dir / "unit" / "policy-init", tmp_path / "policy-init"
    init = load_model(server.models_dir / "unit" / INIT)

    # the init model's architecture, the requested cycle (once dropped by the CLI) and training fields;
    # the preset (emoji64 here) only picks defaults the request does not use
    server.run(node_request(server, "policy-init", steps=1, lr=2e-4, cycle="a", preset_name="emoji64", init=INIT,
                            anchor=30.0), timeout=240)
    code, err = run_cli(capsys, cli_request(server, cli_dir, steps=1, lr=2e-4, cycle="a", preset_name="emoji64",
                                            init=INIT, anchor=30.0))
    assert code == 0, err[-3000:]
    cfg = same_export(node_dir, cli_dir)
    assert cfg == init.config.replace(cycle_domains="a", lr=2e-4, total_steps=1, lambda_identity=30.0).to_dict()
    # both started from the init model's weights (one step of lr 2e-4 moves them little; a fresh
    # initialisation would be far away)
    for folder in (node_dir, cli_dir):
        trained = dict(load_model(folder).named_parameters())
        for key, value in init.named_parameters():
            torch.testing.assert_close(trained[key], value, atol=0.05, rtol=0)

    # a request that would change the init model's architecture: refused by both, naming the field
    node_message = node_error(server, node_request(server, "policy-init-rgb", steps=1, lr=2e-4, channels="rgb",
                                                   init=INIT))
    cli_message = cli_error(capsys, cli_request(server, tmp_path / "policy-init-rgb", steps=1, lr=2e-4, channels=3,
                                                init=INIT))
    for message in (node_message, cli_message):
        assert "has channels_a=1 (requested: 3), channels_b=1 (requested: 3): a run that starts from a model's " \
               "weights keeps its architecture" in message
    assert node_message.startswith("init_model has") and "--init " in cli_message
    set_message = cli_error(capsys, cli_request(server, tmp_path / "policy-init-wide", steps=1, lr=2e-4, init=INIT,
                                                extra=("--set", "base_channels=16")))
    assert "base_channels=8 (requested: 16)" in set_message
    assert not (tmp_path / "policy-init-rgb").exists() and not (tmp_path / "policy-init-wide").exists()
    assert not (server.models_dir / "unit" / "policy-init-rgb" / CHECKPOINT_FILE).exists()
