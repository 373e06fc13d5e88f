"""The tag-space explorer: an ipywidgets front end (notebook 04) over the plain functions of
:mod:`zslkit.evaluate.tagspace`, which it re-exports for notebooks. Nothing in the package imports this
module: it is a leaf for notebooks.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import ipywidgets as W
import numpy as np
from IPython.display import display

from ..errors import DataError
from ..evaluate.embeddings import Embeddings
from ..evaluate.tagspace import (
    annotate,
    annotation_texts,
    group_labels,
    nearest_tags,
    search_text,
    top_tracks,
    track_annotation,
)

__all__ = ["explorer", "annotate", "annotation_texts", "group_labels", "nearest_tags", "search_text", "top_tracks",
           "track_annotation"]


# ----------------------------------------------------------------------------- the widget

def explorer(emb: Embeddings, ds, encode: Callable[[Sequence[str]], np.ndarray] | None,
             groups: Mapping[str, str], k: int = 10, players: int = 3):
    """An ipywidgets explorer with three tabs: tag -> neighbours and top tracks (with audio
    players), free text -> tracks, track -> its top tags beside the truth. Returns the widget."""

    complete = ds.complete_truth()
    scorable = [t for t, ok in zip(emb.tags, emb.scorable) if ok]

    def player(track_id: str):
        path = ds.audio_path(track_id)
        if not path.is_file():
            return W.HTML(f"<i>{track_id}: no audio file at {path}</i>")
        return W.VBox([W.Label(track_id), W.Audio.from_file(str(path), autoplay=False, loop=False)])

    # tag tab
    tag_pick = W.Dropdown(options=[(f"{t}{'' if emb.seen[emb.tag_row[t]] else ' *'}", t) for t in scorable],
                          description="tag")
    tag_out = W.Output()

    def show_tag(_=None):
        with tag_out:
            tag_out.clear_output()
            tracks = top_tracks(emb, ds, tag_pick.value, k)
            display(nearest_tags(emb, tag_pick.value, groups, k))
            display(tracks)
            display(W.HBox([player(t) for t in tracks.track_id[:players]]))

    tag_pick.observe(show_tag, names="value")

    # text tab
    text_box = W.Text(placeholder="any word or phrase, e.g. 'calm solo piano'", description="query",
                      continuous_update=False)  # the value changes on Enter: searching on Enter
    text_go = W.Button(description="search")
    text_out = W.Output()

    def show_text(_=None):
        with text_out:
            text_out.clear_output()
            if encode is None:
                print("free-text search needs glove or sentence side information")
                return
            try:
                tracks, tags = search_text(emb, ds, text_box.value, encode, groups, k)
            except DataError as exc:
                print(exc)
                return
            display(tags)
            display(tracks)
            display(W.HBox([player(t) for t in tracks.track_id[:players]]))

    text_go.on_click(show_text)
    text_box.observe(show_text, names="value")

    # track tab
    track_pick = W.Combobox(options=emb.track_ids[:5000], placeholder="track id", description="track",
                            ensure_option=True)
    track_out = W.Output()

    def show_track(_=None):
        if track_pick.value not in emb.track_row:
            return
        with track_out:
            track_out.clear_output()
            display(player(track_pick.value))
            print(track_annotation(emb, ds, track_pick.value, complete))
            display(annotate(emb, ds, track_pick.value, groups, k, complete))

    track_pick.observe(show_track, names="value")

    tabs = W.Tab(children=[W.VBox([tag_pick, tag_out]), W.VBox([W.HBox([text_box, text_go]), text_out]),
                           W.VBox([track_pick, track_out])])
    for i, name in enumerate(("tag → tags, tracks", "text → tracks", "track → tags")):
        tabs.set_title(i, name)
    show_tag()
    return tabs

