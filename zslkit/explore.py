"""The tag-space explorer: plain functions over a run's :class:`~zslkit.embed.Embeddings`, and the
ipywidgets front end that calls them (notebook 04).

Every table marks seen tags (X) and unseen tags (Y): only X took part in training, so a good
neighbour or a good annotation among Y is zero-shot. Tracks are ranked by cosine similarity, as in
training and evaluation.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .embed import Embeddings, cosine_scores
from .errors import DataError


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _tag_table(emb: Embeddings, sims: np.ndarray, order: np.ndarray, groups: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"tag": [emb.tags[i] for i in order],
                         "group": [groups.get(emb.tags[i], "") for i in order],
                         "split": ["X" if emb.seen[i] else "Y" for i in order],
                         "cosine": sims[order].round(4)})


def nearest_tags(emb: Embeddings, query: str | np.ndarray, groups: Mapping[str, str], k: int = 10) -> pd.DataFrame:
    """The ``k`` tags nearest to a tag (by name; itself left out) or to a joint-space vector.

    Returns columns ``tag, group, split ('X' or 'Y'), cosine``, best first.
    """
    vec = emb.tag_vector(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
    ok = emb.scorable.copy()
    if isinstance(query, str):
        ok[emb.tag_row[query]] = False
    sims = np.full(len(emb.tags), -np.inf)
    sims[ok] = _unit(emb.tag_emb[ok]) @ _unit(vec)
    order = np.argsort(-sims, kind="stable")[: min(k, int(ok.sum()))]
    return _tag_table(emb, sims, order, groups)


def top_tracks(emb: Embeddings, ds, query: str | np.ndarray, k: int = 10,
               track_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The ``k`` tracks scoring highest for a tag (by name) or a joint-space vector.

    Returns ``track_id, score, tags`` (the track's annotation) and, for a tag query, ``labelled``
    (whether the annotation has that tag), best first. ``track_ids`` restricts the pool.
    """
    vec = emb.tag_vector(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
    ids = list(emb.track_ids if track_ids is None else track_ids)
    rows = [emb._track(t) for t in ids]
    scores = cosine_scores(emb.tracks[rows], vec[None, :])[:, 0]
    order = np.argsort(-scores, kind="stable")[:k]
    top = [ids[i] for i in order]
    out = pd.DataFrame({"track_id": top, "score": scores[order].round(4), "tags": annotation_texts(ds, top)})
    if isinstance(query, str):
        out.insert(2, "labelled", ds.labels(top, [query])[:, 0])
    return out


def annotation_texts(ds, track_ids: Sequence[str]) -> list[str]:
    """Each track's annotated tags, joined with ', '."""
    labels = ds.labels(track_ids, ds.tag_texts)
    texts = np.asarray(ds.tag_texts, dtype=object)
    return [", ".join(texts[row]) for row in labels]


def search_text(emb: Embeddings, ds, text: str, encode: Callable[[Sequence[str]], np.ndarray],
                groups: Mapping[str, str], k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Zero-shot retrieval by free text: ``(top tracks, nearest tags)`` for ``encode([text])``."""
    text = text.strip()
    if not text:
        raise DataError("empty query")
    vec = encode([text])[0]
    return top_tracks(emb, ds, vec, k), nearest_tags(emb, vec, groups, k)


def annotate(emb: Embeddings, ds, track_id: str, groups: Mapping[str, str], k: int = 10,
             complete: Mapping[str, set] | None = None) -> pd.DataFrame:
    """A track's ``k`` best tags (annotation), with the ground truth beside them.

    Columns: ``rank, tag, group, split, score, annotated`` and, when ``complete`` truth is given
    (m21's full labels), ``true``.
    """
    scores = np.full(len(emb.tags), -np.inf)
    ok = emb.scorable
    scores[ok] = emb.scores([track_id], [t for t, s in zip(emb.tags, ok) if s])[0]
    order = np.argsort(-scores, kind="stable")[: min(k, int(ok.sum()))]
    out = _tag_table(emb, scores, order, groups).rename(columns={"cosine": "score"})
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["annotated"] = ds.labels([track_id], out.tag.tolist())[0]
    if complete is not None:
        out["true"] = [t in complete.get(track_id, set()) for t in out.tag]
    return out


def group_labels(ds, track_ids: Sequence[str], group: str, complete: Mapping[str, set] | None = None) -> list[str]:
    """Each track's one tag in ``group``; '' when it has none or several (for colouring maps)."""
    tags = ds.tags.tag[ds.tags.group == group].tolist()
    if not tags:
        raise DataError(f"embed.color_group: no tag group {group!r}; groups are "
                        f"{', '.join(dict.fromkeys(ds.tags.group))}")
    if complete is not None:
        have = [[t for t in tags if t in complete.get(i, set())] for i in track_ids]
    else:
        lab = ds.labels(track_ids, tags)
        have = [[t for t, y in zip(tags, row) if y] for row in lab]
    return [h[0] if len(h) == 1 else "" for h in have]


# ----------------------------------------------------------------------------- the widget

def explorer(emb: Embeddings, ds, encode: Callable[[Sequence[str]], np.ndarray] | None,
             groups: Mapping[str, str], k: int = 10, players: int = 3):
    """An ipywidgets explorer with three tabs: tag -> neighbours and top tracks (with audio
    players), free text -> tracks, track -> its top tags beside the truth. Returns the widget."""
    import ipywidgets as W
    from IPython.display import display

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
    text_box = W.Text(placeholder="any word or phrase, e.g. 'calm solo piano'", description="query")
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
            display(annotate(emb, ds, track_pick.value, groups, k, complete))

    track_pick.observe(show_track, names="value")

    tabs = W.Tab(children=[W.VBox([tag_pick, tag_out]), W.VBox([W.HBox([text_box, text_go]), text_out]),
                           W.VBox([track_pick, track_out])])
    for i, name in enumerate(("tag → tags, tracks", "text → tracks", "track → tags")):
        tabs.set_title(i, name)
    show_tag()
    return tabs
