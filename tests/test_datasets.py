import os
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import tone

from zslkit import DataError, ParamError, UnsafePickleError, config
from zslkit.data.audio import PAPER_MEAN
from zslkit.data.datasets import Dataset, annotations_from_lists, write_dataset
from zslkit.data.datasets.folder import import_folder
from zslkit.data.datasets.seed import import_seed
from zslkit.data.pickles import safe_load_pickle, safe_loads_pickle
from zslkit.data.sideinfo import Context, build_tables, text_vectors


def test_write_and_load_round_trip(tmp_path):
    tracks = pd.DataFrame({"track_id": ["a", "b", "c"], "path": ["a.wav", "b.wav", "c.wav"], "year": [1, 2, 3]})
    tags = pd.DataFrame({"tag": ["rock", "jazz"], "group": ["genre", "genre"]})
    ann = annotations_from_lists([["rock"], ["rock", "jazz"], []], ["rock", "jazz"])
    write_dataset(tmp_path / "d", tracks, tags, ann, {"name": "d"})
    ds = Dataset.load(tmp_path / "d")
    assert ds.tag_texts == ["rock", "jazz"] and ds.tracks.year.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(ds.label_matrix(), [[1, 0], [1, 1], [0, 0]])
    assert ds.summary()["tracks_without_tags"] == 1
    np.testing.assert_array_equal(ds.labels(["c", "b"], ["jazz", "rock"]), [[0, 0], [1, 1]])
    assert dict(zip(ds.tag_counts().tag, ds.tag_counts()["count"])) == {"rock": 2, "jazz": 1}


def test_load_rejects_incomplete_or_inconsistent_folders(tmp_path):
    with pytest.raises(DataError, match="missing dataset.json"):
        Dataset.load(tmp_path)
    tracks = pd.DataFrame({"track_id": ["a"], "path": ["a.wav"]})
    tags = pd.DataFrame({"tag": ["x"], "group": ["g"]})
    with pytest.raises(DataError, match="annotations.npz has shape"):
        write_dataset(tmp_path / "d", tracks, tags, sp.csr_matrix((2, 1)), {})
    with pytest.raises(DataError, match="duplicate entry 'x'"):
        write_dataset(tmp_path / "d", tracks, pd.concat([tags, tags]), sp.csr_matrix((1, 2)), {})


def test_folder_import_reports_bad_rows_and_keeps_metadata(tmp_path, wav):
    (tmp_path / "audio").mkdir()
    wav("audio/one.wav", tone(440))
    wav("audio/two.wav", tone(660))
    wav("audio/three.wav", tone(880))
    csv = tmp_path / "tags.csv"
    csv.write_text("path,tags,artist\naudio/one.wav,rock; guitar ,A\naudio/two.wav,jazz;piano;jazz,B\n"
                   "audio/gone.wav,rock,C\naudio/three.wav,,D\n")
    (tmp_path / "groups.csv").write_text("tag,group\nrock,genre\njazz,genre\nguitar,instrument\n")
    ds, report = import_folder(csv, tmp_path / "ds", tag_groups=tmp_path / "groups.csv")
    assert ds.tracks.track_id.tolist() == ["audio/one.wav", "audio/two.wav"]
    assert ds.tracks.artist.tolist() == ["A", "B"]
    assert os.path.isabs(ds.tracks.path[0]) and ds.audio_path("audio/one.wav").is_file()
    assert dict(zip(ds.tags.tag, ds.tags.group)) == {"jazz": "genre", "rock": "genre",
                                                     "guitar": "instrument", "piano": "tag"}
    assert ds.label_matrix().sum() == 4  # the repeated 'jazz' counts once
    assert sorted(report.issue.str.split(":").str[0]) == ["empty tag list", "file not found"]


def test_folder_import_names_missing_columns(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("file,labels\na.wav,x\n")
    with pytest.raises(DataError, match=r"bad.csv: missing column\(s\) \['path', 'tags'\]"):
        import_folder(csv, tmp_path / "ds")


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps({"ok": Boom()}))
    with pytest.raises(UnsafePickleError, match=r"evil.p: refused to load global (posix|os)\.system"):
        safe_load_pickle(path)
    with pytest.raises(UnsafePickleError):
        safe_loads_pickle(pickle.dumps(pd.DataFrame({"a": [1]})))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_admits_plain_data(protocol):
    obj = {"a": [1, 2.5, "x", (True, None)], 3: {7, 8}, "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
           "scalar": np.float64(1.5), "ints": np.array([1, 2], dtype=np.int64)}
    back = safe_loads_pickle(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(back["arr"], obj["arr"])
    assert back["a"] == obj["a"] and back[3] == {7, 8} and back["scalar"] == 1.5


def _write_seed(root, n_tags=4, n_tracks=5):
    common = root / "data_common" / "msd"
    common.mkdir(parents=True)
    vec = root / "data_tag_vector" / "msd"
    vec.mkdir(parents=True)
    rng = np.random.default_rng(0)
    matrix = (rng.random((n_tags, n_tracks)) < 0.5).astype(np.int8)
    matrix[0, :] = 1
    tags = [f"tag{i}" for i in range(n_tags)]
    tracks = [f"TR{i:03d}" for i in range(n_tracks)]
    for name, obj in {"all_tag_to_track_bin_matrix.p": matrix, "tag_ids_in_key_order.p": tags,
                      "track_ids_in_key_order.p": tracks,
                      "track_id_to_file_path_dict.p": {t: f"A/B/{t}.mp3" for t in tracks},
                      "tag_key_to_id_dict.p": dict(enumerate(tags))}.items():
        (common / name).write_bytes(pickle.dumps(obj, protocol=2))
    glove = {t: rng.standard_normal(300).astype(np.float32) for t in tags[:-1]}
    (vec / "ttr_ont_tag_1126_to_glove_dict.p").write_bytes(pickle.dumps(glove))
    return matrix, tags, tracks, glove


def test_seed_import_uses_original_mels_without_recomputing(tmp_path):
    matrix, tags, tracks, glove = _write_seed(tmp_path / "seed")
    mel_dir = tmp_path / "mel"
    for t in tracks[:-1]:  # the last track's mel is missing
        (mel_dir / "A" / "B").mkdir(parents=True, exist_ok=True)
        np.save(mel_dir / "A" / "B" / f"{t}.npy", np.full((1292, 128), 0.5, dtype=np.float32))
    ds, missing = import_seed(tmp_path / "seed", tmp_path / "ds", "msd", dir_mel=mel_dir)
    np.testing.assert_array_equal(ds.label_matrix(), matrix.T.astype(bool))
    assert ds.tag_texts == tags and ds.tracks.track_id.tolist() == tracks
    assert missing.track_id.tolist() == [tracks[-1]]
    ds = Dataset.load(tmp_path / "ds")
    assert ds.meta["normalisation"]["mean"] == PAPER_MEAN and ds.meta["mels"] == "original"
    mel = ds.mels[tracks[0]]
    assert mel.dtype == np.float32 and mel.shape == (1292, 128) and str(mel_dir) in str(ds.mels.file(tracks[0]))
    side = np.load(tmp_path / "ds" / "sideinfo" / "original-ttr_ont_tag_1126_to_glove_dict.npz")
    assert side["tags"].tolist() == tags[:-1] and side["missing"].tolist() == [tags[-1]]
    np.testing.assert_array_equal(side["vectors"][1], glove[tags[1]])


def test_original_side_information_is_a_loadable_kind(tmp_path):
    matrix, tags, tracks, glove = _write_seed(tmp_path / "seed")
    ds, _ = import_seed(tmp_path / "seed", tmp_path / "ds", "msd")
    P = config.resolve({"sideinfo": {"kinds": ["original", "random"], "random": {"like": "original"}}},
                       root=tmp_path)
    assert P["sideinfo"]["original"]["vectors"] == "glove"
    tables = build_tables(Context(ds.tag_texts, ds.tags, ds.label_matrix(), None, ds.root), P["sideinfo"])
    table = tables["original"]
    assert table.tags == tags and table.dim == 300 and tables["random"].dim == 300
    np.testing.assert_array_equal(table.vectors[2], glove[tags[2]])
    assert table.missing() == [tags[-1]]  # the pickle has no vector for it: a NaN row
    with pytest.raises(ParamError, match=r"sideinfo.original.vectors: 'inst_count' not found .*imported: "
                                         r"ttr_ont_tag_1126_to_glove_dict"):
        build_tables(Context(ds.tag_texts, ds.tags, ds.label_matrix(), None, ds.root),
                     {**P["sideinfo"], "kinds": ["original"], "original": {"vectors": "inst_count"}})
    with pytest.raises(ParamError, match="exist only for the dataset's tags"):
        text_vectors(["rock"], "original", P["sideinfo"])


def test_seed_import_refuses_unsafe_matrix(tmp_path):
    _write_seed(tmp_path / "seed")
    (tmp_path / "seed/data_common/msd/all_tag_to_track_bin_matrix.p").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(UnsafePickleError, match="all_tag_to_track_bin_matrix.p"):
        import_seed(tmp_path / "seed", tmp_path / "ds", "msd")


def test_seed_import_checks_shapes(tmp_path):
    _write_seed(tmp_path / "seed")
    (tmp_path / "seed/data_common/msd/tag_ids_in_key_order.p").write_bytes(pickle.dumps(["only"]))
    with pytest.raises(DataError, match=r"shape \(4, 5\) does not match 1 tag keys"):
        import_seed(tmp_path / "seed", tmp_path / "ds", "msd")
