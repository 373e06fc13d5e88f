"""Feeding the device: crops gathered on the device equal the host path's, batch for batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic_dataset

from zslkit import ParamError, config
from zslkit.data.melpack import build_pack
from zslkit.data.splits import prepare_split
from zslkit.model.feed import DeviceBatches, DevicePack, choose_feed
from zslkit.model.train import seen_vectors
from zslkit.model.trainer import Trainer

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def pack(tmp_path):
    rng = np.random.default_rng(0)
    files, ids = [], []
    for i, n in enumerate([50, 7, 130, 131, 300]):  # clips shorter than a crop are tiled
        f = tmp_path / f"m{i}.npy"
        np.save(f, rng.normal(size=(n, 16)).astype(np.float16))
        files.append(str(f))
        ids.append(f"t{i}")
    return build_pack(ids, files, tmp_path / "packs", progress=False)


@pytest.mark.parametrize("device", DEVICES)
def test_device_crops_equal_the_host_crops(pack, device):
    dev = DevicePack(pack, torch.device(device))
    idx = np.array([0, 1, 1, 2, 3, 4, 4])
    starts = np.array([0, 0, 0, 0, 1, 170, 0])
    for length in (8, 130):
        host = pack.crops(idx, np.minimum(starts, np.maximum(pack.n_frames[idx] - length, 0)), length)
        got = dev.crops(idx, np.minimum(starts, np.maximum(pack.n_frames[idx] - length, 0)), length)
        assert got.device.type == device and got.dtype == torch.float16
        np.testing.assert_array_equal(got.cpu().numpy(), host)
    assert dev.nbytes == pack.frames.size * 2


@pytest.fixture
def syn(tmp_path):
    ds = synthetic_dataset(tmp_path / "ds", n_tracks=80)
    P = config.resolve({"split": {"stratify": "none", "seed": 2}, "model": {"sideinfo": "random"},
                        "train": {"batch_size": 16, "workers": 0, "max_epochs": 2, "optimizer": "adam",
                                  "negatives": 2}}, root=tmp_path)
    return ds, prepare_split(ds, P["split"]), P


def _trainer(syn, out, **train):
    ds, split, P = syn
    P = {**P, "train": {**P["train"], **train}}
    return Trainer(ds, split, seen_vectors(ds, split, "random"), P, out, seed=0, kind="joint", sideinfo="random")


@pytest.mark.parametrize("device", DEVICES)
def test_device_batches_are_the_host_batches(syn, tmp_path, device):
    tr = _trainer(syn, tmp_path / "t", feed="device", device=device)
    assert tr.feed == "device"
    for source in (tr.train_src, tr.valid_src):
        source.set_epoch(3)
        on_device = list(DeviceBatches(source, DevicePack(source.pack, torch.device(device))))
        assert len(on_device) == len(source) > 0
        for b, got in enumerate(on_device):
            for g, h in zip(got, source[(3, b)]):
                assert g.device.type == device
                np.testing.assert_array_equal(g.cpu().numpy(), h.numpy())


def test_both_feeds_train_the_same_model(syn, tmp_path):
    host, dev = _trainer(syn, tmp_path / "h", feed="host"), _trainer(syn, tmp_path / "d", feed="device")
    assert (host.feed, dev.feed) == ("host", "device")
    a, b = host.run_epoch(progress=False), dev.run_epoch(progress=False)
    assert a["train_loss"] == b["train_loss"] and host.validate() == dev.validate()
    for (k, v), (_, w) in zip(host.net.state_dict().items(), dev.net.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_feed_is_not_part_of_the_checkpoint_but_precision_is(syn, tmp_path):
    first = _trainer(syn, tmp_path / "r", feed="host")
    first.fit(progress=False, max_epochs=1)
    again = _trainer(syn, tmp_path / "r", feed="device", device_pack_gb=0.5)
    again.fit(progress=False, max_epochs=2)  # resumes: how batches travel changes no number
    assert again.state["epoch"] == 2
    bf16 = _trainer(syn, tmp_path / "r", precision="bf16")
    with pytest.raises(ParamError, match=r"train.precision: None in the checkpoint, 'bf16' now"):
        bf16.fit(progress=False, max_epochs=3)


def test_bf16_autocast_trains(syn, tmp_path):
    row = _trainer(syn, tmp_path / "b", precision="bf16").run_epoch(progress=False)
    assert np.isfinite(row["train_loss"])


def test_choose_feed(pack):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_feed("auto", cpu, pack, 8.0) == "host"
    assert choose_feed("auto", cuda, pack, 8.0) == "device"
    assert choose_feed("auto", cuda, pack, pack.frames.size * 2 / 1e9 / 2) == "host"  # over the cap
    assert choose_feed("auto", cuda, None, 8.0) == "host" and choose_feed("host", cuda, pack, 8.0) == "host"
    assert choose_feed("device", cpu, pack, 0.0) == "device"
    with pytest.raises(ParamError, match="train.pack: true"):
        choose_feed("device", cpu, None, 8.0)
