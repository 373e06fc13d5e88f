"""Diagnostics: why zero-shot works or not, from a model's frozen embeddings, on any dataset.

Three questions, each answered in numbers (rows with ``task = diagnostic`` in ``results.csv``,
never results of the protocol):

1. **Can the audio tell the unseen tags apart at all?** Two upper bounds fitted on labelled unseen
   tags, which zero-shot by definition may not see: on the B+C tracks, split in two halves
   (seeded), a *prototype* (the mean unit embedding of a tag's positive tracks in the first half,
   scored by cosine) and a *linear probe* (a logistic regression per tag on the first half's unit
   embeddings, ``C = 1``) are scored by AUC-l on the second half. If these are low, no side
   information can help.
2. **Does the side information agree with the audio?** Each tag's audio prototype is the mean unit
   embedding of its positive tracks (every embedded track, by the dataset's annotation); tags
   without positives or without side information are left out. Tag-tag cosine similarities in
   the side-information space and in this audio space are rank-correlated (Spearman) over all tag
   pairs and over the seen-unseen pairs that zero-shot transfer runs on. The nearest seen tags of
   each unseen tag in both spaces are listed side by side.
3. **Where does it fail?** Mean AUC-l by tag group, seen and unseen, from the per-tag table
   (tags with an undefined AUC-l left out).

If (1) is high and (2) is low, the side information, not the audio, holds zero-shot back; if both
are high and the protocol's numbers are low, the head is the weak link.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression

from ..model.inference import cosine_scores, unit
from . import metrics
from .embeddings import Embeddings


def prototypes(track_emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean unit track embedding of each tag's positive tracks (not re-normalised).

    Parameters
    ----------
    track_emb : np.ndarray [shape=(n_tracks, d)]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]

    Returns
    -------
    prototypes : np.ndarray [shape=(n_tags, d), dtype=float64]
        NaN rows for tags without positives.
    """
    counts = labels.sum(axis=0)[:, None]
    sums = labels.T.astype(np.float64) @ unit(track_emb.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def upper_bounds(emb: Embeddings, ds, split, seed: int = 0) -> pd.DataFrame:
    """Per unseen tag: AUC-l on one half of B+C of a prototype and of a linear probe fitted on
    the other half.

    Parameters
    ----------
    emb : Embeddings
        Only its track embeddings, tags and ``seen`` are used.
    ds : Dataset
    split : Split
        Gives the B and C tracks (those with an embedding).
    seed : int
        Seed of the split into halves.

    Returns
    -------
    table : pd.DataFrame
        One row per unseen tag, in ``emb.tags`` order: ``tag, n_pos_fit, n_pos_test`` (int) and the
        AUC-l ``prototype, probe`` (float), NaN where the tag lacks positives or negatives in either
        half.
    """
    ids = [t for t in split.tracks["B"] + split.tracks["C"] if t in emb.track_row]
    unseen = [t for t, s in zip(emb.tags, emb.seen) if not s]
    x = emb.tracks[[emb.track_row[t] for t in ids]]
    y = ds.labels(ids, unseen)
    order = np.random.default_rng([seed, 17]).permutation(len(ids))
    fit, test = order[: len(ids) // 2], order[len(ids) // 2:]
    proto = prototypes(x[fit], y[fit])
    rows = []
    for j, tag in enumerate(unseen):
        row = {"tag": tag, "n_pos_fit": int(y[fit, j].sum()), "n_pos_test": int(y[test, j].sum()),
               "prototype": np.nan, "probe": np.nan}
        if row["n_pos_fit"] and row["n_pos_fit"] < len(fit) and 0 < row["n_pos_test"] < len(test):
            row["prototype"] = float(metrics.roc_auc(cosine_scores(x[test], proto[j:j + 1]), y[test, j:j + 1])[0])
            probe = LogisticRegression(C=1.0, max_iter=2000).fit(unit(x[fit]), y[fit, j])
            score = probe.decision_function(unit(x[test]))[:, None]
            row["probe"] = float(metrics.roc_auc(score, y[test, j:j + 1])[0])
        rows.append(row)
    return pd.DataFrame(rows)


def alignment(emb: Embeddings, ds, k: int = 5) -> tuple[dict[str, Any], pd.DataFrame]:
    """Rank correlation of tag-tag similarities in side-information and audio space, and each
    unseen tag's nearest seen tags in both.

    Parameters
    ----------
    emb : Embeddings
        Its tracks, tags, ``seen`` and ``side`` are used (not ``tag_emb``).
    ds : Dataset
        The annotation that makes the audio prototypes.
    k : int
        Nearest seen tags listed per unseen tag.

    Returns
    -------
    correlation : dict
        ``n_tags`` (int: tags with both a prototype and side information), ``all pairs`` and
        ``seen-unseen pairs`` (float: Spearman's rho over those tag pairs; NaN with fewer than 3
        pairs).
    table : pd.DataFrame
        One row per unseen tag used: ``unseen``, ``nearest seen (side information)``,
        ``nearest seen (audio)`` (str: ``"tag cosine, ..."``, nearest first).
    """
    labels = ds.labels(emb.track_ids, emb.tags)
    audio = prototypes(emb.tracks, labels)
    ok = ~np.isnan(audio).any(axis=1) & ~np.isnan(emb.side).any(axis=1)
    idx = np.flatnonzero(ok)
    side_sim = unit(emb.side[idx]) @ unit(emb.side[idx]).T
    audio_sim = unit(audio[idx]) @ unit(audio[idx]).T
    iu = np.triu_indices(len(idx), k=1)
    seen = emb.seen[idx]
    cross = seen[iu[0]] != seen[iu[1]]
    out = {"n_tags": int(len(idx)),
           "all pairs": float(spearmanr(side_sim[iu], audio_sim[iu]).statistic) if len(iu[0]) > 2 else np.nan,
           "seen-unseen pairs": (float(spearmanr(side_sim[iu][cross], audio_sim[iu][cross]).statistic)
                                 if cross.sum() > 2 else np.nan)}
    seen_cols = np.flatnonzero(seen)
    rows = []
    for i in np.flatnonzero(~seen):
        near = {}
        for name, sim in (("side information", side_sim), ("audio", audio_sim)):
            top = seen_cols[np.argsort(-sim[i, seen_cols], kind="stable")[:k]]
            near[f"nearest seen ({name})"] = ", ".join(f"{emb.tags[idx[j]]} {sim[i, j]:.2f}" for j in top)
        rows.append({"unseen": emb.tags[idx[i]], **near})
    return out, pd.DataFrame(rows)


def group_auc(per_tag: pd.DataFrame) -> pd.DataFrame:
    """Mean AUC-l per tag group and split (X, Y) from a per-tag retrieval table.

    Parameters
    ----------
    per_tag : pd.DataFrame
        Columns ``group``, ``split`` ('X' or 'Y') and ``AUC-l`` (NaN for an excluded tag), one row
        per tag, as stage 05's per-tag retrieval tables.

    Returns
    -------
    table : pd.DataFrame
        Columns ``group, split, AUC-l`` (the mean over defined values) and ``n_tags`` (how many
        were defined), sorted by group and split.
    """
    return (per_tag.groupby(["group", "split"])["AUC-l"].agg(["mean", "count"]).reset_index()
            .rename(columns={"mean": "AUC-l", "count": "n_tags"}))


def diagnose(emb: Embeddings, ds, split, per_tag: pd.DataFrame, model: str, train_setting: str,
             seed: int = 0) -> dict[str, Any]:
    """Every diagnostic of one model; ``rows`` go to ``results.csv`` with ``task = diagnostic``.

    Parameters
    ----------
    emb : Embeddings
    ds : Dataset
    split : Split
    per_tag : pd.DataFrame
        The per-tag retrieval table for :func:`group_auc` (stage 05 passes (B+C)-(X+Y)).
    model : str
        The ``model`` column of the rows.
    train_setting : str
        The ``train_setting`` column of the rows.
    seed : int
        Seed of :func:`upper_bounds`.

    Returns
    -------
    diag : dict
        ``rows`` (list of dict), ``upper_bounds`` (:func:`upper_bounds`), ``nearest`` and
        ``alignment`` (the table and the dict of :func:`alignment`) and ``groups``
        (:func:`group_auc`).
    """
    bounds = upper_bounds(emb, ds, split, seed)
    corr, nearest = alignment(emb, ds)
    groups = group_auc(per_tag)
    common = {"model": model, "train_setting": train_setting, "task": "diagnostic", "labels": "annotation"}
    rows = []
    for col, name in (("prototype", "upper bound AUC-l, prototype"), ("probe", "upper bound AUC-l, linear probe")):
        v = bounds[col].dropna()
        rows.append({**common, "test_setting": "(B+C)-Y half", "metric": name,
                     "value": float(v.mean()) if len(v) else np.nan, "n": len(v),
                     "n_excluded": int(bounds[col].isna().sum())})
    for key in ("all pairs", "seen-unseen pairs"):
        rows.append({**common, "test_setting": "tag pairs", "metric": f"side-audio Spearman, {key}",
                     "value": corr[key], "n": corr["n_tags"]})
    for group, part, auc, n in zip(groups.group, groups.split, groups["AUC-l"], groups.n_tags):
        rows.append({**common, "test_setting": f"(B+C)-{part}", "metric": f"AUC-l, group {group}",
                     "value": float(auc), "n": int(n)})
    return {"rows": rows, "upper_bounds": bounds, "nearest": nearest, "groups": groups, "alignment": corr}


#: fewest positive tracks in each half of B+C for which :func:`summary` reads an upper bound as a verdict
MIN_BOUND_POSITIVES = 5


def summary(diag: Mapping[str, Any]) -> str:
    """One line that says where zero-shot is held back.

    Parameters
    ----------
    diag : mapping
        What :func:`diagnose` returns.

    Returns
    -------
    line : str
        From the mean probe AUC-l (0.7 separates "separates" from "barely") and the seen-unseen
        Spearman rho (thresholds 0.3, 0.05, -0.05). On small data it says so instead of judging: no
        upper bound when no unseen tag has positives and negatives in both halves; "too few positive
        tracks" when no tag scored has :data:`MIN_BOUND_POSITIVES` in each half; "too few tag pairs"
        when rho is undefined.
    """
    b = diag["upper_bounds"]
    probe, proto = b["probe"].mean(), b["prototype"].mean()
    rho = diag["alignment"]["seen-unseen pairs"]
    used = b[b["probe"].notna()]
    most = (int(used[["n_pos_fit", "n_pos_test"]].min(axis=1).max())
            if len(used) and {"n_pos_fit", "n_pos_test"} <= set(b.columns) else None)
    bounds = f"upper bounds: prototype {proto:.2f}, probe {probe:.2f} AUC-l"
    if np.isnan(probe):
        audio = ("the upper bounds cannot be estimated: no unseen tag has positive and negative tracks in both "
                 "halves of B+C")
    elif most is not None and most < MIN_BOUND_POSITIVES:
        audio = (f"too few positive tracks to tell whether the audio separates the unseen tags ({bounds}, from at "
                 f"most {most} positive track(s) in a half; a verdict needs {MIN_BOUND_POSITIVES})")
    else:
        audio = (f"{'the audio separates' if probe >= 0.7 else 'the audio barely separates'} the unseen tags "
                 f"({bounds})")
    if rho is None or np.isnan(rho):
        return f"{audio}; too few seen-unseen tag pairs to compare the side information with the audio"
    side = ("the side information agrees with the audio" if rho >= 0.3 else
            "the side information agrees weakly with the audio" if rho >= 0.05 else
            "the side information is unrelated to the audio" if rho > -0.05 else
            "the side information runs against the audio")
    return f"{audio}; {side} (Spearman {rho:.2f} over seen-unseen tag pairs)"
