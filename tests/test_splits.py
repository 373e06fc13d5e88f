import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zslkit import DataError, ParamError, UnsafePickleError
from zslkit.data.splits import (
    check_track_split,
    export_original,
    import_original,
    save_split,
    split_tags,
    split_tracks,
    tag_split_from_params,
)


def label_matrices():
    return st.integers(2, 12).flatmap(lambda n_tags: st.tuples(
        arrays(bool, st.tuples(st.integers(1, 60), st.just(n_tags))),
        arrays(bool, n_tags)))


@settings(max_examples=150, deadline=None)
@given(label_matrices(), st.integers(0, 2**31 - 1), st.floats(0.1, 0.95))
def test_track_split_properties(data, seed, ratio):
    labels, seen = data
    ids = [f"t{i}" for i in range(len(labels))]
    split = split_tracks(labels, ids, seen, seed, ratio)
    # A, B, C, untagged and all-seen partition the tracks
    parts = split["A"] + split["B"] + split["C"] + split["untagged"] + split["all_seen"]
    assert sorted(parts) == sorted(ids)
    row = {t: i for i, t in enumerate(ids)}
    x = labels[:, seen].any(axis=1)
    y = labels[:, ~seen].any(axis=1)
    assert all(x[row[t]] and not y[row[t]] for t in split["A"])
    assert all(x[row[t]] and y[row[t]] for t in split["B"])
    assert all(not x[row[t]] and y[row[t]] for t in split["C"])
    assert all(labels[row[t], seen].all() for t in split["all_seen"])
    assert check_track_split(labels, ids, seen, split) == []
    for name, whole in (("A", split["A"]), ("B", split["B"]), ("AB", split["A"] + split["B"])):
        train, valid = split[f"{name}_train"], split[f"{name}_valid"]
        assert sorted(train + valid) == sorted(whole) and not set(train) & set(valid)
        assert len(train) == int(np.floor(ratio * len(whole)))
    assert split_tracks(labels, ids, seen, seed, ratio) == split


def test_check_track_split_catches_violations():
    labels = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)
    seen = np.array([True, False])
    split = split_tracks(labels, ["a", "b", "c"], seen)
    split["A"] = ["b"]  # b has an unseen positive
    problems = check_track_split(labels, ["a", "b", "c"], seen, split)
    assert any("break the definition of A" in p for p in problems)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 20), min_size=1),
       st.integers(0, 10_000), st.sampled_from(["group", "none"]))
def test_tag_split_is_a_seeded_partition(sizes, seed, stratify):
    tags = pd.DataFrame([{"tag": f"{g}{i}", "group": g} for g, n in sizes.items() for i in range(n)])
    seen, unseen = split_tags(tags, 0.8, seed, stratify)
    assert sorted(seen + unseen) == sorted(tags.tag) and not set(seen) & set(unseen)
    assert len(seen) == int(np.floor(0.8 * len(tags)))
    assert split_tags(tags, 0.8, seed, stratify) == (seen, unseen)


def test_explicit_unseen_list():
    tags = pd.DataFrame({"tag": ["a", "b", "c"], "group": ["g"] * 3})
    base = {"ratio": 0.8, "seed": 0, "stratify": "group"}
    assert tag_split_from_params(tags, {**base, "unseen": ["b"]}) == (["a", "c"], ["b"])
    with pytest.raises(ParamError, match="split.unseen: tag 'zz' is not in the dataset"):
        tag_split_from_params(tags, {**base, "unseen": ["zz"]})


@settings(max_examples=30, deadline=None)
@given(label_matrices(), st.integers(0, 1000))
def test_original_layout_round_trips(tmp_path_factory, data, seed):
    labels, seen = data
    folder = tmp_path_factory.mktemp("orig")
    ids = [f"TR{i}" for i in range(len(labels))]
    texts = [f"tag{j}" for j in range(labels.shape[1])]
    split = split_tracks(labels, ids, seen, seed)
    s, u = [t for t, m in zip(texts, seen) if m], [t for t, m in zip(texts, seen) if not m]
    export_original(folder, "TGS01", "TRS01", texts, ids, s, u, split)
    s2, u2, back = import_original(folder, "TGS01", "TRS01", texts, ids)
    assert (s2, u2) == (s, u)
    for k in ("C", "A_train", "A_valid", "B_train", "B_valid", "AB_train", "AB_valid"):
        assert back[k] == split[k]
    assert sorted(back["A"]) == sorted(split["A"]) and sorted(back["B"]) == sorted(split["B"])
    raw = pickle.loads((folder / "track_keys_AB_TRS01_TGS01.p").read_bytes())
    assert isinstance(raw, list) and len(raw) == 2 and all(isinstance(k, int) for k in raw[0])


def test_import_original_rejects_bad_files(tmp_path):
    (tmp_path / "tag_key_split_T.p").write_bytes(pickle.dumps([[0, 5], [1]]))
    with pytest.raises(DataError, match="tag key out of range"):
        import_original(tmp_path, "T", "R", ["a", "b"], ["x"])

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (tmp_path / "tag_key_split_T.p").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UnsafePickleError, match="builtins.print"):
        import_original(tmp_path, "T", "R", ["a", "b"], ["x"])


def test_saved_split_is_never_silently_replaced(tmp_path):
    tracks = {"A": [], "B": [], "C": []}
    save_split(tmp_path, "s0", {"seed": 0}, ["a"], ["b"], tracks, 0)
    save_split(tmp_path, "s0", {"seed": 0}, ["a"], ["b"], tracks, 0)  # same content: fine
    with pytest.raises(ParamError, match="exists with other settings"):
        save_split(tmp_path, "s0", {"seed": 1}, ["b"], ["a"], tracks, 0)


def test_prepare_split_round_trip_through_original_files(tmp_path):
    import shutil

    from zslkit import config
    from zslkit.data.datasets import Dataset, write_dataset
    from zslkit.data.splits import prepare_split
    rng = np.random.default_rng(0)
    labels = rng.random((80, 10)) < 0.3
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(80)], "path": "x.wav"})
    tags = pd.DataFrame({"tag": [f"tag{j}" for j in range(10)], "group": ["a"] * 5 + ["b"] * 5})
    ds = write_dataset(tmp_path / "ds", tracks, tags, labels, {"name": "ds"})
    P = config.resolve({"split": {"name": "s0", "seed": 4}}, root=tmp_path)["split"]
    first = prepare_split(ds, P)
    assert any("no tag" in w for w in first.warnings) == bool((~labels.any(axis=1)).any())
    paper = tmp_path / "paper"
    paper.mkdir()
    for f in (tmp_path / "ds" / "splits" / "s0" / "original").iterdir():
        shutil.copy(f, paper / f.name.replace("trs0", "TRSPP").replace("s0", "TGSPP"))
    Q = config.resolve({"split": {"name": "TGSPP", "original": str(paper)}}, root=tmp_path)["split"]
    second = prepare_split(Dataset.load(tmp_path / "ds"), Q)
    assert (second.seen, second.unseen) == (first.seen, first.unseen)
    for k in ("C", "A_train", "A_valid", "B_train", "B_valid", "AB_train", "AB_valid"):
        assert second.tracks[k] == first.tracks[k]


def test_changing_split_tracks_needs_no_new_split_name(tmp_path):
    from zslkit import config
    from zslkit.data.datasets import Dataset, write_dataset
    from zslkit.data.splits import Split, prepare_split
    from zslkit.layout import DatasetLayout
    rng = np.random.default_rng(1)
    labels = rng.random((60, 8)) < 0.35
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(60)], "path": "x.wav",
                           "split": ["train"] * 40 + ["valid"] * 10 + ["test"] * 10})
    tags = pd.DataFrame({"tag": [f"tag{j}" for j in range(8)], "group": "g"})
    ds = write_dataset(tmp_path / "ds", tracks, tags, labels, {"name": "ds"})
    P = {"split": {"name": "s0", "seed": 3}}
    random = prepare_split(ds, config.resolve(P, root=tmp_path)["split"])
    P["split"]["tracks"] = "dataset"
    own = prepare_split(Dataset.load(ds.root), config.resolve(P, root=tmp_path)["split"])  # same name: accepted
    assert (own.seen, own.unseen) == (random.seen, random.unseen) and own.tracks != random.tracks
    layout = DatasetLayout.at(ds.root)
    assert layout.track_split("s0", 0).is_file() and layout.track_split("s0", 0, "dataset").is_file()
    for mode, made in (("random", random), ("dataset", own)):  # each run reads its own parts
        resolved = config.resolve({"split": {"name": "s0", "seed": 3, "tracks": mode}}, root=tmp_path)
        assert Split.of_run(ds.root, resolved).tracks == made.tracks
    P["split"]["seed"] = 4  # another tag split under the same name is still refused
    with pytest.raises(ParamError, match="exists with other settings"):
        prepare_split(Dataset.load(ds.root), config.resolve(P, root=tmp_path)["split"])
