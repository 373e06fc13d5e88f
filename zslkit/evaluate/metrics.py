"""Ranking metrics on a score table, vectorised over every row or column at once.

Conventions
-----------
- ``scores : np.ndarray [shape=(n_tracks, n_tags)]`` (finite, any real dtype) and
  ``labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]`` (or 0/1): rows are tracks, columns
  tags in this package (any 2-D table works). ``axis=1`` computes one value per row, over the
  columns: per track, over tags (annotation, "-i"). ``axis=0`` computes one value per column, over
  the rows: per tag, over tracks (retrieval, "-l"). Per-item results are arrays of shape
  ``(n_items,)``: ``n_items = n_tracks`` for ``axis=1``, ``n_tags`` for ``axis=0``.
- Items are ranked by descending score. ROC-AUC and average precision treat tied scores as
  scikit-learn does: AUC gives a tied group its average rank (``roc_auc_score``); AP takes each
  positive's precision at the end of its tied group (``average_precision_score``). Inside a
  top-k list, tied items keep the table's order (a stable sort, applied only to the rows with a
  tie among their first ``max(ks) + 1`` items: it costs 4-5x a plain sort). Continuous model
  scores rarely tie there; heads such as ConSE often do, and their top-k metrics depend on it.
- Two backends compute the same numbers: ``numpy`` (chunks on threads) and ``torch`` (chunks on a
  torch device, e.g. the GPU the model ran on). AUC, hit@k and P@k are equal to the last bit (sums
  of integers and half-integers), AP and AP@k up to the order of float additions (1e-12).
- ``hit@k`` is 1 if a positive is among the top k; ``P@k`` is true precision, positives in the
  top k over k; ``AP@k`` is the original code's "precision@k" (Kaggle ``ml_metrics.apk``: the sum
  of precision at each positive in the top k, over ``min(n_positives, k)``), kept for comparison.
- A row or column with no positive or no negative has no ranking to score: it is excluded from
  *every* metric alike (NaN per item, ``valid`` False), and counted as ``n_excluded``. (The original script
  excluded such rows from AUC only, and counted them as 0 or NaN in the others.)
- Means are over the remaining items; confidence intervals are percentile bootstraps of that mean,
  resampling items (tracks for "-i", tags for "-l").
- Differences between two sets of items' values: :func:`paired_difference` (the same items, e.g.
  tags scored on two sets of tracks; the bootstrap resamples pairs) and :func:`difference_of_means`
  (independent samples, e.g. two sets of tracks; each is resampled on its own).
- Two tests of zero-shot transfer: :func:`chance_test` (mean per-tag AUC against 0.5) and
  :func:`permutation_test` (each tag's own side information against the other tags'), which a
  model that ranks by something all tags share cannot pass.

Functions return plain arrays and dicts, as mir_eval's do; :func:`validate` raises
:class:`~zslkit.errors.DataError` naming the problem.
"""
from __future__ import annotations

import itertools
import math
import os
from typing import Sequence

import numpy as np
import torch

from ..config import BACKENDS  # the metric backends, one list: evaluate.backend's choices
from ..errors import DataError

CHUNK_ELEMENTS = 1 << 22  # ~4 M table entries per pass: about 150 MB of work arrays


def validate(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a score table and its labels; return them as (float, bool) arrays.

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
        Finite real scores; a float dtype is kept, any other is cast to float64.
    labels : np.ndarray [shape=(n_tracks, n_tags)]
        Boolean, or 0/1 of any dtype.

    Returns
    -------
    scores : np.ndarray [shape=(n_tracks, n_tags), dtype=float]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]

    Raises
    ------
    DataError
        If the shapes differ or are not 2-D, a label is not 0/1, or a score is NaN or infinite.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise DataError(f"scores {scores.shape} and labels {labels.shape} must be 2-D and the same shape")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise DataError("labels must be 0/1 or boolean")
        labels = labels.astype(bool)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{int(bad.sum())} non-finite score(s), the first at row {r}, column {c}: {scores[r, c]}")
    return scores, labels


def metric_names(ks: Sequence[int] = (1, 5, 10)) -> list[str]:
    """The names of the metrics :func:`per_item` and :func:`evaluate` return, in order.

    Parameters
    ----------
    ks : sequence of int
        Cut-offs of the top-k metrics.

    Returns
    -------
    names : list of str
        ``AUC``, ``AP``, then ``hit@k``, ``P@k``, ``AP@k`` for each ``k`` in ``ks``.
    """
    return ["AUC", "AP"] + [f"{m}@{k}" for k in ks for m in ("hit", "P", "AP")]


def per_item(scores: np.ndarray, labels: np.ndarray, axis: int = 1, ks: Sequence[int] = (1, 5, 10),
             chunk_elements: int = CHUNK_ELEMENTS, workers: int | None = None, backend: str = "numpy",
             device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Every metric for every row (``axis=1``) or column (``axis=0``).

    The table is processed in chunks of about ``chunk_elements`` entries (bounded memory), on
    ``workers`` threads (default: all cores) with ``backend='numpy'``, or one after another on
    ``device`` with ``backend='torch'``.

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
        Bool or 0/1 (checked by :func:`validate`).
    axis : {1, 0}
        1: one value per track, ranking tags ("-i"); 0: one value per tag, ranking tracks ("-l").
    ks : sequence of int
        Top-k cut-offs. ``P@k`` divides by ``k`` even where fewer than ``k`` items are ranked.
    chunk_elements : int
        Table entries per chunk.
    workers : int or None
        Threads of the numpy backend; None = ``os.cpu_count()``. The torch backend uses one.
    backend : {'numpy', 'torch'}
    device : str or torch.device
        Device of the torch backend.

    Returns
    -------
    items : dict
        ``{name: np.ndarray [shape=(n_items,), dtype=float64]}`` for each name of
        :func:`metric_names` (NaN for excluded items), plus ``n_pos`` and ``n_neg``
        (``dtype=int64``) and ``valid`` (``dtype=bool``: at least one positive and one negative),
        of the same shape.

    Raises
    ------
    DataError
        From :func:`validate`, or for an unknown ``axis`` or ``backend``.
    """
    scores, labels = validate(scores, labels)
    if axis not in (0, 1):
        raise DataError(f"axis must be 0 (per column) or 1 (per row), got {axis}")
    if backend not in BACKENDS:
        raise DataError(f"metric backend {backend!r} is not one of {', '.join(BACKENDS)}")
    n_items, n = scores.shape[1 - axis], scores.shape[axis]
    out = {name: np.full(n_items, np.nan) for name in metric_names(ks)}
    out["n_pos"] = np.zeros(n_items, dtype=np.int64)
    step = max(1, chunk_elements // max(n, 1))

    def work(a: int) -> None:  # numpy releases the GIL in sorting: chunks run in threads
        b = min(a + step, n_items)
        s = scores[a:b] if axis == 1 else scores[:, a:b].T
        y = labels[a:b] if axis == 1 else labels[:, a:b].T
        rows = _rows(np.ascontiguousarray(s), np.ascontiguousarray(y), ks) if backend == "numpy" else \
            _rows_torch(torch.as_tensor(np.ascontiguousarray(s), device=device),
                        torch.as_tensor(np.ascontiguousarray(y), device=device), ks)
        for name, values in rows.items():
            out[name][a:b] = values

    starts = range(0, n_items, step)
    workers = 1 if backend == "torch" else min(len(starts), workers or os.cpu_count() or 1)
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, starts))
    else:
        for a in starts:
            work(a)
    out["n_neg"] = n - out["n_pos"]
    out["valid"] = (out["n_pos"] > 0) & (out["n_neg"] > 0)
    for name in metric_names(ks):
        out[name][~out["valid"]] = np.nan
    return out


def _rows(s: np.ndarray, y: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Metrics of each row of ``s`` (m, n) against ``y`` (m, n), ranking within rows."""
    m, n = s.shape
    order = np.argsort(-s, axis=1)
    ss = np.take_along_axis(s, order, axis=1)
    # tied groups: for every position, the first and last position of its group of equal scores
    change = ss[:, 1:] != ss[:, :-1]
    del ss
    tied = ~change[:, :max(ks, default=0)].all(axis=1)  # only a top-k list's order depends on how ties break
    if tied.any():  # tied items keep the table's order (the sorted values, hence `change`, are the same)
        order[tied] = np.argsort(-s[tied], axis=1, kind="stable")
    yy = np.take_along_axis(y, order, axis=1)
    del order
    pos = np.arange(n)
    end = np.where(np.c_[change, np.ones((m, 1), bool)], pos, n)
    end = np.minimum.accumulate(end[:, ::-1], axis=1)[:, ::-1]
    start = np.where(np.c_[np.ones((m, 1), bool), change], pos, 0)
    start = np.maximum.accumulate(start, axis=1)
    del change
    cum = np.cumsum(yy, axis=1, dtype=np.int64)
    n_pos = cum[:, -1]
    n_neg = n - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        # AUC: a positive at descending positions [start, end] has ascending rank n - (start + end) / 2
        rank_sum = np.where(yy, n - (start + end) / 2.0, 0.0).sum(axis=1)
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
        # AP: each positive contributes the precision at the end of its tied group
        prec_end = np.take_along_axis(cum, end, axis=1) / (end + 1.0)
        ap = np.where(yy, prec_end, 0.0).sum(axis=1) / n_pos
        out = {"AUC": auc, "AP": ap, "n_pos": n_pos}
        for k in ks:
            kk = min(k, n)
            top = yy[:, :kk]
            hits = top.sum(axis=1)
            out[f"hit@{k}"] = (hits > 0).astype(np.float64)
            out[f"P@{k}"] = hits / k
            out[f"AP@{k}"] = np.where(top, cum[:, :kk] / (pos[:kk] + 1.0), 0.0).sum(axis=1) / np.minimum(n_pos, k)
    return out


def _rows_torch(s: torch.Tensor, y: torch.Tensor, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """:func:`_rows` on torch tensors (on their device); the same arithmetic, step for step, in float64."""
    m, n = s.shape
    dev, f64 = s.device, torch.float64
    order = torch.argsort(-s, dim=1)
    ss = s.gather(1, order)
    change = ss[:, 1:] != ss[:, :-1]
    del ss
    tied = ~change[:, :max(ks, default=0)].all(dim=1)
    if tied.any():
        order[tied] = torch.argsort(-s[tied], dim=1, stable=True)
    yy = y.gather(1, order)
    del order
    pos = torch.arange(n, device=dev)
    ones = torch.ones((m, 1), dtype=torch.bool, device=dev)
    end = torch.where(torch.cat([change, ones], 1), pos, n)
    end = torch.cummin(end.flip(1), dim=1).values.flip(1)
    start = torch.where(torch.cat([ones, change], 1), pos, 0)
    start = torch.cummax(start, dim=1).values
    del change
    cum = torch.cumsum(yy, dim=1, dtype=torch.int64)
    n_pos = cum[:, -1]
    p, q = n_pos.to(f64), (n - n_pos).to(f64)
    zero = torch.zeros((), dtype=f64, device=dev)
    rank_sum = torch.where(yy, n - (start + end).to(f64) / 2.0, zero).sum(dim=1)
    auc = (rank_sum - p * (p + 1) / 2.0) / (p * q)
    prec_end = cum.gather(1, end).to(f64) / (end.to(f64) + 1.0)
    ap = torch.where(yy, prec_end, zero).sum(dim=1) / p
    out = {"AUC": auc, "AP": ap, "n_pos": n_pos}
    for k in ks:
        kk = min(k, n)
        top = yy[:, :kk]
        hits = top.sum(dim=1).to(f64)
        out[f"hit@{k}"] = (hits > 0).to(f64)
        out[f"P@{k}"] = hits / k
        prec = cum[:, :kk].to(f64) / (pos[:kk].to(f64) + 1.0)
        out[f"AP@{k}"] = torch.where(top, prec, zero).sum(dim=1) / torch.clamp(p, max=k)
    return {name: v.cpu().numpy() for name, v in out.items()}


def roc_auc(scores: np.ndarray, labels: np.ndarray, axis: int = 0) -> np.ndarray:
    """ROC-AUC per column (``axis=0``, the default) or row (``axis=1``); NaN where only one class is present.

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    axis : {0, 1}
        0: one AUC per tag, ranking tracks; 1: one per track, ranking tags.

    Returns
    -------
    auc : np.ndarray [shape=(n_items,), dtype=float64]
        ``n_items = n_tags`` for ``axis=0``, ``n_tracks`` for ``axis=1``.
    """
    return per_item(scores, labels, axis, ks=())["AUC"]


def summarise(values: np.ndarray) -> dict:
    """Mean over the defined values, with their count and the number excluded.

    Parameters
    ----------
    values : np.ndarray [shape=(n_items,)]
        Per-item values, NaN for excluded items.

    Returns
    -------
    summary : dict
        ``value`` (float: the mean of the non-NaN values, NaN if there are none), ``n`` (int: how
        many were averaged) and ``n_excluded`` (int: how many were NaN).
    """
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return {"value": float(values[ok].mean()) if ok.any() else float("nan"),
            "n": int(ok.sum()), "n_excluded": int((~ok).sum())}


def auc_ci_over_tracks(scores: np.ndarray, labels: np.ndarray, n_boot: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean AUC-l over tags when the *tracks* are resampled: the interval for
    a few tags (one tag has no interval over tags) on these tracks.

    Each resample draws the tracks with replacement and averages, over the tags with both a positive and a
    negative in it, each tag's AUC (Mann-Whitney, ties counted half through average ranks).

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    n_boot : int
        Resamples; 0 gives NaN bounds.
    seed : int
    level : float

    Returns
    -------
    ci_low, ci_high : float
        NaN when ``n_boot <= 0``, there are fewer than two tracks, or no resample defines any tag's AUC.
    """
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    n = len(scores)
    if n_boot <= 0 or n < 2:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    means = np.full(n_boot, np.nan)
    per_tag = np.full((n_boot, scores.shape[1]), np.nan)
    for j in range(scores.shape[1]):
        s, y = scores[idx, j], labels[idx, j]
        pos = y.sum(axis=1)
        neg = n - pos
        ranks = rankdata(s, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_tag[:, j] = ((ranks * y).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
        per_tag[(pos == 0) | (neg == 0), j] = np.nan
    defined = ~np.isnan(per_tag).all(axis=1)
    if not defined.any():
        return float("nan"), float("nan")
    means[defined] = np.nanmean(per_tag[defined], axis=1)
    lo, hi = np.quantile(means[defined], [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 batch: int = 1 << 24) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of the defined ``values`` (NaN excluded).

    Parameters
    ----------
    values : np.ndarray [shape=(n_items,)]
        Per-item values; NaN items are dropped before resampling.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling (``np.random.default_rng``).
    level : float
        Coverage, e.g. 0.95 for the 2.5th and 97.5th percentiles of the resampled means.
    batch : int
        Most resampled entries drawn at once (bounds memory).

    Returns
    -------
    ci_low, ci_high : float
        NaN when ``n_boot <= 0`` or fewer than 2 values are defined.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if n_boot <= 0 or len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    per = max(1, batch // len(values))
    for a in range(0, n_boot, per):
        b = min(a + per, n_boot)
        means[a:b] = values[rng.integers(0, len(values), size=(b - a, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """Mean of ``a - b`` over the items where both are defined, with a percentile bootstrap interval
    resampling those items (pairs): e.g. per-tag AUC-l on two sets of tracks, tag by tag.

    Parameters
    ----------
    a, b : np.ndarray [shape=(n_items,)]
        Per-item values of the same items, NaN where undefined.
    n_boot : int
        Bootstrap resamples (0: NaN bounds).
    seed : int
    level : float

    Returns
    -------
    difference : dict
        ``value`` (mean difference), ``ci_low``, ``ci_high``, ``n`` (pairs used) and ``n_excluded``
        (items undefined in ``a`` or ``b``).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise DataError(f"paired values must be of the same items: shapes {a.shape} and {b.shape}")
    d = a - b
    out = summarise(d)
    out["ci_low"], out["ci_high"] = bootstrap_ci(d, n_boot, seed, level)
    return out


def difference_of_means(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> dict:
    """Mean of ``a`` minus mean of ``b`` for two independent samples (e.g. per-track AUC-i of two sets
    of tracks), with a percentile bootstrap interval resampling each sample on its own.

    Parameters
    ----------
    a : np.ndarray [shape=(n_a,)]
    b : np.ndarray [shape=(n_b,)]
        Per-item values, NaN for excluded items (dropped).
    n_boot, seed, level
        As :func:`bootstrap_ci`.

    Returns
    -------
    difference : dict
        ``value``, ``ci_low``, ``ci_high`` (NaN when either sample has fewer than 2 values or
        ``n_boot <= 0``), ``n`` (values used, both samples) and ``n_excluded`` (NaN items, both).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    sa, sb = summarise(a), summarise(b)
    out = {"value": sa["value"] - sb["value"], "n": sa["n"] + sb["n"],
           "n_excluded": sa["n_excluded"] + sb["n_excluded"], "ci_low": float("nan"), "ci_high": float("nan")}
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if n_boot <= 0 or len(a) < 2 or len(b) < 2:
        return out
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    per = max(1, (1 << 24) // (len(a) + len(b)))
    for lo in range(0, n_boot, per):
        hi = min(lo + per, n_boot)
        means[lo:hi] = (a[rng.integers(0, len(a), size=(hi - lo, len(a)))].mean(axis=1)
                        - b[rng.integers(0, len(b), size=(hi - lo, len(b)))].mean(axis=1))
    out["ci_low"], out["ci_high"] = (float(q) for q in np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))
    return out


def evaluate(scores: np.ndarray, labels: np.ndarray, axis: int = 1, ks: Sequence[int] = (1, 5, 10),
             n_boot: int = 0, seed: int = 0, backend: str = "numpy",
             device: str | torch.device = "cpu") -> dict[str, dict]:
    """Every metric of one score table, summarised over its rows or columns.

    ``AP`` is averaged into mean average precision (the paper's MAP). ``per_item`` holds the
    per-row/column values (for plots and further tests).

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    axis : {1, 0}
        As in :func:`per_item`: 1 annotation (per track), 0 retrieval (per tag).
    ks : sequence of int
        Top-k cut-offs.
    n_boot : int
        Bootstrap resamples of each confidence interval; 0 = none (NaN bounds).
    seed : int
        Seed of the bootstrap, the same for every metric.
    backend : {'numpy', 'torch'}
    device : str or torch.device
        Device of the torch backend.

    Returns
    -------
    results : dict
        ``{name: {"value", "n", "n_excluded", "ci_low", "ci_high"}}`` for each name of
        :func:`metric_names` (from :func:`summarise` and :func:`bootstrap_ci`), and
        ``"per_item"``: the dict of :func:`per_item`.
    """
    items = per_item(scores, labels, axis, ks, backend=backend, device=device)
    out = {}
    for name in metric_names(ks):
        s = summarise(items[name])
        s["ci_low"], s["ci_high"] = bootstrap_ci(items[name], n_boot, seed)
        out[name] = s
    out["per_item"] = items
    return out


def chance_test(values: np.ndarray, chance: float = 0.5) -> dict:
    """Two-sided one-sample t-test of the mean of ``values`` (NaN excluded) against ``chance``.

    For a random-side-information model, use per-tag AUC-l: the random draw is per tag, so tags
    are the independent units (per-track values share the same tag vectors and are not).

    Parameters
    ----------
    values : np.ndarray [shape=(n_items,)]
        Per-item values, NaN for excluded items.
    chance : float
        The mean under the null hypothesis.

    Returns
    -------
    test : dict
        ``mean`` (float), ``t`` (float), ``p`` (float, two-sided) and ``n`` (int, the values used);
        ``t`` and ``p`` are NaN with fewer than 2 values.
    """
    from scipy import stats
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return {"mean": float(values.mean()) if len(values) else float("nan"), "t": float("nan"),
                "p": float("nan"), "n": int(len(values))}
    t, p = stats.ttest_1samp(values, chance)
    return {"mean": float(values.mean()), "t": float(t), "p": float(p), "n": int(len(values))}


def cross_auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC-AUC of every label column under every score column.

    ``M[i, j]`` ranks the rows by ``scores[:, i]`` and scores them against ``labels[:, j]``
    (ties as scikit-learn). The diagonal is the per-column AUC of :func:`roc_auc` with ``axis=0``.
    Columns with no positive or no negative are NaN (as rows and as columns).

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]

    Returns
    -------
    M : np.ndarray [shape=(n_tags, n_tags), dtype=float64]
        Row ``i``: the score column ranking the tracks; column ``j``: the label column scored.
    """
    from scipy.stats import rankdata
    scores, labels = validate(scores, labels)
    ranks = rankdata(scores, axis=0)                        # average ranks for ties
    pos = labels.sum(axis=0).astype(np.float64)
    neg = len(labels) - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (ranks.T @ labels.astype(np.float64) - pos * (pos + 1) / 2) / (pos * neg)
    bad = (pos == 0) | (neg == 0)
    m[:, bad] = np.nan
    m[bad, :] = np.nan
    return m


def permutation_test(scores: np.ndarray, labels: np.ndarray, n_permutations: int = 10_000,
                     seed: int = 0) -> dict:
    """Does each column's own scores rank its positives better than the other columns' scores?

    For zero-shot retrieval: columns are unseen tags, ``scores[:, j]`` comes from tag ``j``'s side
    information. The statistic is the mean AUC-l with each tag's own side information (the
    diagonal of :func:`cross_auc`); the null re-assigns the tags' side information among them at
    random (mean of ``M[pi(j), j]`` over tags, for random permutations ``pi``). A model that ranks
    tracks by something every tag shares (how many tags a track has, say) scores above 0.5 under
    both, so this tests for tag-specific transfer, not for a difference from 0.5.

    Parameters
    ----------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
        Column ``j`` scored from tag ``j``'s side information.
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    n_permutations : int
        Random permutations drawn for the null.
    seed : int
        Seed of the permutations.

    Returns
    -------
    test : dict
        ``own`` (float: the observed mean AUC-l), ``permuted`` (float: the mean of the null), ``p``
        (float, one-sided: ``(1 + #{null >= own}) / (1 + n_permutations)``), ``n`` (int: tags
        used, degenerate ones excluded), ``exact`` (bool) and ``min_p`` (float: the smallest p the test
        can give). ``permuted`` and ``p`` are NaN with fewer than 2 tags.

    Notes
    -----
    With few tags (``n! <= n_permutations``: up to 7 tags for 10,000) every permutation is enumerated
    once, the identity included, and ``p = #{null >= own} / n!`` is exact; ``min_p = 1 / n!``, so with 2
    unseen tags p is 0.5 or 1 and the test cannot reject (say so rather than read p as evidence).
    """
    m = cross_auc(scores, labels)
    ok = ~np.isnan(np.diag(m))
    m = m[np.ix_(ok, ok)]
    n = len(m)
    if n < 2:
        return {"own": float(np.diag(m).mean()) if n else float("nan"), "permuted": float("nan"),
                "p": float("nan"), "n": n, "exact": False, "min_p": float("nan")}
    own = float(np.diag(m).mean())
    if math.factorial(n) <= n_permutations:  # small: the exact null over every permutation
        null = np.array([m[list(perm), np.arange(n)].mean() for perm in itertools.permutations(range(n))])
        return {"own": own, "permuted": float(null.mean()), "p": float(np.mean(null >= own - 1e-12)), "n": n,
                "exact": True, "min_p": 1.0 / len(null)}
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for start in range(0, n_permutations, 1000):           # 1000 permutations at a time
        perms = np.argsort(rng.random((min(1000, n_permutations - start), n)), axis=1)
        null[start:start + len(perms)] = m[perms, np.arange(n)].mean(axis=1)
    return {"own": own, "permuted": float(null.mean()),
            "p": float((1 + np.sum(null >= own - 1e-12)) / (1 + n_permutations)), "n": n,
            "exact": False, "min_p": 1.0 / (1 + n_permutations)}
