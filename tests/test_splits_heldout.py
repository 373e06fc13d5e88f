"""Held-out tracks (tracks.csv ``heldout`` = 1, e.g. m21 clips rendered with the held-out bank) train and
validate nothing; datasets without the column split exactly as before."""
import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zslkit import DataError, config
from zslkit.data.datasets import write_dataset
from zslkit.data.splits import (
    Split,
    check_track_split,
    heldout_mask,
    prepare_split,
    split_tracks,
    split_tracks_by_dataset,
)
from zslkit.layout import DatasetLayout

PARTS = [f"{s}_{p}" for s in ("A", "B", "AB") for p in ("train", "valid")]


def labelled():
    return st.integers(2, 10).flatmap(lambda n_tags: st.integers(1, 60).flatmap(lambda n: st.tuples(
        arrays(bool, (n, n_tags)), arrays(bool, n_tags), arrays(bool, n))))


@settings(max_examples=120, deadline=None)
@given(labelled(), st.integers(0, 2**31 - 1), st.floats(0.1, 0.95))
def test_held_out_tracks_never_train_or_validate(data, seed, ratio):
    labels, seen, held = data
    ids = [f"t{i}" for i in range(len(labels))]
    split = split_tracks(labels, ids, seen, seed, ratio, held)
    held_ids = {t for t, h in zip(ids, held) if h}
    assert split["heldout"] == [t for t in ids if t in held_ids]
    for part in PARTS:
        assert not held_ids & set(split[part])
    for name, whole in (("A", split["A"]), ("B", split["B"]), ("AB", split["A"] + split["B"])):
        assert split[f"{name}_test"] == [t for t in ids if t in held_ids and t in set(whole)]
        rest = [t for t in whole if t not in held_ids]
        assert len(split[f"{name}_train"]) == int(np.floor(ratio * len(rest)))
    assert check_track_split(labels, ids, seen, split, held) == []
    # A, B and C are the same subsets: B and C are still evaluated whole
    plain = split_tracks(labels, ids, seen, seed, ratio)
    assert all(split[k] == plain[k] for k in ("A", "B", "C", "untagged", "all_seen"))
    if not held.any():  # nothing marked: the parts of a split without the column
        assert all(split[p] == plain[p] for p in PARTS)


def test_dataset_split_sends_held_out_tracks_to_test_whatever_their_part():
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [0, 0, 1]], dtype=bool)
    seen = np.array([True, True, False])
    ids = ["a", "b", "c", "d", "e"]
    own = ["train", "valid", "train", "test", "train"]
    held = np.array([True, False, True, False, True])
    split = split_tracks_by_dataset(labels, ids, seen, own, held)
    assert (split["A_train"], split["A_valid"], split["A_test"]) == ([], ["b"], ["a"])
    assert (split["B_train"], split["B_test"]) == ([], ["c", "d"])
    assert split["C"] == ["e"] and split["heldout"] == ["a", "c", "e"]
    assert check_track_split(labels, ids, seen, split) == []
    plain = split_tracks_by_dataset(labels, ids, seen, own)
    assert "heldout" not in plain and plain["A_train"] == ["a"]


def test_check_track_split_catches_a_held_out_track_in_training():
    labels = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0]], dtype=bool)
    seen = np.array([True, True, False])
    ids = ["a", "b", "c", "d"]
    split = split_tracks(labels, ids, seen, 0, 0.5)
    problems = check_track_split(labels, ids, seen, split, np.array([True, True, False, True]))
    assert any("held-out track(s)" in p and "_train" in p for p in problems)


def test_heldout_column_values():
    t = pd.DataFrame({"track_id": ["a", "b", "c"], "heldout": ["0", "1", ""]})
    assert heldout_mask(t).tolist() == [False, True, False]
    assert heldout_mask(t.drop(columns="heldout")) is None
    with pytest.raises(DataError, match="track 'b' has '2'"):
        heldout_mask(t.assign(heldout=[0, 2, 1]))


def make_dataset(root, own=False, heldout=False, n=90, n_tags=10, seed=3, bank=None):
    rng = np.random.default_rng(seed)
    labels = rng.random((n, n_tags)) < 0.3
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)], "path": "none.wav"})
    if own:
        tracks["split"] = rng.choice(["train", "valid", "test"], n, p=[0.7, 0.15, 0.15])
    if heldout:
        tracks["heldout"] = (rng.random(n) < 0.25).astype(int)
    tags = pd.DataFrame({"tag": [f"tag{j}" for j in range(n_tags)], "group": ["g1", "g2"] * (n_tags // 2)})
    meta = {"name": "gold", **({"heldout_bank": bank} if bank else {})}
    return write_dataset(root, tracks, tags, labels, meta)


# sha256 of the files stage 02 saved for make_dataset(...) before held-out tracks existed
GOLDEN = {False: ("bdd970a3d631733bf9f24717a7f907e9aebe160a834b36fe9a1c0620131e56f9",
                  "dee787150afe5b20cf5ac228cdaee1245db275e8b8c867a31fd17687befc8b6a"),
          True: ("00ddec54bd735356ec82029a5c0a2d11e1ed93e0ccba1ed5a8ee44eda96a9f1d",
                 "4ca6e7efc6cc63272afd681185188301493724775a4699f2dc366a23d4fda43d")}


@pytest.mark.parametrize("own", [False, True])
def test_datasets_without_the_column_save_the_same_split_bit_for_bit(tmp_path, own):
    ds = make_dataset(tmp_path / "ds", own=own)
    P = config.resolve({"split": {"tracks": "dataset" if own else "random"}}, root=tmp_path)
    S = prepare_split(ds, P["split"])
    layout = DatasetLayout.at(ds.root)
    files = (layout.tag_split("s0"), layout.track_split("s0", 0, P["split"]["tracks"]))  # the same bytes, own file
    assert tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in files) == GOLDEN[own]
    assert not any("held-out" in w for w in S.warnings)


@pytest.mark.parametrize("own", [False, True])
def test_prepare_split_keeps_held_out_tracks_out_of_training_and_says_so(tmp_path, own):
    ds = make_dataset(tmp_path / "ds", own=own, heldout=True, bank="FluidR3_GM.sf2")
    P = config.resolve({"split": {"tracks": "dataset" if own else "random"}}, root=tmp_path)
    S = prepare_split(ds, P["split"])
    held = set(ds.tracks.track_id[ds.tracks.heldout == 1])
    assert set(S.tracks["heldout"]) == held and held
    for part in PARTS:
        assert not held & set(S.tracks[part])
    loaded = Split.of_run(ds.root, P)
    assert loaded.tracks == S.tracks
    assert set(loaded.track_set("B+C")) & held  # evaluated whole
    tag_split = DatasetLayout.at(ds.root).tag_split("s0").read_text()
    assert '"heldout": "test only"' in tag_split
    kept = len(held & set(S.tracks["A"] + S.tracks["B"]))
    note = [w for w in S.warnings if "held-out" in w]
    assert len(note) == 1 and f"{kept} of A+B are kept out of training" in note[0]
    assert "rendered with FluidR3_GM.sf2" in note[0]
