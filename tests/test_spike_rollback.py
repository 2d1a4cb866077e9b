"""config.spike_rollback: a run whose reconstruction errors spike is rolled back to a recent
healthy copy of its state, exactly across a resume, and a run without a spike is untouched."""

from __future__ import annotations

import pytest
import torch

from tiny import TensorImages, shapes_and_inversions, tiny_config
from unit_nodes.core.config import ConfigError
from unit_nodes.core.networks import UNIT
from unit_nodes.core.rollback import SpikeGuard
from unit_nodes.core.trainer import Trainer

BLOW_UP_AT = 9  # after this step the generators' weights are blown up, as by one bad Adam update


@pytest.fixture
def small_guard(monkeypatch):
    """The guard's timing scaled to a 16-step run: averages over about 2 steps, copies from step 4,
    every 2 steps, two spikes in a row."""
    monkeypatch.setattr(SpikeGuard, "HORIZON", 2.0)
    monkeypatch.setattr(SpikeGuard, "WARMUP", 4)
    monkeypatch.setattr(SpikeGuard, "INTERVAL", 2)
    monkeypatch.setattr(SpikeGuard, "STREAK", 2)


def _data():
    a, b = shapes_and_inversions(24)
    return TensorImages(a), TensorImages(b)


def _blow_up(trainer: Trainer) -> None:
    """What a breakdown looks like: every generator paints its images with the colours swapped
    (the sign of its last layer, before the tanh, flipped)."""
    with torch.no_grad():
        for d in ("a", "b"):
            last = [m for m in trainer.model.gen[d].private.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            last.weight.neg_()
            last.bias.neg_()


def _run(cfg, steps: int, blow_up_at: int | None, seen: dict | None = None, trainer: Trainer | None = None,
         checkpoint=None) -> Trainer:
    """Train to ``steps``; after step ``blow_up_at`` the generators blow up. ``seen`` gets
    (losses, E+G weights) after every step."""
    ds_a, ds_b = _data()
    if trainer is None:
        torch.manual_seed(1)
        trainer = Trainer(UNIT(cfg), device="cpu", seed=3)

    def on_step(report):
        if seen is not None:
            seen[report.step] = (report.losses, {k: v.clone() for k, v in trainer.model.gen.state_dict().items()})
        if report.step == blow_up_at:
            _blow_up(trainer)

    trainer.fit(ds_a, ds_b, steps, batch_size=4, callback=on_step, checkpoint_path=checkpoint)
    return trainer


def test_a_spike_rolls_the_run_back_to_its_last_healthy_copy_and_training_goes_on(small_guard):
    cfg = tiny_config(ema_decay=0.9, lr=4e-3, spike_rollback=2.0)
    seen: dict = {}
    trainer = _run(cfg, 16, BLOW_UP_AT, seen)
    # losses of step 10 and 11 come from the blown-up weights (spikes); the copy taken after step 8
    # was confirmed by step 9's healthy losses, the one after step 10 never was
    assert seen[10][0]["recon_a"] > 2 * seen[9][0]["recon_a"]
    assert trainer.spike_guard.rollbacks == [{"step": 11, "to": 8}]
    for k, v in seen[11][1].items():  # right after the rollback: the weights of step 8 again
        assert torch.equal(v, seen[8][1][k]), k
    # and training goes on from there, healthy (no second rollback, errors back at their level)
    assert seen[12][0]["recon_a"] < 2 * seen[9][0]["recon_a"]
    assert trainer.step == 16


def test_without_a_spike_the_guard_changes_nothing(small_guard):
    ds_a, ds_b = _data()
    runs = []
    for factor in (0.0, 4.0):
        torch.manual_seed(1)
        t = Trainer(UNIT(tiny_config(ema_decay=0.9, spike_rollback=factor)), device="cpu", seed=3)
        t.fit(ds_a, ds_b, 12, batch_size=4)
        runs.append(t)
    plain, guarded = runs
    assert guarded.spike_guard.good is not None and guarded.spike_guard.rollbacks == []
    for part in ("model", "ema"):
        s, g = getattr(plain, part).state_dict(), getattr(guarded, part).state_dict()
        for k in s:
            assert torch.equal(s[k], g[k]), (part, k)


@pytest.mark.parametrize("stop_at", [8, 10])  # with a copy waiting for its check; mid-spike, a copy kept
def test_a_run_resumed_from_a_checkpoint_rolls_back_exactly_as_one_never_interrupted(small_guard, tmp_path, stop_at):
    cfg = tiny_config(ema_decay=0.9, lr=4e-3, spike_rollback=2.0)
    straight = _run(cfg, 14, BLOW_UP_AT)
    ckpt = tmp_path / "ck.safetensors"
    first = _run(cfg, stop_at, BLOW_UP_AT, checkpoint=ckpt)
    assert (first.spike_guard.pending is not None) == (stop_at == 8)
    torch.manual_seed(999)
    resumed = _run(cfg, 14, BLOW_UP_AT, trainer=Trainer.from_checkpoint(ckpt, device="cpu", seed=3))
    assert resumed.spike_guard.rollbacks == straight.spike_guard.rollbacks == [{"step": 11, "to": 8}]
    for part in ("model", "ema"):
        s, r = getattr(straight, part).state_dict(), getattr(resumed, part).state_dict()
        for k in s:
            assert torch.equal(s[k], r[k]), (part, k)


def test_the_guard_keeps_copies_only_once_checked_drops_them_at_a_new_phase_and_gives_up_after_five():
    guard = SpikeGuard(4.0)
    taken = []

    def capture():
        taken.append(len(taken))
        return ({"w": torch.tensor([float(len(taken))])}, {})

    def step(n, recon):
        spike = guard.is_spike({"recon_a": recon, "recon_b": recon})
        return spike, guard.after_step(n, spike, capture)

    for n in range(1, 501):
        assert step(n, 0.05) == (False, None)
    assert guard.pending is not None and guard.pending[0] == 500 and guard.good is None
    step(501, 0.05)
    assert guard.good[0] == 500 and guard.pending is None
    for n in range(502, 601):
        step(n, 0.05)
    assert guard.pending[0] == 600
    assert step(601, 0.9) == (True, None)  # the copy of step 600 gave a spike: dropped
    assert guard.pending is None and guard.good[0] == 500
    assert step(602, 0.15) == (False, None)  # 3x: not a spike, and the streak starts again
    assert step(603, 0.9)[1] is None and step(604, 0.9)[1] is None
    spike, copy_ = step(605, 0.9)
    assert spike and copy_[0] == 500 and guard.rollbacks == [{"step": 605, "to": 500}]
    assert "spiked at step 605" in guard.note_for(605) and "copy of step 500" in guard.note_for(605)
    assert guard.note_for(604) is None and guard.note_for(606) is None  # what train and Train UNIT print, once
    guard.new_phase()  # a restart: the copy from before it would undo the fresh D
    assert [step(n, 0.9)[1] for n in range(606, 612)] == [None] * 6
    guard.good, guard.streak = (700, ({}, {})), 0
    guard.rollbacks += [{"step": 0, "to": 0}] * 3
    assert [step(n, 0.9)[1] is not None for n in range(612, 621)] == [False, False, True] + [False] * 6
    assert len(guard.rollbacks) == SpikeGuard.MAX_ROLLBACKS


@pytest.mark.parametrize("bad", [1.2, -1.0, 1000.0])
def test_spike_rollback_must_be_off_or_a_factor_that_means_a_spike(bad):
    with pytest.raises(ConfigError, match="spike_rollback"):
        tiny_config(spike_rollback=bad)
