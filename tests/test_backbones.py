"""Frozen pretrained backbones (issue 23): the seam, the feature cache, training on features, HEAR both ways, leakage.

A toy backbone (band energies of the waveform) and a toy HEAR module written here stand in for musicnn, so that
everything but the musicnn checks runs in seconds without the ``.[backbones]`` extra. The dataset is 36 rendered
clips of 2 s in a folder (six tags, each with its own sound), imported with ``data.source: folder``; its unseen
tags are violin and bells, and the toy backbone says it was taught "violins" (a synonym: violin is leaky).
"""
import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from zslkit import config
from zslkit.data import leakage
from zslkit.data.features import (
    Backbone,
    BackboneSpec,
    FeatureStore,
    SupervisedOn,
    backbone_of,
    compute_features,
    is_frozen,
)
from zslkit.errors import ParamError
from zslkit.layout import DatasetLayout, RunLayout
from zslkit.registry import ENCODERS, Field

SR = 16000
TAGS = ("bass", "flute", "violin", "drums", "organ", "bells")


class ToyBands(Backbone):
    """Log energy in ``bands`` geometric frequency bands: a backbone that needs no weights."""

    sample_rate = 8000
    clips_embedded = 0

    def __init__(self, bands: int = 8, taught: list | None = None):
        self.bands = bands
        self.supervised_on = SupervisedOn(tuple(taught or ("violins", "guitar")), ("toyset",))

    @property
    def dim(self) -> int:
        return self.bands

    @property
    def key(self) -> str:
        return f"toybands-{self.bands}"

    def embed(self, clips):
        ToyBands.clips_embedded += len(clips)
        out = []
        for y in clips:
            power = np.abs(np.fft.rfft(y)) ** 2
            edges = np.unique(np.geomspace(1, len(power), self.bands + 1).astype(int))
            e = [np.log1p(power[a:max(b, a + 1)].sum()) for a, b in zip(edges[:-1], edges[1:])]
            out.append(np.pad(e, (0, self.bands - len(e))))
        return np.asarray(out, dtype=np.float32)


def register() -> None:
    """The registration a user writes for a backbone of their own (docs/extending.md)."""
    ENCODERS.register("toybands", ToyBands, frozen=True, replace=True, doc="band energies (a test)", params={
        "bands": Field("int", 8, "bands", lo=1, stage="01"),
        "taught": Field("list", ["violins", "guitar"], "what it says it was supervised on", item="str", stage="01")})


if __name__.startswith("zslkit_plugin_"):  # loaded by run.plugins in a notebook kernel: register as a user would
    register()


@pytest.fixture(autouse=True)
def toy_backbone():
    register()
    yield
    ENCODERS.unregister("toybands")


def sound(tag: str, rng, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    if tag == "bass":
        f = rng.uniform(50, 90)
        return sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3))
    if tag == "flute":
        return np.sin(2 * np.pi * rng.uniform(900, 1300) * t) + 0.05 * rng.standard_normal(len(t))
    if tag == "violin":
        f = rng.uniform(400, 700)
        return sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 12))
    if tag == "drums":
        return 2 * np.exp(-((t * rng.uniform(2, 3)) % 1.0) * 30) * rng.standard_normal(len(t))
    if tag == "organ":
        f = rng.uniform(180, 280)
        return sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 3, 5, 7))
    f = rng.uniform(2000, 3000)
    return np.exp(-((t * 1.5) % 1.0) * 4) * sum(np.sin(2 * np.pi * r * f * t) for r in (1.0, 1.41, 2.23))


def write_folder(folder, n_pairs: int = 24):
    """Two clips of each tag alone and ``n_pairs`` of two tags; returns the CSV."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pairs = list(itertools.combinations(TAGS, 2))
    combos = [(t,) for t in TAGS for _ in range(2)] + [pairs[i % len(pairs)] for i in rng.permutation(n_pairs)]
    rows = []
    for i, tags in enumerate(combos):
        y = sum(sound(t, rng) for t in tags)
        sf.write(folder / f"c{i:02d}.wav", (0.5 * y / np.abs(y).max()).astype(np.float32), SR)
        rows.append({"path": f"c{i:02d}.wav", "tags": ";".join(tags)})
    pd.DataFrame(rows).to_csv(folder / "tags.csv", index=False)
    return folder / "tags.csv"


def params_for(tmp_path, csv, encoder="toybands", **sections):
    given = {"run": {"name": "frozen", "reports_dir": str(tmp_path / "reports"), "data_dir": str(tmp_path / "data"),
                     "workers": 1, "progress": False},
             "data": {"source": "folder", "name": "tones", "folder": {"csv": str(csv)}},
             "split": {"unseen": ["violin", "bells"], "train_ratio": 0.75},
             "sideinfo": {"kinds": ["glove", "random"]},
             "model": {"encoder": encoder, "sideinfo": "glove"},
             "train": {"batch_size": 8, "max_epochs": 6, "optimizer": "adam", "lr": 0.01, "device": "cpu",
                       "baseline": True, "controls": ["random"]},
             "embed": {"widget": False},
             "evaluate": {"bootstrap": 0, "permutations": 0, "diagnostics": False}}
    for k, v in sections.items():
        given[k] = {**given.get(k, {}), **v}
    return config.resolve(given, root=tmp_path)


# ----------------------------------------------------------------------------------------------------- the seam

def test_frozen_encoders_are_registered_with_their_sections():
    assert is_frozen("musicnn") and is_frozen("hear") and not is_frozen("paper_bn")
    P = config.resolve({"model": {"encoder": "musicnn", "musicnn": {"variant": "MSD_musicnn"}}}, root=".")
    assert P["model"]["musicnn"] == {"variant": "MSD_musicnn", "layer": None}
    assert config.stage_of("model.musicnn") == "01" and config.stage_of("model.encoder") == "03"
    with pytest.raises(ParamError, match="model.musicnn.variant"):
        config.resolve({"model": {"musicnn": {"variant": "MTT_resnet"}}}, root=".")
    with pytest.raises(ParamError, match="model.hear.module: name the HEAR module"):
        backbone_of("hear")
    with pytest.raises(ParamError, match="not a frozen backbone"):
        backbone_of("paper")


def test_features_are_cached_resumably_with_the_mel_jobs_reasons(tmp_path):
    csv = write_folder(tmp_path / "audio", n_pairs=6)
    folder = csv.parent
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "short.wav", np.zeros(400, np.float32) + 0.1, SR)
    tracks = [(f"c{i:02d}", str(folder / f"c{i:02d}.wav")) for i in range(18)]
    tracks += [("empty", str(folder / "empty.wav")), ("short", str(folder / "short.wav")),
               ("gone", str(folder / "gone.wav"))]
    spec = BackboneSpec("toybands", {"bands": 6, "taught": []})
    out = tmp_path / "features"
    ToyBands.clips_embedded = 0
    # a job killed after its first task: one part file (the same format as the merged one), no merged file
    first = compute_features(tracks[:4], out, spec, workers=1, progress=False, chunk=4)
    (out / "parts").mkdir(exist_ok=True)
    (out / "features.npz").rename(out / "parts" / "0123456789abcdef.npz")
    assert (first.status == "ok").all() and ToyBands.clips_embedded == 4
    table = compute_features(tracks, out, spec, workers=1, progress=False, chunk=4)
    assert ToyBands.clips_embedded == 18  # the part's four were not embedded again
    assert table.status.tolist()[:4] == ["cached"] * 4
    reasons = dict(zip(table.track_id, table.reason))
    assert reasons["empty"] == "empty (0 bytes)" and reasons["short"].startswith("too short")
    assert reasons["gone"] == "unreadable: not found"
    assert not list((out / "parts").glob("*.npz"))  # merged into features.npz
    store = FeatureStore.from_dir(out)
    assert len(store) == 18 and store.dim == 6 and store["c03"].shape == (1, 6)
    assert store.n_frames(["c01", "c02"]).tolist() == [1, 1] and "empty" not in store
    meta = json.loads((out / "meta.json").read_text())
    assert meta["key"] == "toybands-6" and meta["sample_rate"] == 8000 and meta["seconds_per_clip"] > 0
    assert set(pd.read_csv(out / "errors.csv").track_id) == {"empty", "short", "gone"}
    again = compute_features(tracks, out, spec, workers=1, progress=False)
    assert ToyBands.clips_embedded == 18 and (again.status != "ok").all()
    np.testing.assert_array_equal(FeatureStore.from_dir(out).matrix(["c05"]), store.matrix(["c05"]))


# ----------------------------------------------------------------------------------------------------- leakage

def test_leaky_tags_match_exactly_or_by_the_synonym_list():
    vocab = ["violins", "Choral", "male vocal", "Hip-Hop", "female vocalists", "guitar"]
    tags = ["violin", "choir", "male voice", "hip hop", "female vocalist", "Guitar", "cello", "vocal", "voice"]
    assert leakage.leaky_tags(tags, vocab) == {"violin": "violins", "choir": "Choral", "male voice": "male vocal",
                                               "hip hop": "Hip-Hop", "female vocalist": "female vocalists",
                                               "Guitar": "guitar"}
    assert leakage.leaky_tags(["vocals", "singing"], ["vocal"]) == {"vocals": "vocal", "singing": "vocal"}


def test_a_run_on_the_backbones_own_corpus_is_warned():
    mtt = SupervisedOn(("guitar",), ("mtat",))
    msd = SupervisedOn((), ("msd",))
    on = lambda source, **data: config.resolve({"data": {"source": source, **data}}, root=".")  # noqa: E731
    assert "trained on this dataset's corpus (mtat)" in leakage.corpus_warnings(on("mtat"), mtt, "m")[0]
    assert "1,807 MagnaTagATune" in leakage.corpus_warnings(on("mtat"), msd, "m")[0]
    assert "corpus (msd)" in leakage.corpus_warnings(on("seed"), msd, "m")[0]
    assert leakage.corpus_warnings(on("seed", seed={"dataset": "fma"}), msd, "m") == []
    assert leakage.corpus_warnings(on("m21"), mtt, "m") == [] == leakage.corpus_warnings(on("folder"), mtt, "m")


# ----------------------------------------------------------------------------------------------------- end to end

@pytest.fixture
def frozen_run(tmp_path):
    """Stages 01-05 of a toy-backbone run, through the stages' own functions."""
    from zslkit.data import prepare, sideinfo, splits
    from zslkit.evaluate.embed import embed_run
    from zslkit.evaluate.protocol import evaluate_run
    from zslkit.model.train import train_stage
    from zslkit.plan import RunPlan
    csv = write_folder(tmp_path / "audio")
    P = params_for(tmp_path, csv)
    ds, _ = prepare.prepare_dataset(P)
    prepare.compute_mels(ds, P)
    features = prepare.backbone_features(ds, P)
    split = splits.prepare_split(ds, P["split"])
    leaks = leakage.for_run(ds, split, P)
    sideinfo.prepare_sideinfo(ds, P["sideinfo"], split, trained=RunPlan.from_params(P).sideinfo_kinds())
    run = RunLayout.from_params(P).root
    run.mkdir(parents=True)
    RunLayout.at(run).params.write_text(config.dump(P))
    trained = train_stage(ds, split, P, run, progress=False)
    embedded = embed_run(ds, split, P, run)
    result = evaluate_run(ds, split, P, run)
    return {"P": P, "ds": ds, "split": split, "features": features, "leaks": leaks, "trained": trained,
            "embedded": embedded, "result": result, "run": run, "csv": csv}


def test_a_frozen_backbone_run_trains_on_cached_features_and_scores_non_leaky_tags(frozen_run):
    r = frozen_run
    ds, f = r["ds"], r["features"]
    assert f.key == "toybands-8" and (f.table.status == "ok").all() and f.warnings == []
    assert ds.meta["features"]["toybands-8"]["n_tracks"] == ds.n_tracks
    assert {row["metric"] for row in f.results_rows()} >= {"n_tracks_with_features", "seconds_per_clip"}
    # stage 02: violin is leaky (the backbone says it learnt "violins"), bells is not; saved with the split
    assert r["leaks"].leaky == {"violin": "violins"} and r["leaks"].non_leaky == ["bells"]
    saved = DatasetLayout.at(ds.root).leakage("s0", "toybands-8")
    assert json.loads(saved.read_text())["leaky"] == {"violin": "violins"}
    # stage 03: the projection on 8-d features, the backbone recorded in the checkpoint, the classifier too
    tr = r["trained"]["joint"]["trainer"]
    assert tr.arch["backbone"]["key"] == "toybands-8" and tr.arch["segment_frames"] == 1
    assert sum(p.numel() for p in tr.net.audio.parameters()) == 8 * 100 + 100
    assert set(r["trained"]) == {"joint", "classifier", "joint-random"}
    blob = torch.load(RunLayout.at(r["run"]).checkpoint("classifier"), weights_only=True)
    assert blob["arch"]["backbone"]["supervised_on"]["tags"] == ["violins", "guitar"]
    # stage 04: every track, from the features
    emb = r["embedded"]["joint"]
    assert emb.tracks.shape == (ds.n_tracks, 100) and emb.meta["backbone"]["key"] == "toybands-8"
    # stage 05: each unseen-tag setting again without violin
    rows = pd.DataFrame(r["result"]["rows"])
    non_leaky = rows[rows.test_setting.str.endswith("non-leaky")]
    assert {"(B+C)-Y non-leaky", "(B+C)-(X+Y) non-leaky", "(A+B+C)-Y non-leaky"} <= set(non_leaky.test_setting)
    assert not non_leaky.test_setting.str.startswith(("A-valid", "B-X")).any()
    auc = non_leaky[(non_leaky.test_setting == "(B+C)-Y non-leaky") & (non_leaky.task == "retrieval")
                    & (non_leaky.metric == "AUC-l") & (non_leaky.model == "embedding glove")]
    assert len(auc) == 1 and auc.n.iloc[0] == 1  # one unseen tag left: bells
    counted = rows[(rows.task == "leakage") & (rows.model == "embedding glove")]
    assert counted.value.tolist() == [1] and counted.n.tolist() == [2]
    from zslkit.data.leakage import leakage_table
    table = leakage_table(rows).set_index("model")
    assert table.loc["embedding glove", "leaky unseen tags"] == 1
    assert table.loc["embedding glove", "(B+C)-Y AUC-l non-leaky"] == auc.value.iloc[0]


def test_tag_transfer_and_hear_out_work_on_a_frozen_run(frozen_run, tmp_path):
    from zslkit import hear
    from zslkit.data.datasets import Dataset
    from zslkit.tagging import tag_files
    from zslkit.transfer import seen_report, transfer_models
    r = frozen_run
    folder = r["csv"].parent
    scores, skipped = tag_files(r["run"], folder / "c00.wav", top=3)
    assert len(scores) == 3 and skipped.empty
    # transfer onto another dataset folder: its features are computed for it, violin marked leaky
    target_csv = write_folder(tmp_path / "target", n_pairs=6)
    T = params_for(tmp_path, target_csv, encoder="paper", data={"name": "target", "folder": {"csv": str(target_csv)}},
                   run={"name": "target-run"}, transfer={"models": ["joint"]})
    from zslkit.data import prepare
    ds_t, _ = prepare.prepare_dataset(T)
    rows, embedded, skipped = transfer_models(r["run"], r["P"], ds_t, T)
    assert not skipped and (DatasetLayout.at(ds_t.root).features("toybands-8") / "features.npz").is_file()
    report = seen_report(embedded["joint"])
    assert report.set_index("tag").leaky.to_dict() == {t: t == "violin" for t in TAGS}
    table = pd.DataFrame(rows)
    assert "target-T unseen by source non-leaky" in set(table.test_setting)
    assert table[table.metric == "target tags the backbone was supervised on"].value.tolist() == [1]
    # HEAR out: the run's joint space, as stage 04 computed it for the same audio
    model = hear.load_model(str(r["run"]))
    assert model.sample_rate == 8000 and model.scene_embedding_size == 100
    from zslkit.data.audio import load_audio
    y = load_audio(folder / "c00.wav", 8000)
    scene = hear.get_scene_embeddings(torch.from_numpy(np.stack([y, y])), model)
    emb = r["embedded"]["joint"]
    track = Dataset.load(r["ds"].root).tracks.track_id.iloc[0]
    np.testing.assert_allclose(scene[0].numpy(), emb.tracks[emb.track_row[track]], rtol=1e-4, atol=1e-5)
    frames, ms = hear.get_timestamp_embeddings(torch.from_numpy(y[None, :4000]), model)
    assert frames.shape == (1, 10, 100) and ms[0, :3].tolist() == [0.0, 50.0, 100.0]


@pytest.mark.slow
def test_the_notebooks_run_a_frozen_backbone(tmp_path):
    """``zslkit run`` (papermill, stages 01-06) with the toy backbone as a plugin: notebook 01 caches its features,
    02 marks violin leaky, 03 trains on features, 04 embeds and maps, 05 scores the non-leaky settings."""
    from zslkit.cli import main
    from zslkit.run.report import read_results
    csv = write_folder(tmp_path / "audio")
    params = {"run": {"name": "toy", "reports_dir": str(tmp_path / "reports"), "data_dir": str(tmp_path / "data"),
                      "plugins": [str(Path(__file__).resolve())], "progress": False},
              "data": {"source": "folder", "name": "tones", "folder": {"csv": str(csv)}},
              "audio": {"n_examples": 1},
              "split": {"unseen": ["violin", "bells"], "train_ratio": 0.75},
              "sideinfo": {"kinds": ["glove", "random"]},
              "model": {"encoder": "toybands", "sideinfo": "glove"},
              "train": {"batch_size": 8, "max_epochs": 3, "optimizer": "adam", "baseline": True},
              "embed": {"widget": False, "umap": {"max_tracks": 30}, "queries": ["low hum"], "example_tracks": 1},
              "evaluate": {"bootstrap": 20, "permutations": 50, "examples": 1}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main(["run", str(path)]) == 0
    r = read_results(tmp_path / "reports" / "toy")
    one = r[r.stage == "01_preprocess"]
    assert one[one.metric == "n_tracks_with_features"].value.tolist() == [36]
    two = r[(r.stage == "02_splits") & (r.task == "leakage")]
    assert two[two.metric == "leaky unseen tag"].test_setting.tolist() == ["violin"]
    five = r[r.stage == "05_evaluate"]
    assert "(B+C)-Y non-leaky" in set(five.test_setting)
    assert (tmp_path / "data" / "tones" / "features" / "toybands-8" / "features.npz").is_file()


# ----------------------------------------------------------------------------------------------------- HEAR in

TOY_HEAR = '''
"""A toy HEAR module: a sound's mean, deviation and zero-crossing rate, at 4 kHz."""
import torch

sample_rate = 4000
scene_embedding_size = 3
supervised_on = {"tags": ["choral"], "datasets": ["toyhear"]}


class Model(torch.nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale


def load_model(model_file_path=""):
    scale = float(open(model_file_path).read()) if model_file_path else 1.0
    return Model(scale)


def get_scene_embeddings(audio, model):
    crossings = (audio[:, 1:] * audio[:, :-1] < 0).float().mean(dim=1)
    return model.scale * torch.stack([audio.mean(dim=1), audio.std(dim=1), crossings], dim=1)
'''


def test_any_hear_module_is_a_backbone(tmp_path, monkeypatch):
    (tmp_path / "toy_hear_mod.py").write_text(TOY_HEAR)
    (tmp_path / "scale.txt").write_text("2.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    bb = backbone_of("hear", {"module": "toy_hear_mod", "weights": str(tmp_path / "scale.txt"), "supervised_on": {}})
    assert bb.sample_rate == 4000 and bb.dim == 3 and bb.key.startswith("hear-toy_hear_mod-")
    assert bb.supervised_on == SupervisedOn(("choral",), ("toyhear",))
    clips = [np.sin(np.arange(4000) / 3).astype(np.float32), np.ones(2000, np.float32), np.zeros(4000, np.float32)]
    out = bb.embed(clips)  # lengths differ: batched by length
    assert out.shape == (3, 3) and out[1, 0] == pytest.approx(2.0)
    declared = backbone_of("hear", {"module": "toy_hear_mod", "weights": "", "supervised_on": {"tags": ["x"]}})
    assert declared.supervised_on.tags == ("x",) and declared.key == "hear-toy_hear_mod"
    (tmp_path / "not_hear_mod.py").write_text("sample_rate = 1\n")
    with pytest.raises(ParamError, match="does not follow the HEAR API: no load_model"):
        backbone_of("hear", {"module": "not_hear_mod", "weights": "", "supervised_on": {}}).sample_rate
    with pytest.raises(ParamError, match="cannot import 'no_such_hear_mod'"):
        backbone_of("hear", {"module": "no_such_hear_mod", "weights": "", "supervised_on": {}}).dim


def test_a_trained_run_is_a_hear_backbone_of_another(frozen_run):
    bb = backbone_of("hear", {"module": "zslkit.hear", "weights": str(frozen_run["run"]), "supervised_on": {}})
    assert bb.dim == 100 and bb.sample_rate == 8000
    y = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    assert bb.embed([y, y[:4000]]).shape == (2, 100)


def test_a_paper_cnn_run_is_a_hear_module(tmp_path):
    """The HEAR module of a run trained on log-mels: its scene embedding is stage 04's track embedding."""
    from zslkit import hear
    from zslkit.data import prepare, sideinfo, splits
    from zslkit.data.audio import load_audio
    from zslkit.evaluate.embed import embed_joint
    from zslkit.model.train import train_stage
    csv = write_folder(tmp_path / "audio", n_pairs=6)
    P = params_for(tmp_path, csv, encoder="paper", audio={"segment_frames": 128},
                   train={"max_epochs": 1, "baseline": False, "controls": []})
    ds, _ = prepare.prepare_dataset(P)
    prepare.compute_mels(ds, P)
    assert prepare.backbone_features(ds, P) is None
    split = splits.prepare_split(ds, P["split"])
    sideinfo.prepare_sideinfo(ds, P["sideinfo"], split, trained=["glove"])
    run = RunLayout.from_params(P).root
    run.mkdir(parents=True)
    RunLayout.at(run).params.write_text(config.dump(P))
    train_stage(ds, split, P, run, progress=False)
    emb = embed_joint(ds, split, P, run)
    model = hear.load_model(str(run / "train" / "joint" / "best.pt"))
    assert model.sample_rate == 22050 and not model.frozen
    y = load_audio(ds.audio_path(emb.track_ids[0]), 22050)
    scene = hear.get_scene_embeddings(torch.from_numpy(y[None]), model)
    np.testing.assert_allclose(scene[0].numpy(), emb.tracks[0], rtol=1e-4, atol=1e-5)
    frames, ms = hear.get_timestamp_embeddings(torch.from_numpy(y[None, :22050]), model)
    assert frames.shape[:2] == ms.shape == (1, 22) and torch.isfinite(frames).all()


# ----------------------------------------------------------------------------------------------------- musicnn

needs_musicnn = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                   reason="musicnn's wheel (.[backbones]) is not installed")


@needs_musicnn
def test_musicnn_backbone_and_its_hear_module_agree():
    bb = backbone_of("musicnn")
    assert bb.key == "musicnn-MTT_musicnn-bn_dense" and bb.dim == 200 and bb.sample_rate == 16000
    assert bb.supervised_on.datasets == ("mtat",) and "choral" in bb.supervised_on.tags
    assert backbone_of("musicnn", {"variant": "MSD_vgg", "layer": None}).key == "musicnn-MSD_vgg-pool5"
    with pytest.raises(ParamError, match="not a layer of MTT_vgg"):
        backbone_of("musicnn", {"variant": "MTT_vgg", "layer": "bn_dense"})
    rng = np.random.default_rng(1)
    clip = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4 * 16000) / 16000) + 0.05 * rng.standard_normal(4 * 16000))
    clip = clip.astype(np.float32)
    mine = bb.embed([clip])
    hear_in = backbone_of("hear", {"module": "zslkit.model.backbones.hear_musicnn", "weights": "",
                                   "supervised_on": {}})
    assert hear_in.dim == 200 and hear_in.sample_rate == 16000
    np.testing.assert_allclose(hear_in.embed([clip]), mine, rtol=1e-5, atol=1e-5)



# ---------------------------------------------------------------------------------------- supervised-source ConSE

def test_source_conse_mixes_the_sources_best_tags_by_their_probabilities():
    from zslkit.evaluate.source_conse import conse_scores
    probs = np.array([[0.9, 0.1, 0.5, 0.3], [0.0, 0.0, 0.0, 0.0], [0.2, 0.6, 0.9, 0.1]])
    source = np.array([[1, 0], [0, 1], [np.nan, np.nan], [3, 4]], float)  # the third name has no vector
    tags = np.array([[1, 0], [1, 1], [0, 1], [np.nan, 0]], float)
    got = conse_scores(probs, source, tags, top=2)
    # track 0: its two best tags with vectors, 0.9 (1, 0) and 0.3 (0.6, 0.8), weighted 0.75 / 0.25
    mix0 = 0.75 * np.array([1, 0]) + 0.25 * np.array([0.6, 0.8])
    # track 1: no probability anywhere: the mean of every source tag with a vector; track 2: (0, 1) and (1, 0)
    # weighted 0.75 / 0.25
    mix1 = (np.array([1, 0]) + np.array([0, 1]) + np.array([0.6, 0.8])) / 3
    mix2 = 0.75 * np.array([0, 1]) + 0.25 * np.array([1, 0])
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    want = unit(np.stack([mix0, mix1, mix2])) @ unit(tags[:3]).T
    np.testing.assert_allclose(got[:, :3], want, rtol=1e-6)
    assert np.isnan(got[:, 3]).all()  # a tag without a vector cannot be scored
    # top larger than the names with vectors: all three mixed
    np.testing.assert_allclose(conse_scores(probs, source, tags, top=50), conse_scores(probs, source, tags, top=3))


def test_source_conse_refuses_what_it_cannot_mix():
    from zslkit.errors import DataError
    from zslkit.evaluate.source_conse import conse_scores
    with pytest.raises(DataError, match="no source tag name has a side-information vector"):
        conse_scores(np.ones((2, 2)), np.full((2, 3), np.nan), np.ones((1, 3)), 1)
    with pytest.raises(DataError, match="finite and >= 0; got min -1"):
        conse_scores(np.array([[0.5, -1.0]]), np.eye(2), np.eye(2), 1)
    with pytest.raises(ValueError, match="top must be at least 1, got 0"):
        conse_scores(np.ones((1, 2)), np.eye(2), np.eye(2), 0)


def test_the_supervised_source_peer_warns_on_its_sources_own_corpus_and_counts_names_without_vectors():
    from zslkit.evaluate.embeddings import Embeddings
    from zslkit.evaluate.source_conse import peer_rows
    record = {"key": "musicnn-MTT_musicnn-taggram", "supervised_on": {"tags": ["violin"], "datasets": ["mtat"]}}
    meta = {"label": "supervised-source conse glove (MTT_musicnn)", "backbone": record, "n_source_tags": 50,
            "source_tags_without_vector": []}
    view = Embeddings(["t"], np.ones((1, 2), np.float32), ["a"], np.ones((1, 2), np.float32), np.array([True]),
                      np.ones((1, 2), np.float32), meta)
    rows = peer_rows(view, {"data": {"source": "mtat"}}, "A-X")
    assert len(rows) == 1 and rows[0]["metric"] == "warning" and rows[0]["train_setting"] == "A-X"
    assert "trained on this dataset's corpus" in rows[0]["test_setting"]
    assert peer_rows(view, {"data": {"source": "gtzan"}}, "A-X") == []
    view.meta["source_tags_without_vector"] = ["no vocals", "new age"]
    (row,) = peer_rows(view, {"data": {"source": "gtzan"}}, "A-X")
    assert (row["metric"], row["value"], row["n"], row["test_setting"]) == (
        "source tags without side information", 2, 50, "no vocals, new age")


def test_source_conse_is_configured_with_free_text_kinds_only(tmp_path):
    P = config.resolve({"evaluate": {"source_conse": {"sideinfo": ["glove", "sentence"]}}}, root=tmp_path)
    assert P["evaluate"]["source_conse"] == {"sideinfo": ["glove", "sentence"], "source": "MTT_musicnn", "top": 10}
    with pytest.raises(ParamError, match="evaluate.source_conse.sideinfo"):
        config.resolve({"evaluate": {"source_conse": {"sideinfo": ["table"]}}}, root=tmp_path)
    with pytest.raises(ParamError, match="evaluate.source_conse.source"):
        config.resolve({"evaluate": {"source_conse": {"source": "MTT_resnet"}}}, root=tmp_path)


@needs_musicnn
def test_the_supervised_source_peer_is_scored_in_stage_05_and_transfer(frozen_run, tmp_path):
    """musicnn's MTT tag probabilities of the toy clips, mixed through GloVe: scored on every setting, violin (an MTT
    tag) leaky, so the unseen-tag settings come again on bells alone; transfer scores it on the target."""
    from zslkit.evaluate.protocol import evaluate_run
    from zslkit.plan import source_conse_label
    from zslkit.transfer import transfer_models
    r = frozen_run
    P = {**r["P"], "evaluate": {**r["P"]["evaluate"], "source_conse": {"sideinfo": ["glove"],
                                                                         "source": "MTT_musicnn", "top": 5}}}
    result = evaluate_run(r["ds"], r["split"], P, r["run"])
    label = source_conse_label("MTT_musicnn", "glove")
    assert label == "supervised-source conse glove (MTT_musicnn)"
    rows = pd.DataFrame(result["rows"])
    peer = rows[rows.model == label]
    key = peer[(peer.task == "retrieval") & (peer.metric == "AUC-l")].set_index("test_setting")
    assert {"(B+C)-Y", "(B+C)-Y non-leaky", "(A+B+C)-Y", "(B+C)-(X+Y)"} <= set(key.index)
    assert key.loc["(B+C)-Y", "n"] == 2 and key.loc["(B+C)-Y non-leaky", "n"] == 1
    # its scores are ConSE over the cached probabilities, every tag's column in place
    from zslkit.data.sideinfo import text_vectors
    from zslkit.evaluate.source_conse import conse_scores
    from zslkit.model.backbones import musicnn
    view = result["embeddings"][label]
    tags = list(r["split"].seen) + list(r["split"].unseen)
    assert view.tags == tags and view.seen.tolist() == [t in r["split"].seen for t in tags]
    store = FeatureStore.from_dir(DatasetLayout.at(r["ds"].root).features("musicnn-MTT_musicnn-taggram"))
    want = conse_scores(store.matrix(view.track_ids), text_vectors(list(musicnn.labels("MTT_musicnn")), "glove",
                                                                   P["sideinfo"]),
                        text_vectors(tags, "glove", P["sideinfo"]), 5)
    np.testing.assert_allclose(view.scores(), want, rtol=1e-6)
    per_tag = result["per_item"][label][("retrieval", "(B+C)-Y", "annotation")].set_index("id")
    assert set(per_tag.index) == {"violin", "bells"} and np.isfinite(per_tag["AUC-l"]).all()
    leak = peer[peer.task == "leakage"]
    assert leak.value.tolist() == [1] and leak.labels.tolist() == ["musicnn-MTT_musicnn-taggram"]
    # the learned models' rows are those of a run without the peer
    again = pd.DataFrame(evaluate_run(r["ds"], r["split"], r["P"], r["run"])["rows"])
    assert label not in set(again.model)
    pd.testing.assert_frame_equal(rows[rows.model != label].reset_index(drop=True), again.reset_index(drop=True))
    cache = DatasetLayout.at(r["ds"].root).features("musicnn-MTT_musicnn-taggram") / "features.npz"
    assert cache.is_file()
    probs = FeatureStore.from_dir(cache.parent)
    assert probs.dim == 50 and ((probs.vectors >= 0) & (probs.vectors <= 1)).all()
    # transfer: the peer on the target, beside the source's model
    target_csv = write_folder(tmp_path / "target", n_pairs=6)
    T = params_for(tmp_path, target_csv, encoder="paper", data={"name": "target", "folder": {"csv": str(target_csv)}},
                   run={"name": "target-run"}, transfer={"models": ["joint"]},
                   evaluate={"source_conse": {"sideinfo": ["glove"]}})
    from zslkit.data import prepare
    ds_t, _ = prepare.prepare_dataset(T)
    rows_t, embedded, skipped = transfer_models(r["run"], r["P"], ds_t, T)
    assert not skipped and list(embedded) == ["joint"]  # the peer gives rows, not a model of transfer.models
    table = pd.DataFrame(rows_t)
    mine = table[table.model == label]
    seen_by_source = mine[mine.metric == "target tags seen by the source"].value.tolist()
    assert seen_by_source == [len(set(r["split"].seen) & set(ds_t.tag_texts))] == [4]
    assert {"target-T", "target-T unseen by source", "target-T unseen by source non-leaky"} <= set(mine.test_setting)
    # MagnaTagATune's 50 tags hold flute, violin and drums of the target's six
    assert mine[mine.metric == "target tags the backbone was supervised on"].value.tolist() == [3]
    assert set(mine[mine.metric == "leaky target tag"].test_setting) == {"flute", "violin", "drums"}
    # every model of transfer.models skipped: the peer still knows what the source saw, the models' failure stays
    T2 = {**T, "transfer": {"models": ["missing"]}}
    rows_2, embedded_2, skipped_2 = transfer_models(r["run"], r["P"], ds_t, T2)
    assert embedded_2 == {} and list(skipped_2) == ["missing"]
    again = pd.DataFrame(rows_2)
    assert again[(again.model == label) & (again.metric == "target tags seen by the source")].value.tolist() == [4]


# ---------------------------------------------------------------------------------------- musicnn fine-tuned

def test_a_pretrained_encoder_refuses_another_front_end_and_a_frozen_one_refuses_finetune(tmp_path):
    from zslkit.model.frozen import check_encoder, check_front_end
    P = config.resolve({"model": {"encoder": "musicnn_tuned"}}, root=tmp_path)
    with pytest.raises(ParamError, match=r"set audio.sample_rate: 16000 \(not 22050\), audio.n_fft: 512 \(not 1024\)"):
        check_front_end(P)
    assert not check_front_end(config.resolve({}, root=tmp_path))
    if importlib.util.find_spec("musicnn") is not None:  # refused before any weight is read
        from zslkit.model.backbones.musicnn_tuned import MusicnnTuned
        with pytest.raises(ParamError, match="audio.n_mels: 128; .* audio.sample_rate: 16000, audio.n_fft: 512"):
            MusicnnTuned(n_mels=128)
    F = config.resolve({"model": {"encoder": "musicnn"}, "train": {"finetune": 1e-5}}, root=tmp_path)
    with pytest.raises(ParamError, match="train.finetune: 1e-05; model.encoder 'musicnn' is frozen"):
        check_encoder(F)


MUSICNN_FRONT_END = {"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96, "log_gain": 10000.0,
                     "segment_frames": 64}


@needs_musicnn
@pytest.mark.parametrize("finetune", [1e-4, 0.0])
def test_musicnn_is_fine_tuned_on_its_own_front_end_at_its_own_learning_rate(tmp_path, finetune):
    """musicnn_tuned trains its pretrained weights at train.finetune (0: kept) and the projection at train.lr, on
    unstandardised 16-kHz, 96-band mels; the checkpoint records what it was supervised on, so violin is leaky."""
    from zslkit.data import prepare, sideinfo, splits
    from zslkit.evaluate.embed import embed_run
    from zslkit.evaluate.protocol import evaluate_run
    from zslkit.model.backbones import musicnn
    from zslkit.model.train import train_stage
    from zslkit.plan import RunPlan
    csv = write_folder(tmp_path / "audio", n_pairs=12)
    P = params_for(tmp_path, csv, encoder="musicnn_tuned", audio=MUSICNN_FRONT_END,
                   train={"finetune": finetune, "max_epochs": 2, "baseline": False, "controls": []},
                   sideinfo={"kinds": ["glove"]})
    ds, _ = prepare.prepare_dataset(P)
    prepare.compute_mels(ds, P)
    split = splits.prepare_split(ds, P["split"])
    assert leakage.for_run(ds, split, P).leaky == {"violin": "violin"}
    sideinfo.prepare_sideinfo(ds, P["sideinfo"], split, trained=RunPlan.from_params(P).sideinfo_kinds())
    run = RunLayout.from_params(P).root
    run.mkdir(parents=True)
    RunLayout.at(run).params.write_text(config.dump(P))
    trained = train_stage(ds, split, P, run, progress=False)
    tr = trained["joint"]["trainer"]
    assert (tr.mean, tr.std) == (0.0, 1.0)  # musicnn's log-mels as they are
    assert tr.arch["pretrained"]["key"] == "musicnn-MTT_musicnn-tuned"
    groups = tr.opt.param_groups
    if finetune:
        assert [g["lr_scale"] for g in groups] == [1.0, pytest.approx(finetune / P["train"]["lr"])]
    else:
        assert len(groups) == 1
    # the pretrained weights moved only when they had a learning rate; the projection always did
    pretrained = musicnn.load("MTT_musicnn", layer="bn_dense").state_dict()
    best = torch.load(RunLayout.at(run).checkpoint("joint"), weights_only=True)["model"]
    moved = not torch.equal(best["audio.backbone.dense.weight"], pretrained["dense.weight"])
    assert moved == bool(finetune)
    # stages 04 and 05 as for any encoder, the leaky unseen tag left out of the non-leaky settings
    embed_run(ds, split, P, run)
    rows = pd.DataFrame(evaluate_run(ds, split, P, run)["rows"])
    assert "(B+C)-Y non-leaky" in set(rows.test_setting)
    counted = rows[(rows.task == "leakage") & (rows.model == "embedding glove")]
    assert counted.value.tolist() == [1]
