"""The four seams: entries registered from this very file reach config, --describe and stages 01-05.

This file is also the plugin that the end-to-end test hands to the notebooks (``run.plugins``):
``register()`` below holds the two registrations a user writes to add a dataset importer and a
side-information kind (docs/extending.md); loaded as a plugin, the file makes them at import.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from zslkit import ParamError, config
from zslkit.data.datasets import Dataset, annotations_from_lists, write_dataset
from zslkit.data.sideinfo import Context, SideInfo
from zslkit.data.splits import prepare_split
from zslkit.model.checkpoints import load_checkpoint
from zslkit.model.encoders import EMBED_DIM
from zslkit.model.train import seen_vectors
from zslkit.model.trainer import Trainer
from zslkit.registry import DATASETS, ENCODERS, HEADS, SIDEINFO, Field, Registry

# ----------------------------------------------------------------------------- the toy plugin

#: tag -> (group, what it adds to a clip)
TONE_TAGS = {"low": ("pitch", 220.0), "middle": ("pitch", 440.0), "high": ("pitch", 880.0),
             "shrill": ("pitch", 1760.0), "deep": ("pitch", 110.0),
             "noisy": ("texture", "noise"), "pulsing": ("texture", "pulse"), "hollow": ("texture", "odd"),
             "bright": ("texture", "bright"), "calm": ("texture", "quiet")}


def tone_clip(tags, seconds: float, sr: int, rng) -> np.ndarray:
    """A clip whose sound follows its tags: sines for pitch tags, modulations for textures."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for tag in tags:
        group, what = TONE_TAGS[tag]
        if group == "pitch":
            y += np.sin(2 * np.pi * what * t)
    y = y if y.any() else np.sin(2 * np.pi * 330.0 * t)
    textures = {TONE_TAGS[tag][1] for tag in tags if TONE_TAGS[tag][0] == "texture"}
    if "noise" in textures:
        y += 0.5 * rng.standard_normal(len(t))
    if "pulse" in textures:
        y *= 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 4 * t))
    if "odd" in textures:
        y += 0.5 * np.sin(2 * np.pi * 3 * 330.0 * t)
    if "bright" in textures:
        y += 0.3 * np.sin(2 * np.pi * 5000.0 * t)
    if "quiet" in textures:
        y *= 0.2
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def tones(out_dir: Path, p, run, name: str) -> tuple[Dataset, dict]:
    rng = np.random.default_rng(run["seed"])
    names = list(TONE_TAGS)
    tag_lists, rows = [], []
    for i in range(p["n_tracks"]):
        tags = sorted(rng.choice(names, size=int(rng.integers(1, 4)), replace=False).tolist())
        path = out_dir / "audio" / f"tone{i:03d}.wav"
        if not path.is_file():  # importers reuse what is there
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone_clip(tags, p["seconds"], 22050, rng), 22050)
        rows.append({"track_id": f"tone{i:03d}", "path": f"audio/{path.name}"})
        tag_lists.append(tags)
    tags = pd.DataFrame({"tag": names, "group": [TONE_TAGS[t][0] for t in names]})
    ds = write_dataset(out_dir, pd.DataFrame(rows), tags, annotations_from_lists(tag_lists, names),
                       {"name": name, "source": "tones"})
    return ds, {"left_out": []}


def letters(ctx: Context, p) -> SideInfo:
    vectors = np.zeros((len(ctx.texts), 26), dtype=np.float32)
    for i, text in enumerate(ctx.texts):
        for ch in text.lower():
            if "a" <= ch <= "z":
                vectors[i, ord(ch) - 97] += 1
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.where(norms > 0, p["scale"] * vectors / np.where(norms > 0, norms, 1), np.nan)
    return SideInfo("letters", list(ctx.texts), vectors.astype(np.float32))


def register() -> None:
    """The two registrations a user's plugin file makes (at its top, unconditionally)."""
    DATASETS.register("tones", tones, params={"n_tracks": Field("int", 80, "clips to synthesise", lo=10),
                                              "seconds": Field("float", 4.0, "clip length", lo=1.0)},
                      doc="a toy importer: synthetic tones tagged by pitch and texture", replace=True)
    SIDEINFO.register("letters", letters, params={"scale": Field("float", 1.0, "length of each vector", lo=0.0)},
                      free_text=True, doc="a toy kind: letter counts of the tag's text", replace=True)


if __name__.startswith("zslkit_plugin_"):  # loaded by run.plugins, in a notebook kernel: register as a user would
    register()


# ----------------------------------------------------------------------------- unit tests

@pytest.fixture(scope="module", autouse=True)
def toy_entries():
    """Under pytest the entries live only while this module's tests run: other modules resolve
    params without this plugin, in any order."""
    register()
    yield
    DATASETS.unregister("tones")
    SIDEINFO.unregister("letters")


def test_registered_entries_reach_config_and_describe(tmp_path):
    P = config.resolve({"data": {"source": "tones", "tones": {"n_tracks": 12}},
                        "sideinfo": {"kinds": ["letters", "random"], "letters": {"scale": 2.0}},
                        "model": {"sideinfo": "letters"}}, root=tmp_path)
    assert P["data"]["tones"] == {"n_tracks": 12, "seconds": 4.0}
    assert P["sideinfo"]["letters"] == {"scale": 2.0}
    text = config.describe()
    assert "data.tones.n_tracks" in text and "sideinfo.letters.scale" in text
    assert "tones" in text and "letter counts" in text
    with pytest.raises(ParamError, match=r"data.tones.n_tracks: 3 is below the minimum 10"):
        config.resolve({"data": {"tones": {"n_tracks": 3}}}, root=tmp_path)


@pytest.mark.parametrize("section, key, value, known", [
    ("data", "source", "nope", "m21"), ("model", "encoder", "resnet", "paper_bn"),
    ("model", "sideinfo", "tarot", "glove"), ("evaluate", "heads", ["oracle"], "learned"),
    ("sideinfo", "kinds", ["glove", "tarot"], "letters"), ("train", "controls", ["glove"], "random"),
])
def test_selectors_accept_only_registered_names(tmp_path, section, key, value, known):
    with pytest.raises(ParamError, match=rf"{section}.{key}: .*{known}"):
        config.resolve({section: {key: value}}, root=tmp_path)


def test_every_built_in_entry_is_registered():
    assert set(DATASETS.names()) >= {"m21", "folder", "seed"}
    assert set(SIDEINFO.names()) >= {"glove", "sentence", "attributes", "random", "original", "table"}
    assert SIDEINFO.names(control=True) == ("random",)
    assert set(SIDEINFO.names(free_text=True)) >= {"glove", "sentence"}
    assert set(ENCODERS.names()) == {"paper", "paper_bn", "shortchunk", "musicnn", "hear", "musicnn_tuned"}
    assert ENCODERS.names(pretrained=True) == ("musicnn_tuned",)
    assert ENCODERS.names(frozen=True) == ("musicnn", "hear")  # pretrained backbones, trained on cached features
    assert HEADS.names() == ("learned", "conse", "ridge", "eszsl") and HEADS["learned"].trained
    assert not any(HEADS[h].trained for h in ("conse", "ridge", "eszsl"))


def test_registry_refuses_duplicates_reserved_names_and_unknown_flags():
    reg = Registry("thing", "x.kind", reserved=("kind",), flags={"fast": False})
    reg.register("a", object())
    with pytest.raises(ParamError, match="already registered"):
        reg.register("a", object())
    reg.register("a", 1, replace=True)
    assert reg["a"].obj == 1 and reg["a"].fast is False
    with pytest.raises(ParamError, match="taken by a fixed parameter"):
        reg.register("kind", object())
    with pytest.raises(ParamError, match="unknown flag 'slow'"):
        reg.register("b", object(), slow=True)
    with pytest.raises(ParamError, match=r"x.kind: 'c' is not a registered thing; known: a"):
        reg["c"]


def test_an_entry_by_reference_imports_its_module_on_first_use(tmp_path, monkeypatch):
    (tmp_path / "lazy_kind.py").write_text("def build(ctx, p):\n    return 'built'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_kind", raising=False)
    reg = Registry("thing", "x.kind", flags={"fast": False})
    reg.register("lazy", "lazy_kind:build", params={"n": Field("int", 1, "how many")}, doc="a lazy thing", fast=True)
    assert reg.names(fast=True) == ("lazy",) and reg["lazy"].doc == "a lazy thing" and "n" in reg["lazy"].params
    assert "lazy_kind" not in sys.modules  # listed, described and selectable without importing it
    assert reg["lazy"].obj(None, {}) == "built" and "lazy_kind" in sys.modules
    reg.register("typo", "lazy_kind:biuld", doc="a typo")
    with pytest.raises(ParamError, match=r"entry 'typo': 'lazy_kind:biuld' names nothing in lazy_kind"):
        reg["typo"].obj
    with pytest.raises(ParamError, match=r"thing 'bad': 'lazy_kind.build' is not a 'module:attribute' reference"):
        reg.register("bad", "lazy_kind.build", doc="no colon")
    with pytest.raises(ParamError, match=r"thing 'quiet': a reference \('lazy_kind:build'\) needs doc="):
        reg.register("quiet", "lazy_kind:build")


def test_every_built_in_reference_names_its_object():
    for registry in (DATASETS, SIDEINFO, ENCODERS, HEADS):
        for entry in registry:
            if isinstance(entry.target, str):
                module, attr = entry.target.split(":")
                assert callable(entry.obj) and (entry.obj.__module__, entry.obj.__name__) == (module, attr)


def test_plugins_load_from_a_file_once(tmp_path):
    plugin = tmp_path / "myplugin.py"
    plugin.write_text("from zslkit.registry import HEADS\n"
                      "HEADS.register('zero', lambda inp, p: inp.learned * 0, doc='a toy head')\n")
    P = config.resolve({"run": {"plugins": [str(plugin)]}, "evaluate": {"heads": ["learned", "zero"]}},
                       root=tmp_path)
    assert P["evaluate"]["heads"] == ["learned", "zero"]
    config.resolve({"run": {"plugins": [str(plugin)]}}, root=tmp_path)  # a second load is not a duplicate
    HEADS.unregister("zero")
    with pytest.raises(ParamError, match="run.plugins: file not found"):
        config.resolve({"run": {"plugins": ["missing.py"]}}, root=tmp_path)
    with pytest.raises(ParamError, match="run.plugins: cannot import 'no_such_module'"):
        config.resolve({"run": {"plugins": ["no_such_module"]}}, root=tmp_path)


# ----------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_stages_01_to_05_run_with_a_toy_importer_and_a_toy_kind(tmp_path):
    from zslkit.cli import main
    from zslkit.run.report import read_results
    params = {
        "run": {"name": "toy", "reports_dir": str(tmp_path / "reports"), "data_dir": str(tmp_path / "data"),
                "plugins": [str(Path(__file__).resolve())], "progress": False},
        "data": {"source": "tones", "name": "tones", "tones": {"n_tracks": 80}},
        "audio": {"n_examples": 1},
        "split": {"stratify": "group", "ratio": 0.8},
        "sideinfo": {"kinds": ["letters", "random"], "show": "letters", "random": {"like": "letters"}},
        "model": {"sideinfo": "letters"},
        "train": {"batch_size": 8, "max_epochs": 2, "optimizer": "adam", "baseline": True, "controls": ["random"]},
        "embed": {"widget": False, "color_group": "pitch", "umap": {"max_tracks": 40},
                  "queries": ["low hum"], "example_tracks": 1},
        "evaluate": {"bootstrap": 20, "permutations": 100, "examples": 1},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main(["run", str(path)]) == 0
    folder = tmp_path / "reports" / "toy"
    r = read_results(folder)
    assert set(r.stage) == {"01_preprocess", "02_splits", "03_train", "04_embeddings", "05_evaluate"}
    assert r[(r.stage == "01_preprocess") & (r.metric == "n_tracks")].value.iloc[0] == 80
    assert set(r[r.stage == "02_splits"].task.dropna()) >= {"sideinfo letters", "sideinfo random"}
    ev = r[r.stage == "05_evaluate"]
    heads = ("", " conse", " ridge", " eszsl")
    expected = {f"embedding {k}{h}" for k in ("letters", "random") for h in heads}
    assert set(ev.model.dropna()) == expected | {"classifier"}
    auc = ev[(ev.model == "embedding letters") & (ev.test_setting == "(B+C)-Y") & (ev.metric == "AUC-i")]
    assert len(auc) == 1 and 0 <= auc.value.iloc[0] <= 1
    for name in ("joint", "joint-random", "classifier"):
        assert (folder / "train" / name / "best.pt").is_file() and (folder / "embeddings" / f"{name}.npz").is_file()


class Tiny(torch.nn.Module):
    """The encoder of docs/extending.md."""

    min_frames = 16

    def __init__(self, n_mels=128, width=64):
        super().__init__()
        self.conv = torch.nn.Conv1d(n_mels, width, 3, padding=1)
        self.out = torch.nn.Linear(width, EMBED_DIM)

    def forward(self, x):
        return self.out(torch.relu(self.conv(x.transpose(1, 2))).mean(dim=2))

    def kernels(self):
        return [self.conv.weight]


def test_a_registered_encoder_trains_and_rebuilds_from_its_checkpoint(tmp_path):
    from conftest import synthetic_dataset  # here, not at the top: the notebooks load this file as a plugin
    ENCODERS.register("tiny", Tiny, params={"width": Field("int", 64, "channels", lo=1)}, doc="a tiny CNN")
    try:
        ds = synthetic_dataset(tmp_path / "ds")
        P = config.resolve({"split": {"stratify": "none", "seed": 2}, "model": {"encoder": "tiny", "sideinfo": "random",
                                                                               "tiny": {"width": 8}},
                            "audio": {"segment_frames": 32},
                            "train": {"batch_size": 16, "max_epochs": 1, "optimizer": "adam", "device": "cpu"}},
                           root=tmp_path)
        split = prepare_split(ds, P["split"])
        trainer = Trainer(ds, split, seen_vectors(ds, split, "random"), P, tmp_path / "t", 0, sideinfo="random")
        trainer.fit(progress=False)
        net, info = load_checkpoint(tmp_path / "t" / "best.pt")
        assert isinstance(net.audio, Tiny) and net.audio.conv.out_channels == 8
        assert info["arch"]["segment_frames"] == 32 and info["arch"]["encoder"] == "tiny"
    finally:
        ENCODERS.unregister("tiny")
