"""Tables for the report pages: our numbers laid out like the paper's, beside its published ones.

The paper's numbers (its Tables 2-4: FMA with instrument attribute vectors, MSD with 300-d GloVe)
are data, in ``paper_results.csv`` next to this module, read by :func:`paper_results`.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..evaluate.tagspace import annotate

PAPER_RESULTS = Path(__file__).with_name("paper_results.csv")


@lru_cache(maxsize=1)
def paper_results() -> pd.DataFrame:
    """The paper's published numbers.

    Returns
    -------
    pd.DataFrame
        Columns ``train, test, task, FMA AUC, FMA MAP, MSD AUC, MSD MAP``; ``task`` is
        ``annotation``, ``retrieval``, ``seen-label embedding`` or ``seen-label classifier``;
        NaN where the paper reports nothing.
    """
    return pd.read_csv(PAPER_RESULTS, comment="#")


def _fmt(value, lo, hi) -> str:
    if pd.isna(value):
        return ""
    return f"{value:.4f}" if pd.isna(lo) else f"{value:.4f} [{lo:.3f}, {hi:.3f}]"


def paper_table(results: pd.DataFrame, task: str, model_prefix: str = "embedding",
                labels: str = "annotation") -> pd.DataFrame:
    """Our numbers laid out like the paper's table for ``task``, with the paper's own beside them.

    Parameters
    ----------
    results : pd.DataFrame
        Rows of ``results.csv`` (stage 05).
    task : str
        ``'annotation'``, ``'retrieval'`` or ``'seen-label'``.
    model_prefix : str
        Only models whose label starts so (ignored for the seen-label table, which shows all).
    labels : str
        ``'annotation'`` or ``'complete'`` (m21's complete labels).

    Returns
    -------
    pd.DataFrame
        One row per (model, train, test): ``ours AUC-i`` / ``ours MAP-i`` (or ``-l``) as
        ``"value [ci_low, ci_high]"``, and ``paper FMA AUC-i`` ... where the paper has the setting
        (a different dataset: FMA and MSD). Empty when nothing matches.
    """
    suffix = "i" if task == "annotation" else "l"
    ours = results[(results.task == task) & (results.labels == labels)
                   & results.model.fillna("").str.startswith(model_prefix if task != "seen-label" else "")]
    if ours.empty:
        return pd.DataFrame()
    paper = paper_results()
    rows = []
    for (model, train, test), g in ours.groupby(["model", "train_setting", "test_setting"], sort=False):
        m = g.set_index("metric")
        row = {"model": model, "train": train, "test": test}
        for metric in (f"AUC-{suffix}", f"MAP-{suffix}"):
            if metric in m.index:
                r = m.loc[metric]
                row[f"ours {metric}"] = _fmt(r.value, r.ci_low, r.ci_high)
        kind = "classifier" if model == "classifier" else "embedding"
        paper_task = task if task != "seen-label" else f"seen-label {kind}"
        p = paper[(paper.task == paper_task) & (paper.train == train) & (paper.test == test)]
        for col in ("FMA AUC", "FMA MAP", "MSD AUC", "MSD MAP"):
            if not p.empty and pd.notna(p.iloc[0][col]):
                row[f"paper {col}-{suffix}"] = p.iloc[0][col]
        rows.append(row)
    return pd.DataFrame(rows)


def top_annotations(emb, ds, track_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
    """The paper's qualitative table (its section 7.5): each track's top-k tags over X+Y.

    Parameters
    ----------
    emb : Embeddings
        A model's embeddings (stage 04), possibly viewed through a head.
    ds : Dataset
    track_ids : sequence of str
        The tracks shown, one column each.
    k : int

    Returns
    -------
    pd.DataFrame [shape=(min(k, n_tags), len(track_ids))]
        Index ``rank`` 1..k (fewer when fewer tags can be scored: a small tag set); each cell a tag text,
        unseen tags marked "(unseen)" and tags in the truth (the annotation, or m21's complete labels) marked "✓".
    """
    groups = dict(zip(ds.tags.tag, ds.tags.group))
    complete = ds.complete_truth()
    cols = {}
    for t in track_ids:
        ann = annotate(emb, ds, t, groups, k, complete)
        truth = ann["true"] if "true" in ann else ann["annotated"]
        cols[t] = [f"{r.tag}{' (unseen)' if r.split == 'Y' else ''}{' ✓' if ok else ''}"
                   for r, ok in zip(ann.itertuples(), truth)]
    n = max((len(c) for c in cols.values()), default=0)
    cols = {t: c + [""] * (n - len(c)) for t, c in cols.items()}
    return pd.DataFrame(cols, index=pd.RangeIndex(1, n + 1, name="rank"))
