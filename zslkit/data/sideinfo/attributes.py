"""Attribute vectors (``attributes``): the paper's FMA construction, generalised.

For each tag of a target group, count its tracks that are positive for each attribute tag and
those that are negative for it (the track's annotation covers the attribute group but not that
tag), giving a ``2 * n_attributes`` vector; ``form='confidence'`` divides by the target's track
count. Each vector is then z-scored across its own entries, as the original does.
``tracks='train'`` counts only training tracks, avoiding the leakage of the paper's construction
(which used all tracks). :func:`openmic_fma_vectors` is the paper's own route from OpenMIC-2018 and
FMA metadata. Tags outside the target group get NaN rows; free text has no attribute vector.
"""
from __future__ import annotations

import ast
import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import DataError, ParamError, SideInfoUnavailable
from .table import Context, SideInfo


def zscore_rows(x: np.ndarray) -> np.ndarray:
    """Standardise each row over its own entries (the original's 'standardization')."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=1, keepdims=True)
    return ((x - x.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def attribute_table(labels: np.ndarray, tags: pd.DataFrame, target_group: str,
                    attribute_groups: Sequence[str], form: str = "count",
                    track_rows: np.ndarray | None = None) -> SideInfo:
    """Positive/negative co-occurrence vectors of the target group's tags (NaN for other tags).

    Parameters
    ----------
    labels : bool (n_tracks, n_tags)
    tags : DataFrame with ``tag, group``
    track_rows : rows of ``labels`` to count (e.g. training tracks only); default all
    """
    groups = set(tags.group)
    for key, g in [("target_group", target_group), *(("attribute_groups", a) for a in attribute_groups)]:
        if g not in groups:
            raise SideInfoUnavailable(f"sideinfo.attributes: tag group {g!r} is not in the dataset "
                                      f"(groups: {', '.join(sorted(groups))}); set sideinfo.attributes.{key} "
                                      "to groups of this dataset")
    labels = np.asarray(labels, dtype=bool)
    if track_rows is not None:
        labels = labels[track_rows]
    group = tags.group.to_numpy()
    target = np.flatnonzero(group == target_group)
    attr_cols = np.flatnonzero(np.isin(group, list(attribute_groups)))
    pos = np.zeros((len(target), len(attr_cols)))
    neg = np.zeros_like(pos)
    for g in attribute_groups:  # a track says something about group g only if tagged in g
        cols = np.flatnonzero(group[attr_cols] == g)
        covered = labels[:, attr_cols[cols]].any(axis=1)
        for j, t in enumerate(target):
            rows = labels[:, t] & covered
            pos[j, cols] = labels[rows][:, attr_cols[cols]].sum(axis=0)
            neg[j, cols] = rows.sum() - pos[j, cols]
    raw = np.concatenate([pos, neg], axis=1)
    if form == "confidence":
        n = labels[:, target].sum(axis=0).reshape(-1, 1)
        raw = raw / np.maximum(n, 1)
    vectors = np.full((len(tags), raw.shape[1]), np.nan, dtype=np.float32)
    vectors[target] = zscore_rows(raw)
    empty = [tags.tag.iloc[t] for j, t in enumerate(target) if raw[j].sum() == 0]
    attr_names = tags.tag.iloc[attr_cols].tolist()
    in_target = set(target.tolist())
    report = pd.DataFrame({"tag": tags.tag, "status": ["ok" if i in in_target else "not in target group"
                                                       for i in range(len(tags))]})
    report.loc[report.tag.isin(empty), "status"] = "no co-occurrence"
    return SideInfo("attributes", tags.tag.tolist(), vectors,
                    {"target_group": target_group, "attribute_groups": list(attribute_groups),
                     "form": form, "columns": [f"+{a}" for a in attr_names] + [f"-{a}" for a in attr_names],
                     "n_tracks_counted": int(labels.shape[0])}, report)


def openmic_fma_vectors(openmic_npz: str | os.PathLike, fma_tracks_csv: str | os.PathLike,
                        form: str = "count", genre_column: str = "genres") -> pd.DataFrame:
    """The paper's 40-d genre vectors from OpenMIC-2018 and FMA metadata (see docs/sideinfo.md).

    Per OpenMIC clip and labelled instrument i: count form puts 1 in slot i if ``Y_true > 0.5``,
    else 1 in slot i + 20; confidence form puts ``Y_true - 0.5`` or ``0.5 - Y_true`` there. A
    genre's vector sums its clips' vectors and is z-scored over its own 40 entries.

    Returns
    -------
    DataFrame indexed by FMA genre id, 40 columns.
    """
    with np.load(openmic_npz, allow_pickle=False) as z:
        missing = {"Y_true", "Y_mask", "sample_key"} - set(z.files)
        if missing:
            raise DataError(f"{openmic_npz}: missing array(s) {sorted(missing)}")
        y_true, y_mask, keys = z["Y_true"], z["Y_mask"].astype(bool), z["sample_key"]
    n_inst = y_true.shape[1]
    positive = y_true > 0.5
    if form == "count":
        clip = np.concatenate([positive & y_mask, ~positive & y_mask], axis=1).astype(np.float64)
    else:
        clip = np.concatenate([np.where(positive & y_mask, y_true - 0.5, 0),
                               np.where(~positive & y_mask, 0.5 - y_true, 0)], axis=1)
    track_of_clip = np.array([int(str(k).split("_")[0]) for k in keys])
    try:
        meta = pd.read_csv(fma_tracks_csv, index_col=0, header=[0, 1])
        genres = meta[("track", genre_column)]
    except (KeyError, ValueError) as exc:
        raise DataError(f"{fma_tracks_csv}: no ('track', '{genre_column}') column: {exc}") from None
    per_track = pd.DataFrame(clip).groupby(track_of_clip).sum()
    sums: dict[int, np.ndarray] = {}
    for track_id, vec in per_track.iterrows():
        if track_id not in genres.index or not isinstance(genres.at[track_id], str):
            continue
        for g in ast.literal_eval(genres.at[track_id]):
            sums[int(g)] = sums.get(int(g), 0) + vec.to_numpy()
    ids = sorted(sums)
    out = zscore_rows(np.stack([sums[g] for g in ids])) if ids else np.zeros((0, 2 * n_inst))
    return pd.DataFrame(out, index=pd.Index(ids, name="genre_id"))


def build(ctx: Context, a: Mapping[str, Any]) -> SideInfo:
    texts = ctx.texts
    if a["openmic"] or a["fma_tracks"]:
        if not (a["openmic"] and a["fma_tracks"]):
            raise ParamError("sideinfo.attributes: openmic and fma_tracks go together")
        genre = openmic_fma_vectors(a["openmic"], a["fma_tracks"], a["form"])
        vectors = np.full((len(texts), genre.shape[1]), np.nan, dtype=np.float32)
        for i, t in enumerate(texts):
            if t.isdigit() and int(t) in genre.index:
                vectors[i] = genre.loc[int(t)].to_numpy()
        return SideInfo("attributes", texts, vectors, {"source": "OpenMIC-2018 + FMA", "form": a["form"]})
    rows = ctx.train_rows if a["tracks"] == "train" else None
    table = attribute_table(ctx.labels, ctx.tags, a["target_group"], a["attribute_groups"], a["form"], rows)
    table.meta["tracks"] = a["tracks"]
    return table
