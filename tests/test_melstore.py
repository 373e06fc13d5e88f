"""The mel store: shards and per-track files, resuming, and preprocessing on a Dask cluster."""
import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import tone

from zslkit.data import melstore
from zslkit.data.audio import MelSpec
from zslkit.data.melpack import build_pack
from zslkit.data.melstore import SHARD_DIR, MelStore, complete_shards
from zslkit.data.preprocess import preprocess, process_chunk
from zslkit.errors import DataError, ParamError


@pytest.fixture
def tracks(wav):
    return [(f"t{i:02d}", wav(f"t{i}.wav", tone(200 + 40 * i, 1.0 + 0.25 * (i % 3), noise=0.01, seed=i)))
            for i in range(9)]


def frames_of(store, ids):
    return {t: np.array(store[t]) for t in ids}


def test_shards_hold_the_same_mels_as_per_track_files(tmp_path, tracks):
    ids = [t for t, _ in tracks]
    a = preprocess(tracks, tmp_path / "files", layout="files", workers=1, progress=False)
    b = preprocess(tracks, tmp_path / "shards", layout="shards", workers=1, progress=False, chunksize=4)
    assert (a.status == "ok").all() and (b.status == "ok").all()
    files, shards = MelStore.from_dir(tmp_path / "files"), MelStore.from_dir(tmp_path / "shards")
    assert not files.sharded and shards.sharded
    assert shards.n_files == 3 and len(complete_shards(tmp_path / "shards")) == 3  # 9 tracks, 4 per shard
    index = pd.read_csv(tmp_path / "shards" / "index.csv")
    assert list(index.columns) == ["track_id", "file", "n_frames", "offset"]
    assert index.file.str.startswith(f"{SHARD_DIR}/").all()
    fa, fb = frames_of(files, ids), frames_of(shards, ids)
    for t in ids:
        assert fb[t].dtype == np.float16 and fb[t].shape == fa[t].shape
        np.testing.assert_array_equal(fa[t], fb[t])
    np.testing.assert_array_equal(shards.n_frames(ids), [len(fa[t]) for t in ids])


def test_a_killed_job_resumes_and_its_leftovers_are_removed(tmp_path, tracks):
    out = tmp_path / "mels"
    jobs = [(t, str(p), MelSpec(), None, 1.0, 0.0) for t, p in tracks[:4]]
    process_chunk((jobs, str(out), "shards"))          # one task finished before the kill ...
    (out / SHARD_DIR / "deadbeef.npy").write_bytes(b"half a shard")  # ... one cut short, no index
    (out / SHARD_DIR / ".x.npy.tmp.npy").write_bytes(b"a temporary file")
    table = preprocess(tracks, out, workers=1, progress=False, chunksize=2)
    status = dict(zip(table.track_id, table.status))
    assert [status[t] for t, _ in tracks] == ["cached"] * 4 + ["ok"] * 5
    assert not (out / SHARD_DIR / "deadbeef.npy").exists() and not list((out / SHARD_DIR).glob(".*"))
    preprocess(tracks, tmp_path / "fresh", workers=1, progress=False)
    ids = [t for t, _ in tracks]
    a, b = frames_of(MelStore.from_dir(out), ids), frames_of(MelStore.from_dir(tmp_path / "fresh"), ids)
    for t in ids:
        np.testing.assert_array_equal(a[t], b[t])


def test_the_store_removes_only_its_own_leftovers(tmp_path):
    out = tmp_path / "mels"
    assert melstore.remove_leftovers(out) == []  # no folder yet: nothing to do
    rel, _ = melstore.write_shard(out, ["a", "b"], [np.zeros((3, 4), np.float16), np.ones((2, 4), np.float16)])
    np.save(out / "c.npy", np.zeros((2, 4), np.float16))
    melstore.write_index(out, ["a", "b", "c"], [rel, rel, "c.npy"], [3, 2, 2], [0, 3, -1])
    junk = [out / SHARD_DIR / "0123456789abcdef.npy", out / SHARD_DIR / ".x.npy.tmp.npy", out / ".c.npy.k2.tmp.npy",
            out / ".index.csv.q1.tmp"]
    for p in junk:
        p.write_bytes(b"cut short")
    kept = sorted(p for p in out.rglob("*") if p.is_file() and p not in junk)
    assert melstore.remove_leftovers(out) == sorted(junk)
    assert sorted(p for p in out.rglob("*") if p.is_file()) == kept
    assert np.array(MelStore.from_dir(out)["b"]).sum() == 8


def test_a_folder_of_per_track_files_is_resumed_in_shards(tmp_path, tracks):
    out = tmp_path / "mels"
    preprocess(tracks[:3], out, layout="files", workers=1, progress=False)
    table = preprocess(tracks, out, layout="shards", workers=1, progress=False)
    assert (table.status[:3] == "cached").all() and (table.status[3:] == "ok").all()
    store = MelStore.from_dir(out)
    assert store.file("t00").name == "t00.npy" and store.file("t05").parent.name == SHARD_DIR
    assert len(store) == 9 and all(store[t].shape[1] == 128 for t, _ in tracks)


def test_packs_from_shards_equal_packs_from_files(tmp_path, tracks):
    ids = [t for t, _ in tracks]
    preprocess(tracks, tmp_path / "f", layout="files", workers=1, progress=False)
    preprocess(tracks, tmp_path / "s", workers=1, progress=False, chunksize=5)
    files, shards = MelStore.from_dir(tmp_path / "f"), MelStore.from_dir(tmp_path / "s")
    order = ids[::-1]
    a = build_pack(order, files, tmp_path / "packs", progress=False)
    b = build_pack(order, shards, tmp_path / "packs", progress=False)
    assert a.path != b.path  # keyed by where the mels are
    np.testing.assert_array_equal(np.asarray(a.frames), np.asarray(b.frames))
    assert build_pack(order, shards, tmp_path / "packs", progress=False).path == b.path  # reused


def test_store_pickles_without_its_maps(tmp_path, tracks):
    preprocess(tracks, tmp_path / "m", workers=1, progress=False)
    store = MelStore.from_dir(tmp_path / "m")
    store["t03"]
    copy = pickle.loads(pickle.dumps(store))
    assert copy._shard_maps == {} and copy._file_maps == {} and len(pickle.dumps(store)) < 5000
    np.testing.assert_array_equal(copy["t03"], store["t03"])


def test_at_most_max_open_per_track_files_stay_open(tmp_path, tracks, monkeypatch):
    monkeypatch.setattr(melstore, "MAX_OPEN", 2)
    preprocess(tracks[:5], tmp_path / "m", layout="files", workers=1, progress=False)
    store = MelStore.from_dir(tmp_path / "m")
    first = np.array(store["t00"])
    for t, _ in tracks[:5]:
        store[t]
        assert len(store._file_maps) <= 2
    np.testing.assert_array_equal(store["t00"], first)  # reopened after it was closed


def test_bad_index_and_layout_are_named(tmp_path, tracks):
    out = tmp_path / "m"
    preprocess(tracks[:2], out, workers=1, progress=False)
    index = pd.read_csv(out / "index.csv")
    index.loc[1, "offset"] = 10_000
    index.to_csv(out / "index.csv", index=False)
    with pytest.raises(DataError, match=r"shards/.*track 't01' needs rows 10000:"):
        MelStore.from_dir(out)["t01"]
    index.loc[1, "n_frames"] = 0
    index.to_csv(out / "index.csv", index=False)
    with pytest.raises(DataError, match=r"index.csv, line 3: track 't01' is in a shard but has n_frames 0"):
        MelStore.from_dir(out)
    with pytest.raises(DataError, match="track 'nope' has no mel"):
        MelStore({"a": out / "a.npy"}).location("nope")
    with pytest.raises(ParamError, match="audio.layout: 'zarr'"):
        preprocess(tracks, out, layout="zarr", progress=False)


@pytest.mark.slow
def test_preprocessing_on_a_dask_cluster_equals_the_local_pool(tmp_path, tracks):
    distributed = pytest.importorskip("dask.distributed")
    tracks = tracks + [("gone", tmp_path / "missing.wav")]  # failures are listed as with the local pool
    ids = [t for t, _ in tracks[:-1]]
    local = preprocess(tracks, tmp_path / "local", workers=2, progress=False, chunksize=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        remote = preprocess(tracks, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
    cols = ["track_id", "status", "reason", "n_frames"]
    pd.testing.assert_frame_equal(local[cols], remote[cols])
    assert remote.status.iloc[-1] == "error" and "gone" in set(pd.read_csv(tmp_path / "dask" / "errors.csv").track_id)
    a, b = frames_of(MelStore.from_dir(tmp_path / "local"), ids), frames_of(MelStore.from_dir(tmp_path / "dask"), ids)
    for t in ids:
        np.testing.assert_array_equal(a[t], b[t])
