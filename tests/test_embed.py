"""Stage 04: embeddings, free text, UMAP maps and the explorer's functions."""
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import trained_run

from zslkit import DataError, ParamError, config
from zslkit.data.sideinfo import WordVectors, load_table
from zslkit.data.sideinfo import text_vectors as text_side_info
from zslkit.evaluate import embed
from zslkit.evaluate.embed import TextEncoder
from zslkit.evaluate.embeddings import ClassifierScores, Embeddings
from zslkit.evaluate.projection import umap_coords
from zslkit.layout import RunLayout
from zslkit.model.inference import track_embeddings
from zslkit.show import explore


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ds, split, P, run_dir = trained_run(tmp_path_factory.mktemp("embed"), epochs=6, baseline=True)
    embedded = embed.embed_run(ds, split, P, run_dir)
    return ds, split, P, run_dir, embedded["joint"], embedded


@pytest.mark.slow  # the fixture trains small models
def test_every_trained_model_is_embedded(run):
    ds, split, P, run_dir, E, embedded = run
    assert set(embedded) == {"joint", "classifier", "joint-random"}
    assert embedded["joint-random"].meta["sideinfo"] == "random" and embedded["joint-random"].meta["control"]
    assert E.meta["sideinfo"] == "attributes" and not E.meta["control"]
    clf = ClassifierScores.load(RunLayout.at(run_dir).embeddings("classifier"))
    assert clf.tags == split.seen and clf.logits.shape == (ds.n_tracks, len(split.seen))
    np.testing.assert_array_equal(clf.scores(clf.track_ids[:2]), clf.logits[:2])


@pytest.mark.slow  # the fixture trains small models
def test_embedding_shapes_ids_and_round_trip(run):
    ds, split, P, run_dir, E, _ = run
    assert E.track_ids == ds.tracks.track_id.tolist()
    assert E.tracks.shape == (ds.n_tracks, 100) and E.tracks.dtype == np.float32
    assert E.tags == split.seen + split.unseen and E.seen.sum() == len(split.seen)
    assert E.tag_emb.shape == (ds.n_tags, 100) and E.side.shape == (ds.n_tags, 6)
    assert E.scorable.all()
    back = Embeddings.load(RunLayout.at(run_dir).embeddings())
    assert back.tags == E.tags and back.track_ids == E.track_ids and back.meta == E.meta
    np.testing.assert_array_equal(back.tracks, E.tracks)
    np.testing.assert_array_equal(back.tag_emb, E.tag_emb)
    assert E.scores(E.track_ids[:3], E.tags[:2]).shape == (3, 2)


@pytest.mark.slow  # the fixture trains small models
def test_tag_embedding_is_the_tag_branch_of_the_side_information(run):
    ds, split, P, run_dir, E, _ = run
    model, info = embed.load_model(run_dir, "joint", split)
    table = load_table(ds, split.name, info["arch"]["sideinfo"])
    row = table.tags.index(E.tags[-1])
    with torch.no_grad():
        expected = model.embed_tags(torch.as_tensor(table.vectors[row:row + 1])).numpy()[0]
    np.testing.assert_allclose(E.tag_emb[-1], expected, rtol=1e-5, atol=1e-6)
    assert info["seen"] == split.seen


@pytest.mark.parametrize("normalize", [False, True])
def test_segment_averaging_on_a_known_input(normalize):
    # segment k of the clip is the constant k + 1; the encoder outputs (value, 1) per segment
    mel = np.repeat(np.arange(1, 4, dtype=np.float32), 130)[:, None].repeat(4, axis=1)

    class Probe(torch.nn.Module):
        def forward(self, x):
            v = x.mean(dim=(1, 2))
            return torch.stack([v, torch.ones_like(v)], dim=1)

    emb = track_embeddings(Probe(), {"t": mel}, ["t"], mean=0.0, std=1.0, segment_frames=130,
                           normalize_segments=normalize)
    segs = np.array([[k, 1.0] for k in (1, 2, 3)])
    if normalize:
        segs = segs / np.linalg.norm(segs, axis=1, keepdims=True)
    np.testing.assert_allclose(emb[0], segs.mean(axis=0), rtol=1e-6)


def test_free_text_embedding_of_a_word_absent_from_the_dataset():
    P = config.resolve({})
    wv = WordVectors.bundled()
    vec = text_side_info(["zither"], "glove", P["sideinfo"])[0]  # no dataset has this tag
    np.testing.assert_allclose(vec, wv.get("zither"), rtol=1e-6)
    phrase = text_side_info(["calm zither music"], "glove", P["sideinfo"])[0]
    np.testing.assert_allclose(phrase, np.mean([wv.get(w) for w in ("calm", "zither", "music")], axis=0), rtol=1e-5)
    negated = text_side_info(["no zither"], "glove", P["sideinfo"])[0]
    np.testing.assert_allclose(negated, -wv.get("zither"), rtol=1e-6)
    with pytest.raises(ParamError, match="free-text queries need"):
        text_side_info(["zither"], "attributes", P["sideinfo"])

    branch = torch.nn.Linear(50, 100)

    class Model(torch.nn.Module):
        def embed_tags(self, v):
            return branch(v)

    encode = TextEncoder(Model(), "glove", P["sideinfo"])
    out = encode(["zither", "harpsichord"])
    with torch.no_grad():
        np.testing.assert_allclose(out[0], branch(torch.tensor(wv.get("zither"))).numpy(), rtol=1e-5, atol=1e-6)
    assert out.shape == (2, 100)
    with pytest.raises(DataError, match="qqxqzv"):
        encode(["qqxqzv"])


def test_umap_is_deterministic_for_a_seed():
    x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    a, b = umap_coords(x, seed=3, n_neighbors=8), umap_coords(x, seed=3, n_neighbors=8)
    assert a.shape == (40, 2)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="at least 4 rows"):
        umap_coords(x[:3])


@pytest.mark.slow  # the fixture trains small models
def test_umap_maps_cover_tags_and_tracks(run):
    ds, split, P, run_dir, E, _ = run
    maps = embed.umap_maps(E, ds, P["embed"]["umap"], 0, "g1")
    assert set(maps) == {"side", "tags", "joint"}
    assert maps["tags"].id.tolist() == E.tags and set(maps["tags"].split) == {"X", "Y"}
    joint = maps["joint"]
    assert (joint.kind == "track").sum() == 60 and (joint.kind == "tag").sum() == ds.n_tags
    assert np.isfinite(joint[["x", "y"]].to_numpy()).all()


def hand_made():
    """Three tags on known directions and four tracks near them."""
    tags = ["rock", "pop", "jazz"]
    tag_emb = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]], dtype=np.float32)
    tracks = np.array([[1, 0, 0.1], [0, 0, 1], [0.5, 0.5, 0], [0.2, 0, 1]], dtype=np.float32)
    return Embeddings(["a", "b", "c", "d"], tracks, tags, tag_emb, np.array([True, True, False]),
                      tag_emb.copy(), {"sideinfo": "hand"})


class TinyDataset:
    tag_texts = ["rock", "pop", "jazz"]
    tags = pd.DataFrame({"tag": tag_texts, "group": ["genre"] * 3})
    tracks = pd.DataFrame({"track_id": ["a", "b", "c", "d"], "tags_full": ["rock;pop", "jazz", "pop", "jazz;rock"]})
    truth = {"a": {"rock"}, "b": {"jazz"}, "c": set(), "d": {"jazz"}}

    def labels(self, ids, tags):
        return np.array([[t in self.truth[i] for t in tags] for i in ids], dtype=bool)

    def complete_truth(self):
        return {t: set(f.split(";")) for t, f in zip(self.tracks.track_id, self.tracks.tags_full)}


def test_explorer_functions_on_known_vectors():
    E, ds, groups = hand_made(), TinyDataset(), {"rock": "genre", "pop": "genre", "jazz": "genre"}
    near = explore.nearest_tags(E, "rock", groups, k=5)
    assert near.tag.tolist() == ["pop", "jazz"] and near.split.tolist() == ["X", "Y"]
    top = explore.top_tracks(E, ds, "jazz", k=2)
    assert top.track_id.tolist() == ["b", "d"] and top.labelled.all()
    assert top.tags.tolist() == ["jazz", "jazz"]
    ann = explore.annotate(E, ds, "a", groups, k=3, complete=ds.complete_truth())
    assert ann.tag.tolist() == ["rock", "pop", "jazz"] and ann["rank"].tolist() == [1, 2, 3]
    assert ann.annotated.tolist() == [True, False, False] and ann.true.tolist() == [True, True, False]
    tracks, tags = explore.search_text(E, ds, "anything", lambda texts: np.array([[0, 0, 1.0]]), groups, k=1)
    assert tracks.track_id.tolist() == ["b"] and tags.tag.tolist() == ["jazz"]
    with pytest.raises(DataError, match="empty query"):
        explore.search_text(E, ds, "  ", lambda t: None, groups)
    with pytest.raises(DataError, match="'metal' is not in this run"):
        explore.top_tracks(E, ds, "metal")
    assert explore.group_labels(ds, ["a", "b", "c"], "genre", ds.complete_truth()) == ["", "jazz", "pop"]
    assert explore.track_annotation(E, ds, "d") == "annotation: seen -; unseen jazz"
    assert explore.track_annotation(E, ds, "a", ds.complete_truth()) == \
        "annotation: seen rock; unseen -; also true (not annotated): pop"
    with pytest.raises(DataError, match="no tag group 'mood'"):
        explore.group_labels(ds, ["a"], "mood")


@pytest.mark.slow  # the fixture trains small models
def test_explorer_widget_builds_headless(run):
    import ipywidgets as W
    ds, split, P, run_dir, E, _ = run
    widget = explore.explorer(E, ds, None, dict(zip(ds.tags.tag, ds.tags.group)), k=5)
    assert isinstance(widget, W.Tab) and len(widget.children) == 3


def test_maps_are_skipped_with_a_reason_below_four_tags(run):
    ds, split, P, run_dir, E, _ = run
    assert embed.map_skip_reason(E, P["embed"]) is None
    assert embed.map_skip_reason(E, {**P["embed"], "maps": False}) == "embed.maps is false"
    few = Embeddings(E.track_ids, E.tracks, E.tags[:3], E.tag_emb[:3], E.seen[:3], E.side[:3], E.meta)
    assert embed.map_skip_reason(few, P["embed"]) == "3 tag(s) with side information; a UMAP map needs at least 4"


def test_a_colour_group_the_dataset_lacks_colours_by_its_largest_group_with_a_note():
    """Small or odd data: the demo's embed.color_group 'family' on a folder dataset (one group 'tag')."""
    from types import SimpleNamespace

    from zslkit.evaluate.tagspace import fitted_colour_group
    from zslkit.plan import RunPlan
    ds = SimpleNamespace(tags=pd.DataFrame({"tag": ["a", "b", "c"], "group": ["tag", "tag", "mood"]}))
    assert fitted_colour_group(ds, "mood") == ("mood", None) and fitted_colour_group(ds, None) == ("tag", None)
    group, note = fitted_colour_group(ds, "family")
    assert group == "tag" and note.startswith("embed.color_group 'family' is not a tag group of this dataset "
                                              "(groups: tag, mood): the maps are coloured by 'tag'")
    plan = RunPlan.from_params(config.resolve({}))
    rows = embed.results_rows({}, plan, "2 tag(s) with side information; a UMAP map needs at least 4", note)
    assert [(r["task"], r["metric"], r["test_setting"]) for r in rows] == [
        ("maps", "skipped", "2 tag(s) with side information; a UMAP map needs at least 4"),
        ("maps", "color_group", note)]
    assert embed.results_rows({}, plan) == []
