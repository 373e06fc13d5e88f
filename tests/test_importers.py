"""The importers of published datasets, on copies in their exact on-disk formats (zslkit.data.datasets.samples).

Each importer is checked for what it reads (tags, groups, the dataset's own split, what it reports),
and every numbered notebook runs on each of them through the runner with the dataset's params file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from zslkit.data.datasets import Dataset, fma, gtzan, jamendo, mtat, samples, seed
from zslkit.errors import DataError, ParamError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    base = tmp_path_factory.mktemp("formats")
    return {"mtat": samples.write_mtat(base / "mtat"), "jamendo": samples.write_jamendo(base / "jamendo", seconds=6.0),
            "gtzan": samples.write_gtzan(base / "gtzan"), "fma": samples.write_fma(base / "fma"),
            "seed": samples.write_seed(base / "seed")}


def test_mtat_top50_hex_split_clip_info_and_spelling(fixtures, tmp_path):
    root = fixtures["mtat"]
    ds, report = mtat.import_mtat(tmp_path / "ds", root / "annotations_final.csv", root,
                                  root / "clip_info_final.csv")
    assert ds.tag_texts == mtat.TOP50 and set(ds.tags.group) == {"instrument", "genre", "vocal", "mood"}
    first = ds.tracks.mp3_path.str[0]
    assert (ds.tracks.split[first.isin(list("0123456789ab"))] == "train").all()
    assert (ds.tracks.split[first == "c"] == "valid").all()
    assert (ds.tracks.split[first.isin(list("def"))] == "test").all()
    assert ds.tracks.artist.iloc[0] == "Artist 0" and report["no_audio"] == 0
    # the split lists give the same parts as the hex rule they were written from
    by_list, _ = mtat.import_mtat(tmp_path / "ds2", root / "annotations_final.csv", root,
                                  split_lists=root / "split")
    assert by_list.tracks.split.tolist() == ds.tracks.split.tolist()
    # all tags keep the dataset's spellings; a spelling map merges them
    every, _ = mtat.import_mtat(tmp_path / "ds3", root / "annotations_final.csv", root, tags="all")
    assert "clasical" in every.tag_texts
    fix = tmp_path / "spelling.csv"
    fix.write_text("tag,correct\nclasical,classical\nharpsicord,harpsichord\n")
    fixed, _ = mtat.import_mtat(tmp_path / "ds4", root / "annotations_final.csv", root, tags="all", spelling=fix)
    assert "clasical" not in fixed.tag_texts
    both = every.labels(every.tracks.track_id, ["clasical", "classical"]).any(axis=1)
    assert np.array_equal(fixed.labels(fixed.tracks.track_id, ["classical"])[:, 0], both)


def test_jamendo_groups_window_split_and_duplicates(fixtures, tmp_path):
    root = fixtures["jamendo"]
    ds, report = jamendo.import_jamendo(tmp_path / "ds", root / "data", root / "audio", offset=1.0, window=4.0)
    assert set(ds.tags.group) == {"genre", "instrument", "mood/theme"}
    assert "rock" in ds.tag_texts and not any("---" in t for t in ds.tag_texts)
    assert set(ds.tracks.split) == {"train", "valid", "test"}
    assert (ds.tracks.start == 1.0).all() and (ds.tracks.duration == 4.0).all()
    assert report["duplicate_audio"] == [["track_0000382", "track_0000389"]]
    with pytest.raises(DataError, match="no track to import"):
        jamendo.import_jamendo(tmp_path / "ds3", root / "data", root / "audio", window=10.0)
    only, _ = jamendo.import_jamendo(tmp_path / "ds4", root / "data", root / "audio", categories=["genre"],
                                     window=4.0, split_index=None)
    assert set(only.tags.group) == {"genre"} and set(only.tracks.split) == {""}


def test_jamendo_window_reaches_the_mels(fixtures, tmp_path):
    from zslkit.data import prepare
    root = fixtures["jamendo"]
    ds, _ = jamendo.import_jamendo(tmp_path / "ds", root / "data", root / "audio", offset=1.0, window=2.0)
    windows = prepare.track_windows(ds)
    assert windows[ds.tracks.track_id[0]] == (1.0, 2.0)
    params = {"audio": {"sample_rate": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 128, "log_gain": 10.0,
                        "pad_mode": "constant", "max_duration": None, "min_duration": 1.0, "layout": "shards",
                        "scheduler": "local", "shard_tracks": 512},
              "run": {"workers": 1, "progress": False}}
    table = prepare.compute_mels(ds, params)
    assert (table.status == "ok").all() and (table.n_frames == 1 + 2 * 22050 // 512).all()


def test_gtzan_filtered_lists_and_a_corrupt_clip(fixtures, tmp_path):
    from zslkit.data import prepare
    root = fixtures["gtzan"]
    ds, report = gtzan.import_gtzan(tmp_path / "ds", root, root)
    assert ds.meta["single_label"] and ds.tag_texts == sorted(samples.GTZAN_GENRES)
    assert (np.asarray(ds.annotations.sum(axis=1)).ravel() == 1).all()
    assert len(report["left_out"]) == len(samples.GTZAN_GENRES)  # one clip per genre is in no list
    assert "jazz.00054" in set(ds.tracks.track_id)
    params = {"audio": {"sample_rate": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 128, "log_gain": 10.0,
                        "pad_mode": "constant", "max_duration": None, "min_duration": 1.0, "layout": "shards",
                        "scheduler": "local", "shard_tracks": 512},
              "run": {"workers": 1, "progress": False}}
    table = prepare.compute_mels(ds, params)
    bad = table[table.status == "error"]
    assert bad.track_id.tolist() == ["jazz.00054"] and "unreadable" in bad.reason.iloc[0]


def test_fma_subsets_labels_and_openmic_vectors(fixtures, tmp_path):
    root = fixtures["fma"]
    ds, report = fma.import_fma(tmp_path / "ds", root / "fma_metadata", openmic=root / "openmic-2018")
    assert report["no_audio"] == 1 and set(ds.tracks.split) <= {"train", "valid", "test"}
    assert set(ds.tags.group) <= {g[2] for g in samples.FMA_GENRES if g[1] == 0}
    table = pd.read_csv(ds.root / "knowledge.csv")
    assert table.shape[1] == 41 and set(table.tag) <= set(ds.tag_texts)
    np.testing.assert_allclose(table.iloc[:, 1:].mean(axis=1), 0, atol=1e-9)  # z-scored per genre
    genres = fma.read_genres(root / "fma_metadata" / "genres.csv")
    records = fma.read_tracks(root / "fma_metadata" / "tracks.csv", genres, "large", "genres_all")
    assert len(records) == 64 and all(len(r.tags) >= 1 for r in records)


def test_fma_instrument_vectors_follow_the_original_recipe(tmp_path):
    genres = pd.DataFrame({"parent": [0, 0], "title": ["Rock", "Jazz"], "top_level": [12, 4]}, index=[12, 4])
    folder = tmp_path / "openmic"
    folder.mkdir()
    classes = {c: i for i, c in enumerate(samples.OPENMIC_CLASSES)}
    (folder / "class-map.json").write_text(__import__("json").dumps(classes))
    y = np.full((3, 20), 0.5)
    mask = np.zeros((3, 20), bool)
    y[0, 8], mask[0, 8] = 0.9, True     # track 1: guitar present
    y[1, 8], mask[1, 8] = 0.1, True     # track 2: guitar absent
    y[2, 19], mask[2, 19] = 0.8, True   # track 2: voice present
    keys = np.array(["000001_0", "000002_0", "000002_10"])
    np.savez(folder / "openmic-2018.npz", Y_true=y, Y_mask=mask, sample_key=keys)
    table = fma.instrument_vectors(folder, genres, {1: [12], 2: [12, 4]}).set_index("tag")
    rock = np.zeros(40)
    rock[[8, 28, 19]] = 1  # guitar present + guitar absent + voice present
    expect = (rock - rock.mean()) / rock.std()
    np.testing.assert_allclose(table.loc["Rock"].to_numpy(), expect)
    assert table.loc["Jazz", "guitar_absent"] > 0 and table.loc["Jazz", "guitar_present"] < 0


def test_dataset_split_becomes_train_and_valid_inside_a_and_b(fixtures, tmp_path):
    from zslkit.data import splits
    root = fixtures["mtat"]
    ds, _ = mtat.import_mtat(tmp_path / "ds", root / "annotations_final.csv", root)
    params = {"name": "s0", "ratio": 0.8, "seed": 0, "stratify": "group", "unseen": None, "track_seed": 0,
              "train_ratio": 0.9, "original": None, "original_trs": "TRSPP", "tracks": "dataset"}
    split = splits.prepare_split(ds, params)
    own = dict(zip(ds.tracks.track_id, ds.tracks.split))
    for s in ("A", "B", "AB"):
        assert {own[t] for t in split.tracks[f"{s}_train"]} <= {"train"}
        assert {own[t] for t in split.tracks[f"{s}_valid"]} <= {"valid"}
        assert {own[t] for t in split.tracks[f"{s}_test"]} <= {"test"}
    msd, _ = seed.import_seed(fixtures["seed"], tmp_path / "msd", "msd")
    with pytest.raises(ParamError, match="no split column"):
        splits.prepare_split(msd, {**params, "name": "s1"})


# ----------------------------------------------------------------------------- every notebook


def _folder_without_groups(fixtures: dict, tmp: Path) -> dict:
    """A folder + CSV dataset made of the GTZAN sample's clips, two tags each, no tag groups."""
    clips = sorted((fixtures["gtzan"] / "genres").glob("*/*.au"))
    clips = [c for c in clips if c.stem != "jazz.00054"]
    rows = [{"path": str(c), "tags": f"{c.parent.name};{'fast' if i % 2 else 'slow'}"} for i, c in enumerate(clips)]
    pd.DataFrame(rows).to_csv(tmp / "folder.csv", index=False)
    return {"run": {"name": "folder", "seed": 0}, "data": {"source": "folder", "name": "folder",
                                                           "folder": {"csv": str(tmp / "folder.csv")}},
            "sideinfo": {"kinds": ["glove", "random"]}, "model": {"sideinfo": "glove"},
            "train": {"baseline": True, "controls": ["random"]}}


def _params(name: str, fixtures: dict, tmp: Path) -> Path:
    if name == "folder":
        P = _folder_without_groups(fixtures, tmp)
    else:
        P = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text())
    src = P["data"]["source"]
    paths = {
        "mtat": lambda r: {"annotations": str(r / "annotations_final.csv"), "clip_info": str(r / "clip_info_final.csv"),
                           "audio_root": str(r)},
        "jamendo": lambda r: {"root": str(r / "data"), "audio_root": str(r / "audio"), "window": 5.0},
        "gtzan": lambda r: {"root": str(r), "split_lists": str(r)},
        "fma": lambda r: {"metadata": str(r / "fma_metadata"), "audio_root": str(r / "fma_small"),
                          **({"openmic": str(r / "openmic-2018")} if "openmic" in P["data"]["fma"] else {})},
        "seed": lambda r: {"root": str(r), "dir_mel": str(r / "mels")},
        "folder": lambda r: {},
    }[src](fixtures.get(src))
    P["data"][src].update(paths)
    if src == "seed":  # the tag without a GloVe vector is unseen: it is counted, not scored
        P["split"] = {"name": "s0", "unseen": ["jazz", "folk", "reggae"]}
    P["run"].update(reports_dir=str(tmp / "reports"), data_dir=str(tmp / "data"), progress=False, workers=1)
    P["audio"] = {**P.get("audio", {}), "n_examples": 1}
    P["sideinfo"]["random"] = {**P["sideinfo"].get("random", {}), "draws": 1}
    # the sentence model takes seconds to load in every run; the smoke run and the unit tests cover it
    P["sideinfo"]["kinds"] = [k for k in P["sideinfo"]["kinds"] if k != "sentence"]
    # two models (the joint one and the random control): the other model kinds are exercised on smoke
    P["train"].update(batch_size=8, max_epochs=2, crops_per_track=1, early_stop=2, also=[], baseline=False)
    P["embed"] = {"widget": False, "umap": {"max_tracks": 40}, "example_tracks": 1}
    P["evaluate"] = {"bootstrap": 20, "permutations": 50, "examples": 1}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(P))
    return path


@pytest.fixture(scope="module")
def runs(fixtures, tmp_path_factory):
    """Run every notebook on a dataset once per module: ``runs(name) -> run folder``."""
    from zslkit.cli import main
    done = {}

    def get(name: str) -> Path:
        if name not in done:
            tmp = tmp_path_factory.mktemp(name)
            path = _params(name, fixtures, tmp)
            assert main(["run", str(path)]) == 0
            done[name] = tmp / "reports" / yaml.safe_load(path.read_text())["run"]["name"]
        return done[name]
    return get


@pytest.mark.slow
# fma_instrument runs the fma importer (with OpenMIC); its other options are covered by the unit tests above.
# jamendo and gtzan run with `make test-datasets` (their importers' own logic is unit-tested above; GTZAN's
# notebook 01 also runs in the transfer test), to keep `make test` short.
@pytest.mark.parametrize("name", ["mtat", pytest.param("jamendo", marks=pytest.mark.datasets),
                                  pytest.param("gtzan", marks=pytest.mark.datasets), "fma_instrument", "msd_glove",
                                  "folder"])
def test_every_notebook_runs_on_the_dataset(name, runs):
    from zslkit.run.report import read_results
    folder = runs(name)
    r = read_results(folder)
    assert {"01_preprocess", "02_splits", "03_train", "04_embeddings", "05_evaluate"} <= set(r.stage)
    auc = r[(r.stage == "05_evaluate") & (r.test_setting == "(B+C)-Y") & (r.metric == "AUC-l")]
    assert len(auc) and auc.value.between(0, 1).all()
    assert (folder / "06_compare.ipynb").is_file() and (folder / "html" / "06_compare.html").is_file()
    assert not (folder / "07_transfer.ipynb").exists()  # transfer is its own pipeline
    ds = Dataset.load(next((folder.parent.parent / "data").iterdir()))
    assert ds.meta["source"] in {"mtat", "jamendo", "gtzan", "fma", "seed", "folder"}


@pytest.mark.slow
def test_transfer_from_mtat_to_gtzan_reports_accuracy(runs, fixtures, tmp_path):
    from zslkit.cli import main
    from zslkit.run.report import read_results
    source = runs("mtat")
    target = _params("gtzan", fixtures, tmp_path)
    assert main(["transfer", str(source), str(target)]) == 0
    r = read_results(tmp_path / "reports" / "gtzan")
    t = r[r.stage == "07_transfer"]
    acc = t[(t.metric == "accuracy") & (t.test_setting == "target-T")]
    chance = t[(t.metric == "accuracy, chance (1 / tags)") & (t.test_setting == "target-T")]
    assert len(acc) == 1 and 0 <= acc.value.iloc[0] <= 1 and acc.n.iloc[0] == 50  # the corrupt clip has no mel
    assert chance.value.iloc[0] == pytest.approx(1 / 10)
    seen = t[t.metric == "target tags seen by the source"].value.iloc[0]
    split = json.loads((source.parent.parent / "data" / "mtat" / "splits" / "s0" / "tag_split.json").read_text())
    both = {"classical", "country", "metal", "pop", "rock"}  # GTZAN genres among MTAT's top 50
    assert seen == len(both & set(split["seen"]))


def test_original_mels_report_the_missing_one_with_its_path(fixtures, tmp_path):
    from zslkit.data import prepare
    ds, missing = seed.import_seed(fixtures["seed"], tmp_path / "msd", "msd", dir_mel=fixtures["seed"] / "mels")
    assert len(missing) == 1 and missing.track_id.iloc[0] == ds.tracks.track_id.iloc[-1]
    table = prepare.compute_mels(ds, {"audio": {}, "run": {}})
    assert table[["track_id", "path", "reason"]].shape == (1, 3) and table.path.iloc[0].endswith(".mp3")
