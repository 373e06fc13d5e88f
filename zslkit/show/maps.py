"""Interactive UMAP maps (bokeh) that work in the lab and in the offline HTML report.

One bokeh document per notebook output, with BokehJS embedded (no CDN), so the same output renders in
JupyterLab and in ``reports/<run>/html/04_embeddings.html`` opened from disk:

- **Linked tag maps**: the side-information map and the learned tag map of one joint model side by
  side, sharing one data source, so a tag selected (tap or box) in one is selected in the other: a
  user sees where an unseen tag sat among its neighbours before training and where it landed after.
  Hover gives the tag, its group, seen (X) or unseen (Y), and its nearest seen tags in both spaces.
  Controls: the model (every joint model of the run: the main one, other side information, the
  controls), colour by group or by seen/unseen, filter by group and by seen/unseen.
- **Joint map**: tags and tracks in one space; hover gives a track's id and annotation; tapping a
  track plays its audio (in the lab through the Jupyter server's ``files/`` route; in an HTML page
  by the file's path relative to the page).

Conventions: coordinates come from :func:`zslkit.evaluate.embed.umap_maps` /
:func:`zslkit.evaluate.embed.model_tag_maps` (one seeded UMAP per map); colours are the static figures'
(:func:`zslkit.show.viz.group_colours`).
"""
from __future__ import annotations

import html
import json
import os
import uuid
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import quote

import pandas as pd
from bokeh.embed import json_item
from bokeh.layouts import column, row
from bokeh.models import (
    BoxSelectTool,
    CheckboxGroup,
    ColumnDataSource,
    CustomJS,
    Div,
    HoverTool,
    LabelSet,
    MultiChoice,
    Select,
    TapTool,
)
from bokeh.plotting import figure
from bokeh.resources import Resources
from IPython.display import HTML, display
from matplotlib.colors import to_hex

from ..config import project_root
from ..evaluate.embed import model_tag_maps
from ..evaluate.embeddings import Embeddings
from ..evaluate.tagspace import annotation_texts
from ..io import write_csv, write_text
from ..layout import RunLayout
from .report_page import page_title
from .viz import group_colours

SPLIT_COLOURS = {"X": "#1f77b4", "Y": "#d62728"}
SPLIT_NAMES = {"X": "seen (X)", "Y": "unseen (Y)"}
RESOURCES = Resources(mode="inline", components=["bokeh", "bokeh-widgets"])
HIDDEN_ALPHA = 0.06


def _hex(colours: Mapping[str, tuple]) -> dict[str, str]:
    return {k: to_hex(v) for k, v in colours.items()}


def tag_map_source(models: Mapping[str, pd.DataFrame], main: str) -> ColumnDataSource:
    """One row per tag; per model ``m`` the columns ``sx_m, sy_m`` (side-information map), ``lx_m, ly_m``
    (learned map), ``ns_m, nl_m`` (nearest seen tags in each space); ``sx, sy, lx, ly, ns, nl`` are
    the model shown (``main`` first).

    ``models``: ``{model: table}`` with columns ``id, group, split, side_x, side_y, x, y, near_side,
    near_learned`` (one row per tag, the same tags in every table)."""
    first = models[main]
    groups = list(first.group)
    colours = _hex(group_colours(groups))
    data = {"tag": list(first.id), "group": groups, "split": [SPLIT_NAMES[s] for s in first.split],
            "label": [t if s == "Y" else "" for t, s in zip(first.id, first.split)],
            "colour_group": [colours[g] for g in groups],
            "colour_split": [SPLIT_COLOURS[s] for s in first.split], "alpha": [0.9] * len(first),
            "marker": ["circle" if s == "X" else "triangle" for s in first.split]}
    data["colour"] = list(data["colour_group"])
    for m, t in models.items():
        t = t.set_index("id").loc[first.id]
        data.update({f"sx_{m}": t.side_x.tolist(), f"sy_{m}": t.side_y.tolist(), f"lx_{m}": t.x.tolist(),
                     f"ly_{m}": t.y.tolist(), f"ns_{m}": t.near_side.tolist(), f"nl_{m}": t.near_learned.tolist()})
    for c in ("sx", "sy", "lx", "ly", "ns", "nl"):
        data[c] = list(data[f"{c}_{main}"])
    return ColumnDataSource(data)


def _tag_figure(source, x: str, y: str, title: str, tools) -> figure:
    # the toolbar at the side, so that a long title (a control's model name) never runs under it
    fig = figure(title=title, frame_width=420, frame_height=400, tools=tools, toolbar_location="right",
                 match_aspect=True)
    fig.scatter(x, y, source=source, size=9, color="colour", alpha="alpha", line_color="black",
                line_width=0.4, marker="marker", selection_line_width=2.5, selection_line_color="black",
                nonselection_alpha=0.15)
    fig.add_layout(LabelSet(x=x, y=y, text="label", source=source, text_font_size="8pt", text_color="#d62728",
                            x_offset=4, y_offset=2))
    fig.xaxis.visible = fig.yaxis.visible = False
    fig.grid.visible = False
    return fig


def linked_tag_maps(models: Mapping[str, pd.DataFrame], main: str, side_names: Mapping[str, str]):
    """The side-information map and the learned map side by side, linked, with controls (module doc).
    Circles are seen tags (X), triangles unseen ones (Y, labelled in red).

    ``side_names``: ``{model: its side-information kind}`` for the titles."""
    source = tag_map_source(models, main)
    hover = HoverTool(tooltips=[("tag", "@tag"), ("group", "@group"), ("", "@split"),
                                ("nearest seen, side information", "@ns"), ("nearest seen, learned", "@nl")])
    left = _tag_figure(source, "sx", "sy", f"side information ({side_names[main]}), before training",
                       [hover, TapTool(), BoxSelectTool(), "pan,wheel_zoom,reset"])
    right = _tag_figure(source, "lx", "ly", f"learned tag space of {main}, after training",
                        [hover, TapTool(), BoxSelectTool(), "pan,wheel_zoom,reset"])
    groups = sorted(set(source.data["group"]))
    model_pick = Select(title="model", value=main, options=list(models), width=220)
    colour_pick = Select(title="colour by", value="group", options=["group", "seen / unseen"], width=160)
    group_pick = MultiChoice(title="groups shown", value=groups, options=groups, width=420)
    split_pick = CheckboxGroup(labels=[SPLIT_NAMES["X"], SPLIT_NAMES["Y"]], active=[0, 1], inline=True,
                               width=230)
    info = Div(text=info_text(main, []), width=900, name="zslkit-map-info")
    describe = dict(source=source, model=model_pick, info=info)
    refresh = CustomJS(args=dict(colour=colour_pick, groups=group_pick, splits=split_pick, left=left.title,
                                 right=right.title, sides=dict(side_names), **describe),
                       code="""
const d = source.data, m = model.value, n = d.tag.length;
for (const c of ['sx', 'sy', 'lx', 'ly', 'ns', 'nl']) d[c] = d[c + '_' + m].slice();
const shown = new Set(groups.value), split = new Set(splits.active.map(i => splits.labels[i]));
d.alpha = d.group.map((g, i) => shown.has(g) && split.has(d.split[i]) ? 0.9 : %s);
d.colour = (colour.value == 'group' ? d.colour_group : d.colour_split).slice();
left.text = 'side information (' + sides[m] + '), before training';
right.text = 'learned tag space of ' + m + ', after training';
source.change.emit();
""" % HIDDEN_ALPHA + INFO_JS)
    for widget, attr in ((model_pick, "value"), (colour_pick, "value"), (group_pick, "value")):
        widget.js_on_change(attr, refresh)
    split_pick.js_on_change("active", refresh)
    source.selected.js_on_change("indices", CustomJS(args=describe, code=INFO_JS))
    controls = row(model_pick, colour_pick, group_pick, column(Div(text="tags shown", width=230), split_pick))
    return column(controls, row(left, right), info, name="zslkit-tag-maps")


#: the info line under the tag maps: the selected tags, described by the model shown (the model picker's
#: value; the data source's ``ns``/``nl`` columns are that model's after a switch), so it never describes a
#: model that is no longer selected
INFO_JS = """
{
const d = source.data, rows = source.selected.indices, name = model.value;
info.text = '<span class="zslkit-info-model">model <b>' + name + '</b></span>: ' + (rows.length == 0 ?
  '<i>tap a tag (or drag a box) in either map: it is selected in both</i>' : rows.slice(0, 8).map(i =>
  '<b>' + d.tag[i] + '</b> (' + d.group[i] + ', ' + d.split[i] + '): nearest seen tags ' +
  'before training <b>' + d.ns[i] + '</b>; after training <b>' + d.nl[i] + '</b>').join('<br>'));
}
"""


def info_text(model: str, rows: Sequence[dict]) -> str:
    """The info line :data:`INFO_JS` writes, from Python (the line a page shows before any tap): ``rows``
    are the selected tags as ``{"tag", "group", "split", "ns", "nl"}``."""
    head = f'<span class="zslkit-info-model">model <b>{html.escape(model)}</b></span>: '
    if not rows:
        return head + "<i>tap a tag (or drag a box) in either map: it is selected in both</i>"
    return head + "<br>".join(f"<b>{r['tag']}</b> ({r['group']}, {r['split']}): nearest seen tags before training "
                              f"<b>{r['ns']}</b>; after training <b>{r['nl']}</b>" for r in rows[:8])


def audio_links(ds, track_ids: Sequence[str], root: str | os.PathLike,
                page_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Each track's audio as a lab URL path (relative to the lab's root, for ``<baseUrl>files/...``) and
    as a path relative to the HTML page in ``page_dir``; empty where there is no such file."""
    root, page_dir = Path(root).resolve(), Path(page_dir).resolve()
    lab, page = [], []
    for t in track_ids:
        path = ds.audio_path(t).resolve()
        if not path.is_file():
            lab.append("")
            page.append("")
            continue
        try:
            lab.append(quote(path.relative_to(root).as_posix()))
        except ValueError:
            lab.append("")
        page.append(quote(Path(os.path.relpath(path, page_dir)).as_posix()))
    return lab, page


def joint_map(table: pd.DataFrame, annotations: Sequence[str], audio_lab: Sequence[str],
              audio_page: Sequence[str], colour_group: str):
    """Tags and tracks of one model in one map (``table``: :func:`zslkit.evaluate.embed.umap_maps`' ``joint``);
    tapping a track plays it. ``annotations``, ``audio_lab``, ``audio_page``: one per track row."""
    tags, tracks = table[table.kind == "tag"], table[table.kind == "track"]
    tag_colours = _hex(group_colours(list(tags.group)))
    none = f"(no {colour_group} tag)"
    tracks = tracks.assign(colour=[c or none for c in tracks.colour])
    labels = list(dict.fromkeys(tracks.colour))
    track_colours = {**_hex(group_colours(labels)), none: "#bbbbbb"}
    track_src = ColumnDataSource({"x": tracks.x.tolist(), "y": tracks.y.tolist(), "id": tracks.id.tolist(),
                                  "label": tracks.colour.tolist(),
                                  "colour": [track_colours[c] for c in tracks.colour],
                                  "annotation": list(annotations), "lab": list(audio_lab), "page": list(audio_page)})
    tag_src = ColumnDataSource({"x": tags.x.tolist(), "y": tags.y.tolist(), "id": tags.id.tolist(),
                                "group": tags.group.tolist(), "split": [SPLIT_NAMES[s] for s in tags.split],
                                "colour": [tag_colours[g] for g in tags.group],
                                "label": [t if s == "Y" else "" for t, s in zip(tags.id, tags.split)]})
    fig = figure(title=f"joint space: tracks (colour: their {colour_group} tag) and tags (triangles)", width=940,
                 height=520, tools="pan,wheel_zoom,box_zoom,reset", toolbar_location="above", match_aspect=True)
    dots = fig.scatter("x", "y", source=track_src, size=5, color="colour", alpha=0.6, legend_field="label",
                       selection_color="black", nonselection_alpha=0.4)
    marks = fig.scatter("x", "y", source=tag_src, size=11, marker="triangle", color="colour", line_color="black")
    fig.add_layout(LabelSet(x="x", y="y", text="label", source=tag_src, text_font_size="8pt", text_color="#d62728",
                            x_offset=5, y_offset=2))
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[("track", "@id"), (colour_group, "@label"),
                                                        ("annotation", "@annotation")]),
                  HoverTool(renderers=[marks], tooltips=[("tag", "@id"), ("group", "@group"), ("", "@split")]),
                  TapTool(renderers=[dots]))
    fig.legend.location = "top_left"
    fig.legend.label_text_font_size = "7pt"
    fig.add_layout(fig.legend[0], "right")
    fig.xaxis.visible = fig.yaxis.visible = False
    fig.grid.visible = False
    player = Div(text="<i>tap a track to play it</i>", width=900, name="zslkit-player")
    track_src.selected.js_on_change("indices", CustomJS(args=dict(source=track_src, player=player), code="""
const i = source.selected.indices[0];
if (i === undefined) return;
const d = source.data, cfg = document.getElementById('jupyter-config-data');
let url = d.page[i];
if (cfg) {  // in JupyterLab: the server's files/ route
  const base = JSON.parse(cfg.textContent).baseUrl || '/';
  url = d.lab[i] ? base + 'files/' + d.lab[i] : '';
}
player.text = '<b>' + d.id[i] + '</b>: ' + d.annotation[i] + '<br>' + (url ?
  '<audio class="zslkit-audio" controls autoplay preload="auto" src="' + url + '"></audio>' :
  '<i>no audio file for this track here</i>');
"""))
    return column(fig, player, name="zslkit-joint-map")


def html_fragment(layout, key: str | None = None) -> str:
    """HTML for a notebook output or a page: BokehJS inlined, then the document embedded once its
    element is in the page (JupyterLab runs an output's scripts before attaching it).

    ``key`` (default: the layout's name) names what the output shows: embedding it again (the cell run
    again) first removes the earlier documents of the same key that are no longer in the page, so
    ``Bokeh.index`` holds the maps on screen, not every map a cell ever drew."""
    target = f"zslkit-map-{uuid.uuid4().hex[:10]}"
    key = json.dumps(str(key or layout.name or "zslkit-map"))
    item = json.dumps(json_item(layout, target)).replace("</", "<\\/")
    return (f'<div id="{target}" class="zslkit-map"></div>\n' + RESOURCES.render_js() + f"""
<script type="text/javascript">
(function () {{
  const item = {item}, key = {key};
  function forget() {{  // the documents an earlier run of this output left: its element is gone from the page
    const mine = (window.zslkitMaps = window.zslkitMaps || {{}})[key] || [];
    window.zslkitMaps[key] = mine.filter(function (embedded) {{
      if (embedded.target.isConnected) return true;
      for (const view of embedded.views) {{ try {{ view.remove(); }} catch (e) {{}} }}  // its notifications too
      return false;
    }});
  }}
  function embed(tries) {{
    const el = document.getElementById("{target}");
    if (el && el.isConnected && window.Bokeh && window.Bokeh.embed) {{
      forget();
      Promise.resolve(window.Bokeh.embed.embed_item(item, "{target}")).then(function (views) {{
        const roots = views && views.roots ? views.roots : [];
        window.zslkitMaps[key] = window.zslkitMaps[key].concat([{{target: el, views: roots}}]);
      }});
    }}
    else if (tries < 400) {{ setTimeout(function () {{ embed(tries + 1); }}, 50); }}
  }}
  embed(0);
}})();
</script>""")


def show(layout):
    """Display ``layout`` in a notebook (an HTML output that renders offline too)."""
    display(HTML(html_fragment(layout)))


PAGE_STYLE = "body{font-family:sans-serif;margin:1.5em 2em;color:#222}h1{font-size:1.5em}p.lead{max-width:60em}"


def save_page(layout, path: str | os.PathLike, title: str, heading: str | None = None, lead: str = "") -> None:
    """A standalone HTML page of ``layout`` with BokehJS inlined (atomic write), titled ``title``, with
    ``heading`` (default: the title) and a ``lead`` paragraph (HTML) above it."""
    intro = f"<h1>{html.escape(heading or title)}</h1>\n" + (f'<p class="lead">{lead}</p>\n' if lead else "")
    write_text(path, f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
                     f"</title><style>{PAGE_STYLE}</style></head>\n<body>\n{intro}{html_fragment(layout)}\n"
                     "</body></html>\n")


def stage_maps(embedded: Mapping[str, object], tables: Mapping[str, pd.DataFrame], ds, run_dir: str | os.PathLike,
               params: Mapping, colour_group: str, root: str | os.PathLike | None = None, main: str = "joint"):
    """Notebook 04's interactive maps: the linked tag maps of every joint model and the main model's joint
    map. Writes ``embeddings/umap_models.csv`` (every model's tag coordinates) and the standalone page
    ``figures/04_maps.html``; returns the layout to show.

    ``tables``: :func:`zslkit.evaluate.embed.umap_maps`' tables of the main model; ``root``: the lab's root
    (default: the project root), from which audio is served in the lab."""
    run = RunLayout.at(run_dir)
    models = model_tag_maps(embedded, tables, params["embed"]["umap"], params["run"]["seed"], main)
    write_csv(run.embeddings_dir / "umap_models.csv",
              pd.concat([t.assign(model=m) for m, t in models.items()], ignore_index=True))
    sides = {m: e.meta["sideinfo"] for m, e in embedded.items() if isinstance(e, Embeddings)}
    joint = tables["joint"]
    track_ids = list(joint[joint.kind == "track"].id)
    lab, page = audio_links(ds, track_ids, root or project_root(), run.html)
    layout = column(linked_tag_maps(models, main, sides),
                    joint_map(joint, annotation_texts(ds, track_ids), lab, page, colour_group), name="zslkit-04-maps")
    save_page(layout, run.figure("04_maps", ".html"), page_title(run.name, "04_maps"),
              f"{run.name}: tag and joint maps", MAPS_LEAD)
    return layout


MAPS_LEAD = ("Top: the side-information map (before training) and the learned tag map (after training) of one "
             "joint model, linked: tap a tag (or drag a box) in either and it is selected in both, with its "
             "nearest seen tags in each space below; hover for a tag's group and neighbours. Pick the model "
             "(the random control shows what chance looks like), colour by group or by seen/unseen, filter "
             "by group. Circles are seen tags (X), triangles unseen ones (Y, labelled in red). Bottom: tracks and "
             "tags in the main model's joint space; tap a track to hear it.")
