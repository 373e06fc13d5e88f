"""Queries on a joint space: nearest tags, top tracks, free-text search, a track's annotation.

Plain functions over a model's :class:`~zslkit.evaluate.embeddings.Embeddings`. Every table marks seen tags
(X) and unseen tags (Y): only X took part in training, so a good neighbour or a good annotation
among Y is zero-shot. Tags without side information are never ranked. :func:`nearest_tags` and
:func:`top_tracks` rank by cosine similarity in the learned joint space (``emb.tag_emb``), as in
training, whatever head ``emb`` is scored with; :func:`annotate` ranks by ``emb.scores`` (the
head's scores for a view of :meth:`~zslkit.evaluate.embeddings.Embeddings.with_scorer`). In the
tables, tied scores keep the order of ``emb.tags`` or of the track pool. ``ds`` is a
:class:`~zslkit.data.datasets.Dataset`; ``groups`` maps a tag to its group.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..model.inference import cosine_scores, unit
from .embeddings import Embeddings


def _tag_table(emb: Embeddings, sims: np.ndarray, order: np.ndarray, groups: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"tag": [emb.tags[i] for i in order],
                         "group": [groups.get(emb.tags[i], "") for i in order],
                         "split": ["X" if emb.seen[i] else "Y" for i in order],
                         "cosine": sims[order].round(4)})


def nearest_tags(emb: Embeddings, query: str | np.ndarray, groups: Mapping[str, str], k: int = 10) -> pd.DataFrame:
    """The ``k`` tags nearest to a tag (by name; itself left out) or to a joint-space vector.

    Parameters
    ----------
    emb : Embeddings
    query : str or np.ndarray [shape=(d,)]
        A tag of the split that has side information, or a vector in the joint space.
    groups : mapping of str to str
        Tag -> group.
    k : int
        Tags listed, at most the scorable ones.

    Returns
    -------
    table : pd.DataFrame
        Columns ``tag, group, split ('X' or 'Y'), cosine`` (rounded to 4 places), best first.
    """
    vec = emb.tag_vector(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
    ok = emb.scorable.copy()
    if isinstance(query, str):
        ok[emb.tag_row[query]] = False
    sims = np.full(len(emb.tags), -np.inf)
    sims[ok] = unit(emb.tag_emb[ok]) @ unit(vec)
    order = np.argsort(-sims, kind="stable")[: min(k, int(ok.sum()))]
    return _tag_table(emb, sims, order, groups)


def top_tracks(emb: Embeddings, ds, query: str | np.ndarray, k: int = 10,
               track_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The ``k`` tracks scoring highest for a tag (by name) or a joint-space vector, by cosine.

    Parameters
    ----------
    emb : Embeddings
    ds : Dataset
    query : str or np.ndarray [shape=(d,)]
        A tag of the split that has side information, or a vector in the joint space.
    k : int
        Tracks listed.
    track_ids : sequence of str or None
        The pool (tracks with an embedding); None = every track of ``emb``.

    Returns
    -------
    table : pd.DataFrame
        Columns ``track_id, score`` (cosine, rounded to 4 places), for a tag query ``labelled``
        (bool: the annotation has that tag), and ``tags`` (the track's annotation), best first.
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
    """Each track's annotated tags, joined with ', '.

    Parameters
    ----------
    ds : Dataset
    track_ids : sequence of str

    Returns
    -------
    texts : list of str [length=len(track_ids)]
        Tags in the dataset's order; '' for a track without tags.
    """
    labels = ds.labels(track_ids, ds.tag_texts)
    texts = np.asarray(ds.tag_texts, dtype=object)
    return [", ".join(texts[row]) for row in labels]


def search_text(emb: Embeddings, ds, text: str, encode: Callable[[Sequence[str]], np.ndarray],
                groups: Mapping[str, str], k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Zero-shot retrieval by free text: the top tracks and nearest tags of ``encode([text])``.

    Parameters
    ----------
    emb : Embeddings
    ds : Dataset
    text : str
        The query; surrounding spaces are stripped.
    encode : callable
        list of str -> ``np.ndarray [shape=(n_texts, d)]`` in the joint space (e.g.
        :func:`zslkit.evaluate.embed.text_encoder`).
    groups : mapping of str to str
        Tag -> group.
    k : int
        Rows of each table.

    Returns
    -------
    tracks : pd.DataFrame
        :func:`top_tracks` of the vector.
    tags : pd.DataFrame
        :func:`nearest_tags` of the vector.

    Raises
    ------
    DataError
        For an empty query.
    """
    text = text.strip()
    if not text:
        raise DataError("empty query")
    vec = encode([text])[0]
    return top_tracks(emb, ds, vec, k), nearest_tags(emb, vec, groups, k)


def annotate(emb: Embeddings, ds, track_id: str, groups: Mapping[str, str], k: int = 10,
             complete: Mapping[str, set] | None = None) -> pd.DataFrame:
    """A track's ``k`` best tags (annotation) by ``emb.scores``, with the ground truth beside them.

    Parameters
    ----------
    emb : Embeddings
    ds : Dataset
    track_id : str
        A track with an embedding.
    groups : mapping of str to str
        Tag -> group.
    k : int
        Tags listed, at most the scorable ones.
    complete : mapping of str to set of str, or None
        The complete truth, track -> tags (m21's full labels,
        :meth:`~zslkit.data.datasets.Dataset.complete_truth`).

    Returns
    -------
    table : pd.DataFrame
        Columns ``rank`` (from 1), ``tag, group, split, score`` (rounded to 4 places), ``annotated``
        (bool) and, with ``complete``, ``true`` (bool), best first.
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


def colour_group(ds, wanted: str | None) -> str:
    """The tag group that colours track maps: ``wanted``, or the group with the most tags.

    Parameters
    ----------
    ds : Dataset
    wanted : str or None
        ``embed.color_group``; None picks the group with the most tags (the first of equals).

    Returns
    -------
    group : str

    Raises
    ------
    DataError
        If the dataset has no group ``wanted``.
    """
    groups = ds.tags.group.value_counts(sort=False)
    if wanted is None:
        return str(groups.index[int(np.argmax(groups.to_numpy()))])
    if wanted not in groups.index:
        raise DataError(f"embed.color_group: no tag group {wanted!r}; groups are {', '.join(groups.index)} "
                        "(null picks the largest)")
    return wanted


def fitted_colour_group(ds, wanted: str | None) -> tuple[str, str | None]:
    """:func:`colour_group`, fitted to a dataset that lacks the group asked for: then the group with the most
    tags colours the maps, and a note says so (a colour is no reason to stop a run).

    Returns
    -------
    group : str
    note : str or None
        Why ``wanted`` was not used (None when it was).
    """
    try:
        return colour_group(ds, wanted), None
    except DataError:
        group = colour_group(ds, None)
        groups = ", ".join(dict.fromkeys(ds.tags.group))
        return group, (f"embed.color_group {wanted!r} is not a tag group of this dataset (groups: {groups}): the maps "
                       f"are coloured by {group!r}, the group with the most tags; set embed.color_group to one of "
                       "its groups or null")


def group_labels(ds, track_ids: Sequence[str], group: str, complete: Mapping[str, set] | None = None) -> list[str]:
    """Each track's one tag in ``group``; '' when it has none or several (for colouring maps).

    Parameters
    ----------
    ds : Dataset
    track_ids : sequence of str
    group : str
        A tag group of the dataset.
    complete : mapping of str to set of str, or None
        The complete truth to read instead of the annotation (m21).

    Returns
    -------
    labels : list of str [length=len(track_ids)]

    Raises
    ------
    DataError
        If the dataset has no tag in ``group``.
    """
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


def track_annotation(emb, ds, track_id: str, complete=None) -> str:
    """The track's whole annotation in one line, seen and unseen tags apart, and the complete labels
    where the dataset has them (m21).

    Parameters
    ----------
    emb : Embeddings
        Gives the seen tags; every other annotated tag (Y, or outside the split) is listed as unseen.
    ds : Dataset
    track_id : str
    complete : mapping of str to set of str, or None
        The complete truth; its tags the annotation lacks are listed as "also true".

    Returns
    -------
    line : str
    """
    row = ds.labels([track_id], ds.tag_texts)[0]
    tags = [t for t, y in zip(ds.tag_texts, row) if y]
    seen = {t for t, s in zip(emb.tags, emb.seen) if s}
    line = (f"annotation: seen {', '.join(t for t in tags if t in seen) or '-'}; "
            f"unseen {', '.join(t for t in tags if t not in seen) or '-'}")
    if complete is not None:
        extra = sorted(set(complete.get(track_id, set())) - set(tags))
        line += f"; also true (not annotated): {', '.join(extra) or '-'}"
    return line


def nearest_seen(vectors: np.ndarray, seen: np.ndarray, k: int = 3) -> list[list[int]]:
    """For each row, the indices of its ``k`` nearest seen rows by cosine (itself excluded).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, d)]
        NaN rows have no neighbours and are no one's neighbour.
    seen : np.ndarray [shape=(n,), dtype=bool]
    k : int

    Returns
    -------
    nearest : list of list of int [length=n]
        Up to ``k`` row indices each, nearest first.
    """
    u = unit(np.asarray(vectors, dtype=np.float64))
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    sim[:, ~np.asarray(seen, bool)] = -np.inf
    order = np.argsort(-sim, axis=1)[:, :k]
    return [[j for j in r if np.isfinite(sim[i, j])] for i, r in enumerate(order)]
