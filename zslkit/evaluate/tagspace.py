"""Queries on a joint space: nearest tags, top tracks, free-text search, a track's annotation.

Plain functions over a model's :class:`~zslkit.evaluate.embeddings.Embeddings`. Every table marks seen tags
(X) and unseen tags (Y): only X took part in training, so a good neighbour or a good annotation
among Y is zero-shot. Tracks are ranked by cosine similarity, as in training and evaluation.
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

    Returns columns ``tag, group, split ('X' or 'Y'), cosine``, best first.
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


def colour_group(ds, wanted: str | None) -> str:
    """The tag group that colours track maps: ``wanted`` (``embed.color_group``), or, when it is None,
    the group with the most tags (the first of equals). A named group the dataset lacks is an error."""
    groups = ds.tags.group.value_counts(sort=False)
    if wanted is None:
        return str(groups.index[int(np.argmax(groups.to_numpy()))])
    if wanted not in groups.index:
        raise DataError(f"embed.color_group: no tag group {wanted!r}; groups are {', '.join(groups.index)} "
                        "(null picks the largest)")
    return wanted


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


def track_annotation(emb, ds, track_id: str, complete=None) -> str:
    """The track's whole annotation in one line, seen (X) and unseen (Y) tags apart, and the complete
    labels where the dataset has them (m21)."""
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

    vectors : (n, d); seen : (n,) bool. Returns n lists of up to ``k`` indices."""
    u = unit(np.asarray(vectors, dtype=np.float64))
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    sim[:, ~np.asarray(seen, bool)] = -np.inf
    order = np.argsort(-sim, axis=1)[:, :k]
    return [[j for j in r if np.isfinite(sim[i, j])] for i, r in enumerate(order)]
