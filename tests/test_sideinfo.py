import numpy as np
import pandas as pd
import pytest

from zslkit import DataError, ParamError, config
from zslkit.data.sideinfo import (
    Context,
    SideInfo,
    WordVectors,
    attribute_table,
    base_kind,
    build_tables,
    draw_names,
    nearest_seen,
    openmic_fma_vectors,
    prepare_sideinfo,
    random_table,
    results_rows,
    sentence_table,
    tag_words,
    unavailable_notes,
    word_vector_table,
    zscore_rows,
)
from zslkit.data.sideinfo.sentence import read_descriptions
from zslkit.errors import SideInfoUnavailable

VOCAB = {"hip": [1, 0, 0], "hop": [0, 1, 0], "vocals": [0, 0, 1], "female": [1, 1, 0],
         "rock": [2, 0, 0], "no": [5, 5, 5], "drums": [0, 2, 2]}


@pytest.fixture
def glove_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in VOCAB.items()))
    return path


@pytest.mark.parametrize("text, words", [
    ("hipHop", ["hip", "hop"]), ("female_vocals", ["female", "vocals"]), ("Hip-Hop", ["hip", "hop"]),
    ("no vocals", ["no", "vocals"]), ("non-vocal", ["non", "vocal"]), ("80s", ["80s"]),
    ("R&B", ["r", "b"]), ("HTMLParser", ["html", "parser"]),
])
def test_tag_words(text, words):
    assert tag_words(text) == words


def test_word_vector_table_rules(glove_file):
    wv = WordVectors.from_file(glove_file)
    table = word_vector_table(["rock", "hipHop", "female vocals", "no vocals", "rock zzz", "qqq"], wv)
    v = dict(zip(table.tags, table.vectors))
    np.testing.assert_array_equal(v["rock"], [2, 0, 0])
    np.testing.assert_array_equal(v["hipHop"], [0.5, 0.5, 0])         # camelCase split and averaged
    np.testing.assert_array_equal(v["female vocals"], [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(v["no vocals"], [0, 0, -1])         # flipped, not averaged with "no"
    np.testing.assert_array_equal(v["rock zzz"], [2, 0, 0])           # partial: known words only
    assert np.isnan(v["qqq"]).all() and table.missing() == ["qqq"]
    status = dict(zip(table.report.tag, table.report.status))
    assert status == {"rock": "ok", "hipHop": "ok", "female vocals": "ok", "no vocals": "ok",
                      "rock zzz": "partial", "qqq": "oov"}
    naive = word_vector_table(["no vocals"], wv, negation="average")
    np.testing.assert_array_equal(naive.vectors[0], [2.5, 2.5, 3])
    with pytest.raises(DataError, match="1 tag\\(s\\) have no known word: qqq"):
        word_vector_table(["rock", "qqq"], wv, oov="fail")


def test_negation_points_away_from_the_positive_tag(glove_file):
    table = word_vector_table(["drums", "no drums", "without drums"], WordVectors.from_file(glove_file))
    sim = table.cosine()
    assert sim[0, 1] == pytest.approx(-1) and sim[0, 2] == pytest.approx(-1)


def test_word2vec_text_and_binary(tmp_path):
    words = list(VOCAB)
    vecs = np.array([VOCAB[w] for w in words], dtype=np.float32)
    text = tmp_path / "w2v.txt"
    text.write_text(f"{len(words)} 3\n" + "".join(f"{w} {' '.join(map(str, VOCAB[w]))}\n" for w in words))
    binary = tmp_path / "w2v.bin"
    with open(binary, "wb") as fh:
        fh.write(f"{len(words)} 3\n".encode())
        for w, v in zip(words, vecs):
            fh.write(w.encode() + b" " + v.astype("<f4").tobytes() + b"\n")
    for path in (text, binary):
        wv = WordVectors.from_file(path)
        np.testing.assert_array_equal(wv.get("drums"), [0, 2, 2])
        assert wv.dim == 3 and len(wv.index) == len(words)


def test_malformed_vector_file_is_named(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("rock 1 2 3\npop 1 x 3\n")
    with pytest.raises(DataError, match="bad.txt:2"):
        WordVectors.from_file(bad)


def test_bundled_glove_covers_the_m21_vocabulary():
    wv = WordVectors.bundled()
    assert wv.dim == 50 and len(wv.index) > 390_000
    table = word_vector_table(["violin", "viola", "slip jig", "glockenspiel", "no vocals"], wv)
    assert table.missing() == []
    sim = table.cosine()
    assert sim[0, 1] > 0.5  # violin ~ viola


def test_attribute_vectors_known_counts():
    tags = pd.DataFrame({"tag": ["jig", "reel", "irish", "german", "fast", "slow"],
                         "group": ["form", "form", "origin", "origin", "tempo", "tempo"]})
    #                  jig reel irish german fast slow
    labels = np.array([[1, 0, 1, 0, 1, 0],
                       [1, 0, 1, 0, 0, 0],   # no tempo tag: says nothing about tempo
                       [0, 1, 0, 1, 0, 1],
                       [0, 1, 1, 0, 1, 0]], dtype=bool)
    t = attribute_table(labels, tags, "form", ["origin", "tempo"], "count")
    assert t.meta["columns"] == ["+irish", "+german", "+fast", "+slow", "-irish", "-german", "-fast", "-slow"]
    jig_raw = np.array([[2, 0, 1, 0, 0, 2, 0, 1]])
    reel_raw = np.array([[1, 1, 1, 1, 1, 1, 1, 1]])
    np.testing.assert_allclose(t.vectors[0], zscore_rows(jig_raw)[0], rtol=1e-6)
    np.testing.assert_allclose(t.vectors[1], zscore_rows(reel_raw)[0])  # constant row -> zeros
    assert np.isnan(t.vectors[2:]).all()
    only_first = attribute_table(labels, tags, "form", ["origin"], "confidence", track_rows=np.array([0, 2]))
    assert only_first.meta["n_tracks_counted"] == 2
    with pytest.raises(ParamError, match="tag group 'genre' is not in the dataset"):
        attribute_table(labels, tags, "genre", ["origin"])


def test_openmic_fma_route(tmp_path):
    y_true = np.array([[0.9, 0.2], [0.6, 0.5], [0.1, 0.8]])
    y_mask = np.array([[1, 1], [1, 0], [1, 1]], dtype=bool)
    np.savez(tmp_path / "openmic.npz", Y_true=y_true, Y_mask=y_mask,
             sample_key=np.array(["000002_0", "000002_10", "000005_0"]))
    (tmp_path / "tracks.csv").write_text(",track\n,genres\ntrack_id,\n2,[10]\n5,\"[10, 12]\"\n")
    vec = openmic_fma_vectors(tmp_path / "openmic.npz", tmp_path / "tracks.csv")
    # genre 10 = track 2 (clips 1+2) + track 5; slots: +i0 +i1 -i0 -i1
    np.testing.assert_allclose(vec.loc[10], zscore_rows(np.array([[2, 1, 1, 1]]))[0], rtol=1e-6)
    np.testing.assert_allclose(vec.loc[12], zscore_rows(np.array([[0, 1, 1, 0]]))[0], rtol=1e-6)
    conf = openmic_fma_vectors(tmp_path / "openmic.npz", tmp_path / "tracks.csv", form="confidence")
    np.testing.assert_allclose(conf.loc[12], zscore_rows(np.array([[0, 0.3, 0.4, 0]]))[0], rtol=1e-5)


def test_random_table_and_save_load(tmp_path):
    t = random_table(["a", "b", "c"], 7, seed=3)
    assert t.vectors.shape == (3, 7)
    np.testing.assert_array_equal(t.vectors, random_table(["a", "b", "c"], 7, seed=3).vectors)
    back = SideInfo.load(t.save(tmp_path / "random.npz"))
    assert back.kind == "random" and back.tags == ["a", "b", "c"] and back.meta["seed"] == 3
    np.testing.assert_array_equal(back.vectors, t.vectors)


def test_build_tables_random_takes_the_dimension_of_its_model(glove_file):
    tags = pd.DataFrame({"tag": ["rock", "hipHop", "no vocals"], "group": ["g"] * 3})
    P = config.resolve({"sideinfo": {"kinds": ["random", "glove"], "glove": {"path": str(glove_file)}}})
    tables = build_tables(Context(tags.tag.tolist(), tags, np.ones((2, 3), bool)), P["sideinfo"])
    assert list(tables) == ["random", "glove"] and tables["random"].dim == tables["glove"].dim == 3
    P = config.resolve({"sideinfo": {"kinds": ["random"], "random": {"like": "sentence"}}})
    with pytest.raises(ParamError, match="sideinfo.random.like: 'sentence' is not among the kinds"):
        build_tables(Context(tags.tag.tolist(), tags, np.ones((2, 3), bool)), P["sideinfo"])


def test_nearest_seen(glove_file):
    table = word_vector_table(["rock", "hip", "female", "qqq"], WordVectors.from_file(glove_file))
    near = nearest_seen(table, ["rock", "hip"], ["female", "qqq"], k=1)
    assert near["nearest seen"].tolist()[1] == "(no vector)"
    assert near["nearest seen"].tolist()[0].startswith(("rock", "hip"))


@pytest.mark.slow
def test_sentence_vectors_offline():
    from zslkit.data.sideinfo import sentence_table
    t = sentence_table(["sad piano", "melancholic piano ballad", "aggressive heavy metal"])
    assert t.dim == 384 and np.allclose(np.linalg.norm(t.vectors, axis=1), 1, atol=1e-5)
    sim = t.cosine()
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_repeated_word_keeps_its_first_row():
    wv = WordVectors(["rock", "jazz", "rock"], np.array([[1.0], [2.0], [3.0]]), "t")
    assert wv.get("rock")[0] == 1.0 and wv.get("jazz")[0] == 2.0


def test_table_kind_reads_a_tag_attribute_csv(tmp_path):
    (tmp_path / "attrs.csv").write_text("tag,bowed,low\ncello,1,1\nviolin,1,0\ntuba,0,1\n")
    tags = pd.DataFrame({"tag": ["cello", "violin", "tuba", "kazoo"], "group": ["i"] * 4})
    P = config.resolve({"sideinfo": {"kinds": ["table"], "table": {"path": str(tmp_path / "attrs.csv")}}})
    t = build_tables(Context(tags.tag.tolist(), tags, np.ones((2, 4), bool), None, tmp_path), P["sideinfo"])["table"]
    np.testing.assert_allclose(t.vectors[0], [2 ** -0.5, 2 ** -0.5], rtol=1e-6)
    np.testing.assert_allclose(t.vectors[1], [1, 0])
    assert t.missing() == ["kazoo"] and t.meta["columns"] == ["bowed", "low"]
    (tmp_path / "bad.csv").write_text("tag,bowed\ncello,1\nviolin,yes\n")
    P = config.resolve({"sideinfo": {"kinds": ["table"], "table": {"path": str(tmp_path / "bad.csv")}}})
    with pytest.raises(DataError, match=r"bad.csv: line 3, column 'bowed': 'yes' is not a number"):
        build_tables(Context(tags.tag.tolist(), tags, np.ones((2, 4), bool), None, tmp_path), P["sideinfo"])
    P = config.resolve({"sideinfo": {"kinds": ["table"]}})
    with pytest.raises(ParamError, match="the dataset has no knowledge.csv"):
        build_tables(Context(tags.tag.tolist(), tags, np.ones((2, 4), bool), None, tmp_path), P["sideinfo"])


class FakeEncoder:
    """Stands in for MiniLM: a text's vector is its length and its word count."""

    def encode(self, texts, **kw):
        return np.array([[len(t), len(t.split())] for t in texts], dtype=np.float32)


def test_sentence_vectors_encode_descriptions_where_given(tmp_path):
    t = sentence_table(["cello", "tuba"], "a {tag}", model=FakeEncoder(), descriptions={"cello": "a low bowed string"})
    assert t.report.text.tolist() == ["a low bowed string", "a tuba"]
    assert t.report["from"].tolist() == ["description", "template"] and t.meta["descriptions"] == 1
    np.testing.assert_array_equal(t.vectors[0], [18, 4])
    (tmp_path / "d.csv").write_text("tag,text\ncello,a low bowed string\ntuba,\n")
    with pytest.raises(DataError, match="d.csv: line 3: empty text for tag 'tuba'"):
        read_descriptions(tmp_path / "d.csv")


def test_random_control_draws_are_independent_tables():
    tags = pd.DataFrame({"tag": ["a", "b", "c"], "group": ["g"] * 3})
    P = config.resolve({"sideinfo": {"kinds": ["random"], "random": {"dim": 4, "draws": 3, "seed": 7}}})
    tables = build_tables(Context(tags.tag.tolist(), tags, np.ones((2, 3), bool)), P["sideinfo"])
    assert list(tables) == ["random", "random@1", "random@2"]
    assert [t.meta["seed"] for t in tables.values()] == [7, 8, 9]
    assert not np.allclose(tables["random"].vectors, tables["random@1"].vectors)
    assert draw_names("random", P["sideinfo"]) == ["random", "random@1", "random@2"]
    assert base_kind("random@2") == "random"


def _table(kind, vectors, tags=("a", "b", "c", "d")):
    from zslkit.data.sideinfo import SideInfo
    return SideInfo(kind, list(tags), np.asarray(vectors, dtype=np.float32))


def test_a_table_equal_to_its_control_is_named():
    from zslkit.data.sideinfo import control_warnings, equal_tables
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 6))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    tables = {"glove": _table("glove", v), "random": _table("random", v), "sentence": _table("sentence", v @ q * 3),
              "attributes": _table("attributes", rng.normal(size=(4, 6)))}
    pairs = equal_tables(tables)
    assert {(r.a, r.b): r.identical for r in pairs.itertuples()} == {
        ("glove", "random"): True, ("glove", "sentence"): False, ("random", "sentence"): False}
    warnings = control_warnings(tables)
    assert len(warnings) == 3
    assert "'glove' and 'random' are identical over 4 tags; 'random' is a control" in warnings[0]
    assert "same cosine similarity" in warnings[1] and "learn the same thing" in warnings[1]


def test_different_tables_raise_no_warning_and_missing_rows_are_skipped():
    from zslkit.data.sideinfo import control_warnings
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 5))
    b = a.copy()
    b[3] = np.nan          # a tag without a vector: compared on the others
    c = rng.normal(size=(4, 5))
    assert control_warnings({"glove": _table("glove", a), "random": _table("random", c)}) == []
    assert len(control_warnings({"glove": _table("glove", a), "random": _table("random", b)})) == 1


def test_build_tables_leaves_out_what_the_dataset_cannot_give_only_when_asked(tmp_path):
    """No knowledge.csv, no tag group 'form': with skip_unavailable the kinds are left out with why, and a
    control sized like a kind left out follows it; without, the first one raises as before."""
    tags = pd.DataFrame({"tag": ["a", "b", "c"], "group": ["tag"] * 3})
    P = config.resolve({"sideinfo": {"kinds": ["attributes", "table", "random"], "random": {"like": "table",
                                                                                          "draws": 2}}})
    ctx = Context(tags.tag.tolist(), tags, np.ones((4, 3), bool), np.arange(4), tmp_path)
    assert build_tables(ctx, P["sideinfo"], skip_unavailable=True) == {}
    assert set(ctx.unavailable) == {"attributes", "table", "random"}
    assert "tag group 'form' is not in the dataset (groups: tag)" in ctx.unavailable["attributes"]
    assert "sideinfo.attributes.target_group" in ctx.unavailable["attributes"]
    assert ctx.unavailable["table"].startswith("it cannot be built for this dataset: sideinfo.table.path: null")
    assert "sideinfo.random.like: 'table' is left out (it cannot be built" in ctx.unavailable["random"]
    with pytest.raises(SideInfoUnavailable, match="tag group 'form'"):
        build_tables(Context(tags.tag.tolist(), tags, np.ones((4, 3), bool), np.arange(4), tmp_path), P["sideinfo"])


def test_stage_02_records_a_kind_it_cannot_build_and_removes_its_old_table(tmp_path):
    from conftest import synthetic_dataset

    from zslkit.data.splits import prepare_split
    from zslkit.layout import DatasetLayout
    from zslkit.plan import RunPlan, left_out_kinds
    ds = synthetic_dataset(tmp_path / "ds", n_tracks=40, n_tags=6)
    P = config.resolve({"run": {"data_dir": str(tmp_path)}, "data": {"name": "ds"},
                        "model": {"sideinfo": "random"}, "train": {"also": ["table"], "controls": []},
                        "sideinfo": {"kinds": ["attributes", "table", "random"], "random": {"dim": 4},
                                     "attributes": {"target_group": "g1", "attribute_groups": ["g2"]}}})
    split = prepare_split(ds, P["split"])
    layout = DatasetLayout.at(ds.root)
    random_table(ds.tag_texts, 3).save(layout.sideinfo("s0", "table"))  # a table of an earlier build
    tables = prepare_sideinfo(ds, P["sideinfo"], split, RunPlan.from_params(P).sideinfo_kinds())
    assert list(tables) == ["attributes", "random"] and not layout.sideinfo("s0", "table").exists()
    unbuilt = left_out_kinds(P)
    assert list(unbuilt) == ["table"] and "no knowledge.csv" in unbuilt["table"]
    assert {"task": "sideinfo table", "metric": "skipped", "test_setting": unbuilt["table"]} in results_rows(
        tables, unbuilt)
    assert unavailable_notes(unbuilt) == [f"side information 'table' is left out: {unbuilt['table']}"]
    assert unbuilt["table"].startswith("it cannot be built for this dataset: sideinfo.table.path: null")
    assert str(tmp_path) not in unbuilt["table"] and "(ds/knowledge.csv)" in unbuilt["table"]  # reads the same anywhere
    assert RunPlan.of_run(P).names == ["joint"]
    with pytest.raises(ParamError, match="model.sideinfo: 'table' is left out: it cannot be built .* or use one of "
                                         "'attributes', which were built"):
        RunPlan.of_run({**P, "model": {**P["model"], "sideinfo": "table"}})
    pd.DataFrame({"tag": ds.tag_texts, "x": 1.0, "y": range(6)}).to_csv(ds.root / "knowledge.csv", index=False)
    assert "table" in prepare_sideinfo(ds, P["sideinfo"], split, ["table"])  # the dataset gained it: built, note gone
    assert left_out_kinds(P) == {} and RunPlan.of_run(P).names == ["joint", "joint-table"]


def test_a_kind_without_a_vector_for_a_seen_tag_is_left_out_of_training_and_kept(tmp_path):
    """An out-of-vocabulary seen tag: no joint model can train on the kind; its table stays (it is built), and
    the main model's error gives the split.unseen that works."""
    from conftest import synthetic_dataset

    from zslkit.data.splits import prepare_split
    from zslkit.layout import DatasetLayout
    from zslkit.plan import RunPlan, left_out_kinds
    ds = synthetic_dataset(tmp_path / "ds", n_tracks=40, n_tags=6)
    base = {"run": {"data_dir": str(tmp_path)}, "data": {"name": "ds"}, "train": {"also": ["glove"]}}
    split = prepare_split(ds, config.resolve(base)["split"])
    oov = split.seen[0]
    words = tmp_path / "words.txt"
    words.write_text("".join(f"{t} {i} 1 0\n" for i, t in enumerate(ds.tag_texts) if t != oov))
    P = config.resolve({**base, "model": {"sideinfo": "random"},
                        "sideinfo": {"kinds": ["glove", "random"], "glove": {"path": str(words)}}})
    assert prepare_sideinfo(ds, P["sideinfo"], split) and left_out_kinds(P) == {}  # not trained on: not left out
    tables = prepare_sideinfo(ds, P["sideinfo"], split, RunPlan.from_params(P).sideinfo_kinds())
    assert list(tables) == ["glove", "random"] and DatasetLayout.at(ds.root).sideinfo("s0", "glove").is_file()
    why = left_out_kinds(P)["glove"]
    assert why.startswith(f"it has no vector for seen tag(s) {oov!r}, and a joint model trains on every seen tag")
    assert f"split.unseen: [{', '.join([*split.unseen, oov])}]" in why
    assert RunPlan.of_run(P).names == ["joint"] and RunPlan.of_run(P).left_out[0][0].name == "joint-glove"
    with pytest.raises(ParamError, match=r"model.sideinfo: 'glove' is left out: it has no vector for seen tag"):
        RunPlan.of_run({**P, "model": {**P["model"], "sideinfo": "glove"}})
