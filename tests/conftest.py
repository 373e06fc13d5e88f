import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ZSLKIT_ROOT", str(ROOT))


def tone(freq=440.0, seconds=2.0, sr=22050, amp=0.3, noise=0.0, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    y = amp * np.sin(2 * np.pi * freq * t)
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(len(t))
    return y.astype(np.float32)


@pytest.fixture
def wav(tmp_path):
    """Write a signal to a file and return its path."""
    def write(name, y, sr=22050, **kw):
        path = tmp_path / name
        sf.write(path, y, sr, **kw)
        return path
    return write


def synthetic_dataset(root, n_tracks=120, n_tags=8, seed=0, side_dim=16, atoms=None, heldout=None):
    """A small learnable dataset: each tag lights up mel bands; random side information.

    With ``atoms=n`` each tag lights two of ``n`` bands and its side information is the indicator
    of those two atoms, so an unseen tag is a new combination of seen parts (zero-shot solvable).
    With ``heldout=share``, ``tracks.csv`` gets a ``heldout`` column marking about that share of the
    tracks (drawn apart, so the labels and mels are those of the same seed without it).
    """
    from zslkit.data.datasets import Dataset, write_dataset
    from zslkit.data.sideinfo import SideInfo, random_table
    from zslkit.io import write_csv
    from zslkit.layout import DatasetLayout
    rng = np.random.default_rng(seed)
    labels = rng.random((n_tracks, n_tags)) < 0.3
    labels[labels.sum(axis=1) == 0, 0] = True
    if atoms:
        pairs = [(a, b) for a in range(atoms) for b in range(a + 1, atoms)]
        pairs = [pairs[i] for i in rng.permutation(len(pairs))[:n_tags]]
        bands = [[16 * a, 16 * b] for a, b in pairs]
    else:
        bands = [[(16 * j) % 120] for j in range(n_tags)]
    (root / "mels").mkdir(parents=True)
    rows = []
    for i in range(n_tracks):
        mel = rng.random((260, 128)).astype(np.float32) * 0.2
        for j in np.flatnonzero(labels[i]):
            for b in bands[j]:
                mel[:, b:b + 8] += 1.0
        np.save(root / "mels" / f"t{i}.npy", mel.astype(np.float16))
        rows.append((f"t{i}", f"t{i}.npy", 260))
    write_csv(root / "mels" / "index.csv", pd.DataFrame(rows, columns=["track_id", "file", "n_frames"]))
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(n_tracks)], "path": "none.wav"})
    if heldout:
        tracks["heldout"] = (np.random.default_rng([seed, 7]).random(n_tracks) < heldout).astype(int)
    tags = pd.DataFrame({"tag": [f"tag{j}" for j in range(n_tags)],
                         "group": ["g1", "g2"] * (n_tags // 2) + ["g1"] * (n_tags % 2)})
    ds = write_dataset(root, tracks, tags, labels, {"name": "syn", "normalisation": {"mean": 0.4, "std": 0.5}})
    random_table(ds.tag_texts, side_dim, seed=1).save(DatasetLayout.at(root).sideinfo("s0", "random"))
    if atoms:
        onehot = np.zeros((n_tags, atoms), dtype=np.float32)
        for j, (a, b) in enumerate(pairs):
            onehot[j, [a, b]] = 1.0
        SideInfo("attributes", ds.tag_texts, onehot).save(DatasetLayout.at(root).sideinfo("s0", "attributes"))
    return Dataset.load(root)


def trained_run(root, sideinfo="attributes", epochs=10, baseline=True, n_tracks=240, n_tags=12, seed=0,
                controls=("random",), heldout=None):
    """Train a joint model (the classifier, the controls) on a synthetic atoms dataset into ``root/run``
    with stage 03's own function (``heldout``: as :func:`synthetic_dataset`).

    Returns ``(ds, split, params, run_dir)``, laid out like a real run after notebook 03.
    """
    from zslkit import config
    from zslkit.data.splits import prepare_split
    from zslkit.model.train import train_stage
    ds = synthetic_dataset(root / "ds", n_tracks=n_tracks, n_tags=n_tags, atoms=6, seed=seed, heldout=heldout)
    P = config.resolve({"run": {"name": "run", "reports_dir": str(root), "seed": seed},
                        "split": {"stratify": "none", "seed": 2, "ratio": 0.75},
                        "sideinfo": {"kinds": ["attributes", "random"]},
                        "model": {"sideinfo": sideinfo},
                        "train": {"batch_size": 16, "workers": 0, "max_epochs": epochs, "optimizer": "adam",
                                  "lr": 3e-3, "loss": "contrastive", "device": "cpu", "baseline": baseline,
                                  "controls": [c for c in controls if c != sideinfo]},
                        "embed": {"widget": False, "umap": {"max_tracks": 60}},
                        "evaluate": {"bootstrap": 200}}, root=root)
    split = prepare_split(ds, P["split"])
    run_dir = root / "run"
    train_stage(ds, split, P, run_dir, progress=False)
    return ds, split, P, run_dir


def synthetic_training(tmp_path, hidden=None, max_epochs=3):
    """``(ds, split, params)`` for a trainer test: a :func:`synthetic_dataset`, its split, the ``random`` side
    information, Adam, batches of 16 (``hidden``: the tag branch's MLP width)."""
    from zslkit import config
    from zslkit.data.splits import prepare_split
    ds = synthetic_dataset(tmp_path / "ds")
    P = config.resolve({"split": {"stratify": "none", "seed": 2}, "model": {"sideinfo": "random"},
                        "heads": {"learned": {"hidden": hidden}},
                        "train": {"batch_size": 16, "max_epochs": max_epochs, "optimizer": "adam"}}, root=tmp_path)
    return ds, prepare_split(ds, P["split"]), P


def synthetic_trainer(syn, out, missing=None, kind="joint", **train):
    """A :class:`~zslkit.model.trainer.Trainer` of ``kind`` on ``syn = (ds, split, params)`` with the
    ``random`` side information and ``train`` keys overridden; ``missing``: a train key removed, as in the
    parameters of a zslkit from before that key existed."""
    from zslkit.model.train import seen_vectors
    from zslkit.model.trainer import Trainer
    ds, split, P = syn
    train = {**P["train"], **train}
    if missing:
        del train[missing]
    vectors = seen_vectors(ds, split, "random") if kind == "joint" else None
    return Trainer(ds, split, vectors, {**P, "train": train}, out, seed=0, kind=kind, sideinfo="random")


def assert_states_equal(a, b):
    """Two state dicts, tensor by tensor, bit for bit."""
    import torch
    assert list(a) == list(b)
    for (k, v), (_, w) in zip(a.items(), b.items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def pytest_terminal_summary(terminalreporter):
    """The malformed-input tally of tests/test_malformed.py, when it ran."""
    import sys
    module = sys.modules.get("test_malformed") or sys.modules.get("tests.test_malformed")
    if module is None or not module.TALLY:
        return
    terminalreporter.section("malformed dataset files")
    for fmt, (tried, refused) in sorted(module.TALLY.items()):
        terminalreporter.write_line(f"{fmt}: {tried} malformed copies tried, {refused} refused cleanly "
                                    "(DataError naming file and line, nothing written)")
