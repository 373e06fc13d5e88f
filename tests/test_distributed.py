"""Training in several processes (torchrun, DDP with gloo on the CPU) against one process."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import synthetic_dataset

from zslkit import config
from zslkit.data.melstore import MelStore
from zslkit.data.splits import prepare_split
from zslkit.errors import ParamError
from zslkit.model.distributed import Context
from zslkit.model.sampling import BatchSource, TrackSet
from zslkit.model.train import train_stage


def tracks(n=37, tags=6, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.random((n, tags)) < 0.3
    pos[:, 0] = True
    pos[:, -2:] = False
    return TrackSet([f"t{i}" for i in range(n)], MelStore(), np.full(n, 300), pos)


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("valid", [False, True])
def test_the_shares_of_the_ranks_make_up_the_single_process_batch(world, valid):
    ts = tracks()
    whole = BatchSource(ts, 10, 2, 7, 130, valid=valid)
    parts = [BatchSource(ts, 10, 2, 7, 130, valid=valid, part=(r, world)) for r in range(world)]
    for b in range(len(whole)):
        want = whole.plan((3, b))
        got = [p.local_plan((3, b)) for p in parts]
        assert all(len(g[0]) in (len(want[0]) // world, -(-len(want[0]) // world)) for g in got)
        for k in range(4):
            np.testing.assert_array_equal(np.concatenate([g[k] for g in got]), want[k])


def test_context_shares_and_a_batch_too_small_to_split():
    assert [Context(r, 3).share(10) for r in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 10)]
    from zslkit.model.distributed import check
    with pytest.raises(ParamError, match="train.batch_size: 2 is smaller than the 4 training processes"):
        check({"train": {"batch_size": 2}}, Context(1, 4))
    from zslkit.model.distributed import launch
    gpus = torch.cuda.device_count()
    with pytest.raises(ParamError, match=f"train.nproc: {gpus + 1} processes, one per GPU, but torch sees {gpus}"):
        launch("p.yaml", "run", gpus + 1, "cuda")


@pytest.mark.slow
def test_two_gloo_processes_train_the_weights_of_one_and_resume_after_a_kill(tmp_path):
    """torchrun with 2 CPU processes (gloo), the global batch of 16 split 8 + 8, killed (SIGKILL, the whole
    process group) after its first epoch and started again: against one process with batch 16, the same
    losses and weights (gradients summed over the processes; float additions in another order)."""
    ds = synthetic_dataset(tmp_path / "data" / "syn", n_tracks=96)
    P = config.resolve({"run": {"name": "ddp", "data_dir": "data", "reports_dir": "reports", "progress": False},
                        "data": {"name": "syn"}, "split": {"stratify": "none", "seed": 2},
                        "sideinfo": {"kinds": ["random"]}, "model": {"sideinfo": "random"},
                        "train": {"batch_size": 16, "max_epochs": 4, "device": "cpu", "negatives": 2}},
                       root=tmp_path)
    split = prepare_split(ds, P["split"])
    one = train_stage(ds, split, P, tmp_path / "one", progress=False)["joint"]
    P2 = {**P, "train": {**P["train"], "nproc": 2}}
    resolved = tmp_path / "two.yaml"
    resolved.write_text(config.dump(P2))
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "-m", "zslkit.model.train", str(resolved), "--run-dir", str(tmp_path / "two")],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "two" / "train" / "joint" / "last.pt"
    while not last.is_file() and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = torch.load(last, weights_only=True)["epoch"]
    assert 1 <= done < 4, f"killed after {done} epochs"
    two = train_stage(ds, split, P2, tmp_path / "two", progress=False)["joint"]  # resumes, 2 processes again
    assert (tmp_path / "two" / "train" / "launch.yaml").is_file()
    c1, c2 = one["curves"], two["curves"]
    assert len(c1) == len(c2) == 4
    pd.testing.assert_series_equal(c1.train_loss, c2.train_loss, rtol=1e-4)
    pd.testing.assert_series_equal(c1.valid_loss, c2.valid_loss, rtol=1e-4)
    w1 = torch.load(tmp_path / "one" / "train" / "joint" / "last.pt", weights_only=True)["model"]
    w2 = torch.load(last, weights_only=True)["model"]
    assert set(w1) == set(w2)
    moved = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert moved < 1e-5, f"largest weight difference {moved}"
    assert two["trainer"].state["step"] == one["trainer"].state["step"] == 4 * (len(one["trainer"].train_set) // 16)
