"""Ranking metrics on a score table.

Conventions
-----------
- ``scores`` and ``labels`` have the same shape; metrics are computed along ``axis``: ``axis=0``
  gives one value per column (per tag: retrieval, "-l"), ``axis=1`` one per row (per track:
  annotation, "-i").
- ROC-AUC is the rank statistic with tied scores given their average rank, which equals
  scikit-learn's ``roc_auc_score``.
- A row or column with no positive or no negative has no AUC: it is NaN, excluded from means,
  and counted as ``n_excluded``.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(scores: np.ndarray, labels: np.ndarray, axis: int = 0) -> np.ndarray:
    """ROC-AUC along ``axis`` (vectorised); NaN where only one class is present."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    ranks = rankdata(scores, axis=axis)
    n_pos = labels.sum(axis=axis)
    n_neg = labels.shape[axis] - n_pos
    rank_sum = np.where(labels, ranks, 0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def summarise(values: np.ndarray) -> dict:
    """Mean over the defined values, with their count and the number excluded."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return {"value": float(values[ok].mean()) if ok.any() else float("nan"),
            "n": int(ok.sum()), "n_excluded": int((~ok).sum())}
