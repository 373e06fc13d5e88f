"""Tag split (seen X / unseen Y) and the paper's A/B/C track split.

Conventions (paper_spec §3)
---------------------------
- Tag split: ``floor(ratio * n_tags)`` tags are seen (X), the rest unseen (Y). With
  ``stratify='group'`` the unseen tags are allotted to tag groups in proportion to their size by
  largest remainder (Hamilton), then drawn within each group, so no group is held out whole.
- Track split, on tracks with at least one tag:
  A = at least one X positive and no Y positive; B = at least one X and at least one Y positive;
  C = no X positive. As in the original, a track positive for *every* X tag is dropped from all
  three (it has no negative to train with).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import ParamError


def split_tags(tags: pd.DataFrame, ratio: float = 0.8, seed: int = 0,
               stratify: str = "group") -> tuple[list[str], list[str]]:
    """Seeded split of ``tags`` (columns ``tag``, ``group``) into (seen, unseen) tag texts.

    Both lists keep the order of ``tags``.
    """
    if not 0 < ratio < 1:
        raise ParamError(f"split.ratio: {ratio!r} must be between 0 and 1")
    n = len(tags)
    n_unseen = n - math.floor(ratio * n)
    rng = np.random.default_rng(seed)
    texts = tags["tag"].tolist()
    if stratify == "none":
        unseen = set(rng.choice(texts, size=n_unseen, replace=False).tolist())
    elif stratify == "group":
        groups = tags.groupby("group", sort=True)["tag"].apply(list)
        quota = {g: n_unseen * len(ts) / n for g, ts in groups.items()}
        alloc = {g: math.floor(q) for g, q in quota.items()}
        rest = n_unseen - sum(alloc.values())
        tiebreak = rng.random(len(quota))
        by_remainder = sorted(quota, key=lambda g: (-(quota[g] - alloc[g]),
                                                    tiebreak[list(quota).index(g)]))
        for g in by_remainder[:rest]:
            alloc[g] += 1
        unseen = set()
        for g, ts in groups.items():
            unseen.update(rng.choice(ts, size=alloc[g], replace=False).tolist())
    else:
        raise ParamError(f"split.stratify: {stratify!r} is not one of ['group', 'none']")
    return [t for t in texts if t not in unseen], [t for t in texts if t in unseen]


def track_subsets(labels: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of the A, B and C tracks.

    Parameters
    ----------
    labels : bool array, shape (n_tracks, n_tags)
    seen : bool array, shape (n_tags,)
        True for X tags.

    Returns
    -------
    dict with keys ``A, B, C`` (int index arrays) and ``untagged``, ``all_seen`` (tracks left out).
    """
    labels = np.asarray(labels, dtype=bool)
    seen = np.asarray(seen, dtype=bool)
    n_x = labels[:, seen].sum(axis=1)
    n_y = labels[:, ~seen].sum(axis=1)
    tagged = (n_x + n_y) > 0
    all_seen = (n_x == seen.sum()) & (seen.sum() > 0)
    ab = (n_x > 0) & ~all_seen
    return {"A": np.flatnonzero(ab & (n_y == 0)), "B": np.flatnonzero(ab & (n_y > 0)),
            "C": np.flatnonzero(tagged & (n_x == 0)), "untagged": np.flatnonzero(~tagged),
            "all_seen": np.flatnonzero(all_seen)}


def subset_shares(labels: np.ndarray, tag_texts: Sequence[str], unseen: Sequence[str]) -> dict:
    """Counts and shares of A, B, C among the tagged tracks for one tag split."""
    unseen = set(unseen)
    seen = np.array([t not in unseen for t in tag_texts])
    sub = track_subsets(labels, seen)
    total = sum(len(sub[k]) for k in "ABC")
    return {**{k: len(sub[k]) for k in "ABC"},
            **{f"share_{k}": len(sub[k]) / total if total else 0.0 for k in "ABC"},
            "left_out": len(sub["untagged"]) + len(sub["all_seen"])}
