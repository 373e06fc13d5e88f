"""train.ema: the moving average of the weights, by hand, and the trainer's use of it."""
from __future__ import annotations

import pytest
import torch
from conftest import assert_states_equal, synthetic_trainer, synthetic_training

from zslkit import ParamError, config
from zslkit.model.checkpoints import load_checkpoint
from zslkit.model.ema import WeightAverage


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


@pytest.mark.parametrize("step, expected", [(0, 0.1), (8, 0.5), (10_000, 0.99)])
def test_the_rate_warms_up_to_the_decay(step, expected):
    assert WeightAverage(_net(), 0.99).rate(step) == pytest.approx(expected)


def test_update_by_hand_and_integer_entries_copied():
    net = _net()
    avg = WeightAverage(net, 0.9)
    before = {k: v.clone() for k, v in avg.state_dict().items()}
    with torch.no_grad():
        for q in net.parameters():
            q.add_(1.0)
    net.train()(torch.randn(8, 3))  # moves the running statistics and the batch count
    avg.update(net, step=1000)      # past the warm-up: d = 0.9
    now = net.state_dict()
    for k, v in avg.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * now[k])
        else:
            assert v.item() == now[k].item() == 1  # num_batches_tracked
    assert not any(q.requires_grad for q in avg.module.parameters()) and not avg.module.training


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match=repr(decay)):
        WeightAverage(_net(), decay)


def test_the_parameter_is_checked_with_its_range(tmp_path):
    assert config.resolve({}, root=tmp_path)["train"]["ema"] == 0.0
    with pytest.raises(ParamError, match="train.ema"):
        config.resolve({"train": {"ema": 1.0}}, root=tmp_path)


@pytest.fixture
def syn(tmp_path):
    return synthetic_training(tmp_path, max_epochs=3)


def _trainer(syn, out, drop=False, **train):
    return synthetic_trainer(syn, out, "ema" if drop else None, **train)


def test_no_average_trains_bit_for_bit_as_before(syn, tmp_path):
    before = _trainer(syn, tmp_path / "a", drop=True)
    now = _trainer(syn, tmp_path / "b", ema=0.0)
    assert now.ema is None and "ema" not in now.made_with["train"]
    assert now.digest == before.digest  # checkpoints made before the key existed resume
    assert before.run_epoch(progress=False)["train_loss"] == now.run_epoch(progress=False)["train_loss"]
    assert_states_equal(before.net.state_dict(), now.net.state_dict())


@pytest.mark.slow
def test_the_average_is_validated_kept_and_resumed(syn, tmp_path):
    probe = _trainer(syn, tmp_path / "probe", ema=0.9)
    probe.run_epoch(progress=False)
    averaged = probe.validate()  # validation scores the average, not the trained weights
    probe.ema = None
    assert probe.validate() != averaged
    full = _trainer(syn, tmp_path / "full", ema=0.9)
    assert full.made_with["train"]["ema"] == 0.9 and full.digest != _trainer(syn, tmp_path / "x").digest
    full.fit(progress=False, max_epochs=3)
    part = _trainer(syn, tmp_path / "part", ema=0.9)
    part.fit(progress=False, max_epochs=1)
    # the first epoch is the best so far: best.pt holds the average, not the trained weights
    net, info = load_checkpoint(part.out / "best.pt")
    assert info["epoch"] == part.state["best_epoch"] == 1
    assert_states_equal(net.state_dict(), part.ema.state_dict())
    assert not torch.equal(net.state_dict()["tag.net.weight"], part.net.state_dict()["tag.net.weight"])
    resumed = _trainer(syn, tmp_path / "part", ema=0.9)
    resumed.fit(progress=False, max_epochs=3)
    assert_states_equal(full.net.state_dict(), resumed.net.state_dict())
    assert_states_equal(full.ema.state_dict(), resumed.ema.state_dict())
    with pytest.raises(ParamError, match=r"train.ema: 0.9 in the checkpoint, 0.99 now"):
        _trainer(syn, tmp_path / "part", ema=0.99).fit(progress=False, max_epochs=4)
