import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import synthetic_dataset

from zslkit import DataError, ParamError, config
from zslkit.data.datasets import Dataset, m21


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("m21")
    P = config.resolve({"data": {"m21": {"n_clips": 40, "clip_seconds": 4.0, "min_tag_count": 1,
                                         "pieces": {"palestrina": 2, "monteverdi": 2, "trecento": 2}}}},
                       root=root)["data"]["m21"]
    ds, report = m21.build(root / "ds", root / "sym", P, seed=3, workers=2, progress=False)
    return root, P, ds, report


@pytest.mark.slow  # builds m21
def test_build_writes_a_consistent_dataset(built):
    root, P, ds, report = built
    assert ds.n_tracks == 40 and report["clips_without_tags"] == 0
    assert set(ds.tags.group) <= set(m21.catalogue.coverage())
    for tid in ds.tracks.track_id[:5]:
        y, sr = sf.read(ds.audio_path(tid))
        assert sr == 22050 and len(y) == 4 * 22050 and np.abs(y).max() > 0.01  # loudness from -28 LUFS up
    # observed tags are a subset of the full truth, and the instruments are tagged as rendered
    Y = ds.label_matrix()
    for i, row in ds.tracks.iterrows():
        observed = set(ds.tags.tag[Y[i]])
        assert observed <= set(row.tags_full.split(";"))
    assert (root / "sym" / "manifest.jsonl").is_file() and list((root / "sym" / "midi").glob("*.mid"))
    # the later stages take the build for the parameters it was built with (JSON's view of them), not others
    run = config.resolve({"run": {"data_dir": str(root)}, "data": {"source": "m21", "name": "ds", "m21": dict(P)}},
                         root=root)
    assert Dataset.of_run(run).root == ds.root
    run["data"]["m21"]["min_tag_count"] = 2
    with pytest.raises(DataError, match="data.m21.min_tag_count = 1, the run has 2"):
        Dataset.of_run(run)


@pytest.mark.slow  # builds m21
def test_build_is_deterministic_and_resumable(built, tmp_path):
    root, P, ds, _ = built
    victim = ds.audio_path(ds.tracks.track_id[7])
    before = sf.read(victim)[0]
    victim.unlink()
    again, report = m21.build(root / "ds", root / "sym", P, seed=3, workers=1, progress=False)
    assert report["clips_rendered_now"] == 1
    np.testing.assert_array_equal(sf.read(victim)[0], before)
    pd.testing.assert_frame_equal(again.tracks, ds.tracks)
    other, _ = m21.build(tmp_path / "other", root / "sym", P, seed=4, workers=1, progress=False)
    assert not other.tracks.instruments.equals(ds.tracks.instruments)
    # other plans in the same folder: the clips whose plan changed are rendered again, not reused
    changed, report = m21.build(root / "ds", root / "sym", {**P, "instrumentation": "independent"}, seed=3,
                                workers=1, progress=False)
    moved = changed.tracks.render_digest != ds.tracks.set_index("track_id").render_digest.reindex(
        changed.tracks.track_id).to_numpy()
    assert report["clips_replaced"] >= moved.sum() > 0 and report["clips_rendered_now"] == report["clips_replaced"]


@pytest.mark.parametrize("repertory", ["oneills", "bach"])  # an ABC tune, a score file
def test_the_lean_parse_writes_what_music21s_default_parse_writes(repertory, tmp_path, monkeypatch):
    """No beams and no pickle cache: the same metadata and MIDI bytes as music21's default, and nothing left
    in music21's scratch folder (its ``<temp>/music21``)."""
    import tempfile

    from music21 import stream

    from zslkit.data.datasets.m21 import corpus
    source, fixed = corpus.candidates(repertory)[3]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    make_beams = stream.Stream.makeBeams
    lean = corpus.parse_piece(source, fixed, tmp_path / "lean", lean=True)
    assert stream.Stream.makeBeams is make_beams  # restored after the parse
    assert not (tmp_path / "music21").is_dir() or not any((tmp_path / "music21").iterdir())
    default = corpus.parse_piece(source, fixed, tmp_path / "default", lean=False)
    assert lean == default
    if repertory == "bach":  # the default parse did pickle the score file there: the check above can fail
        assert any((tmp_path / "music21").iterdir())
    name = f"{lean.piece_id}.mid"
    assert (tmp_path / "lean" / name).read_bytes() == (tmp_path / "default" / name).read_bytes()


def test_coverage_and_tempo_tags():
    plan = m21.ClipPlan("c", "p", ["violin", "trumpet"], 120.0, 0, 0.0, 90, 0.5, 0, seed=1, onset_rate=5.0)
    plan.tags_full = m21.clip_tags(plan, {"form": "reel", "origin": "irish", "meter": "duple", "mode": "major"})
    assert plan.tags_full["family"] == ["brass", "strings"] and plan.tags_full["ensemble"] == ["duet"]
    assert plan.tags_full["tempo"] == ["fast"]
    everything = m21.observed_tags(plan, {g: 1.0 for g in m21.catalogue.coverage()})
    assert {t for _, t in everything} == {t for ts in plan.tags_full.values() for t in ts}
    nothing = m21.observed_tags(plan, {g: 0.0 for g in m21.catalogue.coverage()})
    assert {t for _, t in nothing} == {"violin", "trumpet"}  # never left without a tag


@pytest.mark.slow  # builds m21
def test_unknown_repertory_and_soundfont_are_named(tmp_path):
    with pytest.raises(ParamError, match="unknown repertory 'motown'"):
        m21.candidates("motown")
    with pytest.raises(ParamError, match="soundfont not found: .*nope.sf2"):
        m21.soundfont_paths(["bundled", str(tmp_path / "nope.sf2")])


@pytest.mark.slow  # builds m21
def test_debian_banks_are_found_or_named(tmp_path):
    from pathlib import Path
    installed = [path for path, _ in m21.banks.DEBIAN.values() if Path(path).is_file()]
    if not installed:
        with pytest.raises(ParamError, match="'debian' given but none of"):
            m21.soundfont_paths(["debian"])
        return
    paths = m21.soundfont_paths(["bundled", "debian"])
    assert len(paths) == len(set(paths)) >= 2  # alternatives resolved to distinct banks
    plan = m21.ClipPlan("c", "p", ["flute"], 120.0, 0, 0.0, 90, 0.5, 1, seed=1)
    midi = tmp_path / "m.mid"
    import pretty_midi
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(80, 72 + k, 0.5 * k, 0.5 * k + 0.4) for k in range(6)]
    pm.instruments.append(inst)
    pm.write(str(midi))
    y = m21.render_clip(plan, midi, 12.0, str(paths[1]), 2.0, 22050)
    assert len(y) == 44100 and np.abs(y).max() == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("repertory", ["oneills", "bach", "palestrina", "essen_chinese"])
def test_ensembles_are_typical_of_the_repertory(repertory):
    templates = m21.catalogue.templates()
    weights = m21.catalogue.repertory(repertory)["ensembles"]
    seen = set()
    for k in range(300):
        rng = np.random.default_rng([0, k])
        parts, name = m21.plans.draw_instruments(rng, repertory, [0.55, 0.33, 0.12], "ensembles", 0.25)
        if name is None:
            continue
        seen.add(name)
        assert name in weights
        allowed = m21.catalogue.template_instruments(name)
        assert set(parts) <= set(allowed) and 1 <= len(parts) <= 5
        if "play" in templates[name]:
            assert parts == templates[name]["play"]
    assert seen == set(weights)  # every listed ensemble occurs in 300 clips


def test_independent_instrumentation_is_the_earlier_draw():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    names = [i.name for i in m21.catalogue.instruments()]
    parts, name = m21.plans.draw_instruments(rng_a, "bach", [0.55, 0.33, 0.12], "independent", 0.25)
    n = 1 + int(rng_b.choice(3, p=[0.55, 0.33, 0.12]))
    assert name is None and parts == [names[i] for i in rng_b.choice(len(names), size=n, replace=False)]


def test_broader_tags_hold_with_the_narrower_ones():
    plan = m21.ClipPlan("c", "p", ["violin", "violin", "viola", "cello"], 90.0, 0, 0.0, 90, 0.5, 0, seed=1,
                        onset_rate=3.0, ensemble="string quartet")
    piece = {"repertory": "oneills", "form": "reel", "origin": "irish", "meter": "duple", "mode": "major"}
    tags = m21.clip_tags(plan, piece)
    assert tags["instrument"] == ["violin", "viola", "cello"] and tags["family"] == ["strings"]
    assert tags["excitation"] == ["bowed"] and tags["ensemble"] == ["quartet", "string quartet"]
    assert set(tags["style"]) == {"folk", "dance", "celtic"}
    chorale = m21.clip_tags(plan, {"repertory": "bach", "form": "chorale", "composer": "bach", "era": "baroque"})
    assert set(chorale["style"]) == {"polyphony", "sacred"} and chorale["era"] == ["baroque"]


def test_knowledge_comes_from_the_catalogue():
    groups = {"cello": "instrument", "violin": "instrument", "trumpet": "instrument", "bowed": "excitation",
              "string quartet": "ensemble", "reel": "form", "dance": "style", "irish": "origin", "celtic": "style"}
    table = m21.knowledge.knowledge_table(groups)
    has = lambda tag: {c for c in table.columns if table.loc[tag, c]}  # noqa: E731
    assert {"family:strings", "excitation:bowed", "register:low", "ensemble:string quartet"} <= has("cello")
    assert has("bowed") == {"excitation:bowed"} and has("dance") == {"style:dance"}
    assert "style:dance" in has("reel") and {"style:celtic", "region:irish"} <= has("irish")
    assert {"excitation:bowed", "family:strings", "size:4"} <= has("string quartet")
    cos = lambda a, b: np.dot(table.loc[a], table.loc[b]) / np.linalg.norm(table.loc[a]) / np.linalg.norm(table.loc[b])  # noqa: E731,E501
    assert cos("cello", "violin") > cos("cello", "trumpet")
    text = m21.knowledge.descriptions(groups).set_index("tag").text
    assert text["cello"].startswith("cello: a low-pitched bowed string instrument")
    assert "reel" in text["dance"] and "irish" in text["celtic"]


def test_the_table_with_relations_marks_each_tags_own_column_both_ways():
    groups = {"marimba": "instrument", "vibraphone": "instrument", "violin": "instrument", "strings": "family",
              "struck": "excitation", "string quartet": "ensemble", "duet": "ensemble", "reel": "form",
              "dance": "style", "irish": "origin", "medieval": "era"}
    flat = m21.knowledge.knowledge_table(groups)
    table = m21.knowledge.knowledge_table(groups, "relations")
    has = lambda tag: {c for c in table.columns if table.loc[tag, c]}  # noqa: E731
    assert (flat.loc["marimba"] == flat.loc["vibraphone"]).all()  # the flat table cannot tell them apart
    assert has("marimba") - has("vibraphone") == {"instrument:marimba"}
    for tag in groups:  # each tag keeps its flat facts
        assert {c for c in flat.columns if flat.loc[tag, c]} <= has(tag)
    # a broad tag marks the tags it is a fact of, the narrow ones keep the broad one's column
    assert {"family:strings", "instrument:violin", "ensemble:string quartet"} <= has("strings")
    assert "instrument:marimba" in has("struck") and "instrument:violin" not in has("struck")
    assert {"style:dance", "form:reel"} <= has("dance") and "style:dance" in has("reel")
    assert {"size:2", "ensemble:string duo", "ensemble:brass duo"} <= has("duet")
    assert "ensemble:string quartet" not in has("duet")
    assert has("medieval") == {"era:medieval"}  # no tag here of that era: nothing to mark
    with pytest.raises(ParamError, match="data.m21.knowledge: 'graph'"):
        m21.knowledge.knowledge_table(groups, "graph")


@pytest.mark.parametrize("built", [None, "flat", "relations"])
def test_a_build_of_another_table_form_is_refused(tmp_path, built):
    root = tmp_path / "data" / "m21-x"
    synthetic_dataset(root)
    meta = json.loads((root / "dataset.json").read_text())
    meta.update(source="m21", params={} if built is None else {"knowledge": built})  # None: before the key
    (root / "dataset.json").write_text(json.dumps(meta))
    for wanted in ("flat", "relations"):
        P = config.resolve({"run": {"data_dir": str(tmp_path / "data")},
                            "data": {"source": "m21", "name": "m21-x", "m21": {"knowledge": wanted}}}, root=tmp_path)
        if wanted == (built or "flat"):
            assert Dataset.of_run(P).root == root
        else:
            with pytest.raises(DataError, match=f"this build has data.m21.knowledge = '{built or 'flat'}', the "
                                                f"run has '{wanted}': rerun notebook 01 .* rewrites only the tables"):
                Dataset.of_run(P)


@pytest.mark.parametrize("key, built, wanted, refused", [
    ("n_clips", 3000, 2000, True),
    ("performance_ranges", {"timbre_warp": [-2.5, 2.5]}, {"timbre_warp": (-2.5, 2.5)}, False),  # JSON's view
    ("soundfonts", ["bundled"], ["bundled", "fluidr3"], True),
    ("n_clips", None, 2000, False),  # a key the build did not record is not checked
])
def test_a_build_of_other_parameters_is_refused_by_key(tmp_path, key, built, wanted, refused):
    root = tmp_path / "data" / "m21-x"
    synthetic_dataset(root)
    meta = json.loads((root / "dataset.json").read_text())
    meta.update(source="m21", params={} if built is None else {key: built})
    (root / "dataset.json").write_text(json.dumps(meta))
    P = config.resolve({"run": {"data_dir": str(tmp_path / "data")},
                        "data": {"source": "m21", "name": "m21-x", "m21": {}}}, root=tmp_path)
    P["data"]["m21"] = {key: wanted}  # the check compares each key the run has
    if refused:
        with pytest.raises(DataError, match=f"dataset.json: this build has data.m21.{key} = .* the run has "
                                            r".*: rerun notebook 01 with the run's parameters \(it brings"):
            Dataset.of_run(P)
    else:
        assert Dataset.of_run(P).root == root
    P["data"]["source"] = "folder"  # another source's build is not compared with data.m21
    meta["source"] = "folder"
    (root / "dataset.json").write_text(json.dumps(meta))
    assert Dataset.of_run(P).root == root
