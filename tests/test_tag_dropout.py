"""train.tag_dropout: dropout on the tag branch's input, in training only."""
from __future__ import annotations

import pytest
import torch
from conftest import assert_states_equal, synthetic_trainer, synthetic_training

from zslkit import ParamError, config
from zslkit.model.checkpoints import load_checkpoint
from zslkit.model.networks import TagBranch


@pytest.mark.parametrize("hidden", [None, 8])
def test_the_branch_drops_entries_in_training_only(hidden):
    torch.manual_seed(0)
    branch = TagBranch(50, out_dim=4, hidden=hidden, dropout=0.5)
    plain = TagBranch(50, out_dim=4, hidden=hidden)
    plain.load_state_dict(branch.state_dict())  # no parameter of its own: the same state dict
    v = torch.randn(3, 50)
    branch.eval()
    torch.testing.assert_close(branch(v), plain(v), rtol=0, atol=0)
    branch.train()
    seen = []
    branch.net.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    branch(v)
    dropped = seen[0] == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half the entries
    torch.testing.assert_close(seen[0][~dropped], 2 * v[~dropped])  # the others scaled by 1 / (1 - p)
    branch.dropout_seed = 7  # a seeded mask: the same for the same seed, another for another
    branch(v), branch(v)
    branch.dropout_seed = 8
    branch(v)
    assert torch.equal(seen[1], seen[2]) and not torch.equal(seen[1], seen[3])


def test_the_parameter_is_checked_with_its_range(tmp_path):
    assert config.resolve({}, root=tmp_path)["train"]["tag_dropout"] == 0.0
    with pytest.raises(ParamError, match=r"train.tag_dropout.*0.95"):
        config.resolve({"train": {"tag_dropout": 0.95}}, root=tmp_path)


@pytest.fixture
def syn(tmp_path):
    return synthetic_training(tmp_path, hidden=16, max_epochs=2)


def _trainer(syn, out, drop=False, **train):
    return synthetic_trainer(syn, out, "tag_dropout" if drop else None, **train)


def test_no_dropout_trains_bit_for_bit_as_before(syn, tmp_path):
    before = _trainer(syn, tmp_path / "a", drop=True)
    now = _trainer(syn, tmp_path / "b", tag_dropout=0.0)
    assert now.net.tag.dropout == 0 and "tag_dropout" not in now.made_with["train"]
    assert now.digest == before.digest  # checkpoints made before the key existed resume
    assert before.run_epoch(progress=False)["train_loss"] == now.run_epoch(progress=False)["train_loss"]
    assert_states_equal(before.net.state_dict(), now.net.state_dict())


def test_dropout_changes_training_is_digested_and_reloads_without_it(syn, tmp_path):
    plain = _trainer(syn, tmp_path / "a")
    dropped = _trainer(syn, tmp_path / "b", tag_dropout=0.3)
    assert dropped.net.tag.dropout == 0.3 and dropped.made_with["train"]["tag_dropout"] == 0.3
    assert dropped.digest != plain.digest
    plain.fit(progress=False, max_epochs=1)
    dropped.fit(progress=False, max_epochs=1)
    assert not torch.equal(plain.net.state_dict()["tag.net.0.weight"], dropped.net.state_dict()["tag.net.0.weight"])
    net, _ = load_checkpoint(dropped.out / "best.pt")  # the checkpoint loads into the plain branch, eval mode
    assert net.tag.dropout == 0 and not net.training
    assert_states_equal(net.state_dict(), dropped.net.state_dict())
    with pytest.raises(ParamError, match=r"train.tag_dropout: 0.3 in the checkpoint, 0.5 now"):
        _trainer(syn, tmp_path / "b", tag_dropout=0.5).fit(progress=False, max_epochs=2)


def test_a_resumed_run_draws_the_masks_an_uninterrupted_one_does(syn, tmp_path):
    full = _trainer(syn, tmp_path / "full", tag_dropout=0.3)
    full.fit(progress=False, max_epochs=2)
    part = _trainer(syn, tmp_path / "part", tag_dropout=0.3)
    part.fit(progress=False, max_epochs=1)
    torch.manual_seed(123)  # the global generator is not what the masks come from
    resumed = _trainer(syn, tmp_path / "part", tag_dropout=0.3)
    resumed.fit(progress=False, max_epochs=2)
    assert resumed.state["epoch"] == 2
    assert_states_equal(full.net.state_dict(), resumed.net.state_dict())


def test_the_classifier_leaves_it_out_of_its_digest(syn, tmp_path):
    plain = synthetic_trainer(syn, tmp_path / "a", kind="classifier")
    dropped = synthetic_trainer(syn, tmp_path / "b", kind="classifier", tag_dropout=0.3)
    assert "tag_dropout" not in dropped.made_with["train"] and dropped.digest == plain.digest
