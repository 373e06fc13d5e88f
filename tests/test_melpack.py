import pickle

import numpy as np
import pytest

from zslkit.data.melpack import build_pack
from zslkit.data.melstore import MelStore
from zslkit.errors import DataError
from zslkit.model.sampling import BatchSource, TrackSet, crop


@pytest.fixture
def mels(tmp_path):
    """Five tracks of different lengths, two shorter than a 130-frame segment."""
    rng = np.random.default_rng(0)
    lengths = [50, 129, 130, 131, 400]
    files = []
    for i, n in enumerate(lengths):
        files.append(str(tmp_path / f"m{i}.npy"))
        np.save(files[-1], rng.random((n, 16)).astype(np.float16))
    return [f"t{i}" for i in range(len(lengths))], files, np.array(lengths)


def test_pack_crops_equal_per_file_crops_including_tiling(mels, tmp_path):
    ids, files, lengths = mels
    pack = build_pack(ids, files, tmp_path / "packs", progress=False)
    assert pack.frames.shape == (lengths.sum(), 16) and pack.frames.dtype == np.float16
    rng = np.random.default_rng(1)
    for _ in range(20):
        idx = rng.integers(0, len(ids), 7)
        starts = (rng.random(7) * (np.maximum(lengths[idx] - 130, 0) + 1)).astype(int)
        want = np.stack([crop(np.load(files[i], mmap_mode='r'), lengths[i], s, 130) for i, s in zip(idx, starts)])
        np.testing.assert_array_equal(pack.crops(idx, starts, 130), want)
    # the 50-frame clip tiled: frame j of the crop is frame j % 50 of the clip
    np.testing.assert_array_equal(pack.crops([0], [0], 130)[0, 100:],
                                  np.load(files[0])[:30].astype(np.float32))


def test_pack_is_reused_and_rebuilt_when_a_mel_changes(mels, tmp_path):
    ids, files, _ = mels
    a = build_pack(ids, files, tmp_path / "packs", progress=False)
    assert build_pack(ids, files, tmp_path / "packs", progress=False).path == a.path
    np.save(files[2], np.ones((140, 16), np.float16))
    b = build_pack(ids, files, tmp_path / "packs", progress=False)
    assert b.path != a.path and b.n_frames[2] == 140
    np.testing.assert_array_equal(b.crops([2], [10], 130)[0], np.ones((130, 16)))


def test_pack_pickles_without_its_data(mels, tmp_path):
    ids, files, _ = mels
    pack = build_pack(ids, files, tmp_path / "packs", progress=False)
    pack.frames  # opened
    blob = pickle.dumps(pack)
    assert len(blob) < 2000
    np.testing.assert_array_equal(pickle.loads(blob).crops([4], [3], 130), pack.crops([4], [3], 130))


def test_bad_mel_files_name_the_file(mels, tmp_path):
    ids, files, _ = mels
    np.save(files[1], np.zeros((10, 8), np.float16))
    with pytest.raises(DataError, match="different band counts"):
        build_pack(ids, files, tmp_path / "p1", progress=False)
    open(files[1], "wb").write(b"not a npy file")
    with pytest.raises(DataError, match="m1.npy"):
        build_pack(ids, files, tmp_path / "p2", progress=False)
    assert not list(tmp_path.glob("p2/*"))  # nothing half-written left behind


def test_batches_from_the_pack_equal_per_file_batches(mels, tmp_path):
    ids, files, lengths = mels
    positives = np.zeros((len(ids), 4), bool)
    positives[np.arange(len(ids)), np.arange(len(ids)) % 4] = True
    tracks = TrackSet(ids, MelStore(dict(zip(ids, files))), lengths, positives)
    pack = build_pack(ids, files, tmp_path / "packs", progress=False)
    for valid in (False, True):
        a = BatchSource(tracks, 2, 1, 0, 130, valid=valid, crops_per_track=3)
        b = BatchSource(tracks, 2, 1, 0, 130, valid=valid, crops_per_track=3, pack=pack)
        assert len(a) == (3 if valid else 7)
        for k in range(len(a)):
            for u, v in zip(a[k], b[k]):
                np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_crops_per_track_visits_each_track_that_many_times(mels):
    ids, files, lengths = mels
    tracks = TrackSet(ids, MelStore(dict(zip(ids, files))), lengths, np.eye(len(ids), 6, dtype=bool))
    src = BatchSource(tracks, 5, 1, 0, 130, crops_per_track=4)
    seen = np.concatenate([src[b][3].numpy().argmax(axis=1) for b in range(len(src))])
    assert len(src) == 4 and np.array_equal(np.bincount(seen, minlength=5), [4] * 5)
