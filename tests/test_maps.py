"""Interactive maps: nearest seen tags, every model's tag maps, the bokeh documents and their HTML."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource, CustomJS

from zslkit.evaluate.embed import model_tag_maps
from zslkit.evaluate.embeddings import ClassifierScores, Embeddings
from zslkit.evaluate.tagspace import nearest_seen
from zslkit.show import maps


def test_nearest_seen_excludes_itself_and_unseen_rows():
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.95, 0.05]], float)
    seen = np.array([True, True, True, False])
    near = nearest_seen(v, seen, k=2)
    assert near[0] == [1, 2]       # row 3 is nearer but unseen
    assert near[3] == [0, 1]       # an unseen row gets seen neighbours
    assert near[2] == [1, 0]
    assert nearest_seen(v, np.array([True, False, False, False]), k=3)[0] == []


def _emb(seed, tags, n_tracks=12, dim=6):
    rng = np.random.default_rng(seed)
    tag_emb = rng.normal(size=(len(tags), dim)).astype(np.float32)
    tag_emb[-1] = np.nan  # the last tag has no vector in this model
    return Embeddings([f"t{i}" for i in range(n_tracks)], rng.normal(size=(n_tracks, dim)).astype(np.float32),
                      tags, tag_emb, np.array([True] * (len(tags) - 3) + [False] * 3),
                      rng.normal(size=(len(tags), 4)).astype(np.float32), {"sideinfo": f"kind{seed}"})


@pytest.fixture
def embedded():
    tags = [f"tag{i}" for i in range(12)]
    main = _emb(0, tags)
    main.tag_emb[-1] = 1.0  # the main model has every tag
    return {"joint": main, "joint-random": _emb(1, tags),
            "classifier": ClassifierScores(main.track_ids, tags[:9], np.zeros((12, 9)), {})}


def _main_maps(emb):
    base = pd.DataFrame({"id": emb.tags, "group": ["a", "b"] * 6, "split": np.where(emb.seen, "X", "Y")})
    xy = np.arange(2 * len(emb.tags), dtype=float).reshape(-1, 2)
    return {"side": base.assign(x=xy[:, 0], y=xy[:, 1]), "tags": base.assign(x=-xy[:, 0], y=xy[:, 1])}


def test_model_tag_maps_cover_every_joint_model_on_the_main_tags(embedded):
    tables = model_tag_maps(embedded, _main_maps(embedded["joint"]), {"n_neighbors": 4, "min_dist": 0.1,
                                                                      "metric": "cosine"}, seed=0, k=2)
    assert list(tables) == ["joint", "joint-random"]  # the classifier has no tag space
    main, other = tables["joint"], tables["joint-random"]
    assert list(main.id) == list(other.id) == embedded["joint"].tags
    assert main.x.tolist() == (-np.arange(0, 24, 2.0)).tolist()  # the main model's maps are reused
    assert other.loc[11, ["side_x", "x"]].isna().all() and other.near_side[11] == ""  # no vector: not drawn
    assert other[["side_x", "x"]].iloc[:11].notna().all().all()
    seen = set(embedded["joint"].tags[:9])
    assert all(set(s.split(", ")) <= seen for s in main.near_learned)


def _fetched(page: str) -> list[str]:
    """The URLs the page's own tags load (script contents are not parsed as tags)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(v for k, v in attrs if k in ("src", "href") and v)

    Tags().feed(page)
    return found


def test_linked_maps_share_one_source_and_embed_offline(embedded):
    tables = model_tag_maps(embedded, _main_maps(embedded["joint"]), {"n_neighbors": 4, "min_dist": 0.1,
                                                                      "metric": "cosine"}, seed=0)
    layout = maps.linked_tag_maps(tables, "joint", {"joint": "glove", "joint-random": "random"})
    sources = [m for m in layout.references() if isinstance(m, ColumnDataSource)]
    assert len(sources) == 1  # both maps draw from it: selecting in one selects in the other
    data = sources[0].data
    assert data["sx"] == data["sx_joint"] and "lx_joint-random" in data
    assert data["label"][-3:] == ["tag9", "tag10", "tag11"] and data["label"][0] == ""  # unseen ones labelled
    assert data["marker"][0] == "circle" and data["marker"][-1] == "triangle"
    assert any(isinstance(m, CustomJS) and "d[c + '_' + m]" in m.code for m in layout.references())
    page = maps.html_fragment(layout)
    assert _fetched(page) == []  # every script is inline; nothing is loaded from a URL
    assert re.search(r'<div id="(zslkit-map-[0-9a-f]+)" class="zslkit-map">', page)
    assert len(page) > 1_000_000  # BokehJS itself is in the page


def test_a_rerun_output_removes_the_documents_it_left_behind(embedded):
    tables = model_tag_maps(embedded, _main_maps(embedded["joint"]), {"n_neighbors": 4, "min_dist": 0.1,
                                                                      "metric": "cosine"}, seed=0)
    layout = maps.linked_tag_maps(tables, "joint", {"joint": "glove", "joint-random": "random"})
    page = maps.html_fragment(layout, key="maps-of-04")
    script = page[page.rindex("<script"):]
    assert 'key = "maps-of-04"' in script and "isConnected" in script and "view.remove()" in script
    assert 'key = "zslkit-tag-maps"' in maps.html_fragment(layout)  # by default the layout's name


def _run_js(code: str, args: dict) -> dict:
    """Run a CustomJS callback's code in node with plain-object stand-ins for its bokeh arguments; return them."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the callback's JavaScript")
    program = ("const args = " + json.dumps(args) + ";\nargs.source.change = {emit() {}};\n"
               "new Function(...Object.keys(args), " + json.dumps(code) + ")(...Object.values(args));\n"
               "delete args.source.change; console.log(JSON.stringify(args));")
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_info_line_follows_the_model_picked(embedded):
    """Issue 25: after switching the model, the info line must describe the model shown, not the first one."""
    tables = model_tag_maps(embedded, _main_maps(embedded["joint"]), {"n_neighbors": 4, "min_dist": 0.1,
                                                                      "metric": "cosine"}, seed=0)
    layout = maps.linked_tag_maps(tables, "joint", {"joint": "glove", "joint-random": "random"})
    info = next(m for m in layout.references() if getattr(m, "name", None) == "zslkit-map-info")
    assert "model <b>joint</b>" in info.text
    source = next(m for m in layout.references() if isinstance(m, ColumnDataSource))
    refresh = next(m for m in layout.references() if isinstance(m, CustomJS) and "d[c + '_' + m]" in m.code)
    on_select = next(m for m in layout.references() if isinstance(m, CustomJS) and "left" not in m.args
                     and "info" in m.args)
    assert maps.INFO_JS in refresh.code and on_select.code == maps.INFO_JS
    data = {k: list(v) for k, v in source.data.items()}
    row = data["tag"].index("tag10")  # unseen, with a vector in both models
    assert data["nl_joint"][row] != data["nl_joint-random"][row]
    state = {"source": {"data": data, "selected": {"indices": [row]}}, "model": {"value": "joint"},
             "info": {"text": ""}, "colour": {"value": "group"}, "groups": {"value": sorted(set(data["group"]))},
             "splits": {"active": [0, 1], "labels": ["seen (X)", "unseen (Y)"]}, "left": {"text": ""},
             "right": {"text": ""}, "sides": {"joint": "glove", "joint-random": "random"}}
    picked = _run_js(on_select.code, {k: state[k] for k in ("source", "model", "info")})
    assert data["nl_joint"][row] in picked["info"]["text"] and "model <b>joint</b>" in picked["info"]["text"]
    state["model"]["value"] = "joint-random"  # the user switches to the random control
    switched = _run_js(refresh.code, state)
    text = switched["info"]["text"]
    assert "model <b>joint-random</b>" in text and data["nl_joint-random"][row] in text
    assert data["nl_joint"][row] not in text and data["ns_joint-random"][row] in text
    assert switched["source"]["data"]["nl"][row] == data["nl_joint-random"][row]  # the tooltips' column too
    assert switched["right"]["text"] == "learned tag space of joint-random, after training"


def test_joint_map_plays_tracks_from_the_lab_or_the_page(tmp_path):
    class Ds:
        def audio_path(self, t):
            return tmp_path / "data" / "audio" / f"{t}.wav"

    (tmp_path / "data" / "audio").mkdir(parents=True)
    (tmp_path / "data" / "audio" / "t 1.wav").write_bytes(b"RIFF")
    lab, page = maps.audio_links(Ds(), ["t 1", "t2"], tmp_path, tmp_path / "reports" / "run" / "html")
    assert lab == ["data/audio/t%201.wav", ""] and page == ["../../../data/audio/t%201.wav", ""]
    table = pd.DataFrame({"kind": ["tag", "tag", "track", "track"], "id": ["piano", "air", "t 1", "t2"],
                          "group": ["instrument", "form", "", ""], "split": ["X", "Y", "", ""],
                          "colour": ["", "", "keyboard", ""], "x": [0.0, 1, 2, 3], "y": [0.0, 1, 2, 3]})
    layout = maps.joint_map(table, ["piano", "-"], lab, page, "family")
    track_src = next(m for m in layout.references() if isinstance(m, ColumnDataSource) and "lab" in m.data)
    assert track_src.data["label"] == ["keyboard", "(no family tag)"]
    code = next(m.code for m in layout.references() if isinstance(m, CustomJS) and "files/" in m.code)
    assert "jupyter-config-data" in code and "d.page[i]" in code


def test_stage_maps_writes_the_page_and_the_coordinates(embedded, tmp_path):
    class Ds:
        def audio_path(self, t):
            return tmp_path / f"{t}.wav"

        def __getattr__(self, name):
            raise AttributeError(name)

    emb = embedded["joint"]
    tables = _main_maps(emb)
    tables["joint"] = pd.concat([tables["tags"].assign(kind="tag", colour=""),
                                 pd.DataFrame({"kind": "track", "id": emb.track_ids, "group": "", "split": "",
                                               "colour": "x", "x": 0.0, "y": 0.0})], ignore_index=True)
    params = {"embed": {"umap": {"n_neighbors": 4, "min_dist": 0.1, "metric": "cosine"}}, "run": {"seed": 0}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(maps, "annotation_texts", lambda ds, ids: ["-"] * len(ids))
        maps.stage_maps(embedded, tables, Ds(), tmp_path / "run", params, "family", root=tmp_path)
    coords = pd.read_csv(tmp_path / "run" / "embeddings" / "umap_models.csv")
    assert set(coords.model) == {"joint", "joint-random"} and len(coords) == 24
    page = (tmp_path / "run" / "figures" / "04_maps.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "zslkit-map-" in page
    item = re.search(r"const item = (\{.*?\}), key = ", page, re.S).group(1)
    assert json.loads(item.replace("<\\/", "</").replace("NaN", "null"))["root_id"]
    # titled like every page of the run, with a heading and a word on how to read it
    assert "<title>zslkit · run · 04 maps</title>" in page and "<h1>run: tag and joint maps</h1>" in page
    assert 'key = "zslkit-04-maps"' in page
