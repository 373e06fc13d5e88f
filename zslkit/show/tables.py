"""Tables for the notebooks and report pages: whole, grouped so a reader finds a model's row, our numbers
laid out like the paper's beside its published ones.

- :func:`notebook_display`: the pandas display options every stage notebook sets first (no table is ever
  cut to its first and last rows with "...", no column hidden, no cell shortened).
- :func:`show_grouped`, :func:`show_by_side`: a long table as one table per side
  information (or per any key), each under its name, optionally folded (``<details>``) for the longest.
- :func:`readable` and :func:`rounded`: tidy rows or a wide table with their numbers as a reader reads them
  at once, p-values as :func:`zslkit.show.style.format_p` writes them (``0.018``, ``1.0e-4``), never
  ``9.9990e-05`` (nor 0.0 after rounding).
- :func:`transfer_tests`: the permutation test and the chance test, one row per model.
- The paper's numbers (its Tables 2-4: FMA with instrument attribute vectors, MSD with 300-d GloVe)
  are data, in ``paper_results.csv`` next to this module, read by :func:`paper_results`.
"""
from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
from IPython.display import HTML, display

from ..evaluate.tagspace import annotate
from .style import format_p, side_of, swatch

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


def notebook_display() -> None:
    """pandas display options for the stage notebooks: every row and column of every table (a long one is
    grouped by :func:`show_grouped` instead of cut), whole cells (tag and neighbour lists are never cut with
    an ellipsis) and four significant digits."""
    pd.set_option("display.max_rows", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.width", None)
    pd.set_option("display.precision", 4)


def rounded(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A wide table for reading: numbers to ``digits`` decimals, every column whose name says "p-value" as
    :func:`zslkit.show.style.format_p` writes it (``1.0e-4``, where rounding would print 0.0)."""
    out = table.copy()
    for col in out.columns:
        if "p-value" in str(col):
            out[col] = [format_p(v) for v in pd.to_numeric(out[col], errors="coerce")]
        elif pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out


def _details(title: str, body: str, folded: bool) -> str:
    if not folded:
        return f"<h4 class='zslkit-group'>{title}</h4>{body}"
    return f"<details class='zslkit-group'><summary><b>{title}</b></summary>{body}</details>"


def show_grouped(table: pd.DataFrame, by: str | Callable[[pd.DataFrame], pd.Series] = "model",
                 title: Callable[[str, pd.DataFrame], str] | None = None, folded: bool = False,
                 index: bool = False) -> None:
    """Display ``table`` whole, as one table per value of ``by`` (a column, or a function of the table giving
    one key per row), in the order the keys first appear, each under its name with the row count.

    ``folded``: each group in a ``<details>`` element a reader opens (for tables of hundreds of rows).
    ``title(key, rows)``: the heading's text (default: the key, with a colour swatch when it is a model)."""
    if table is None or not len(table):
        display(table)
        return
    keys = table[by] if isinstance(by, str) else by(table)
    for key in dict.fromkeys(keys):
        rows = table[(keys == key).to_numpy()]
        head = title(key, rows) if title else f"{swatch(key) if by == 'model' else ''}{html.escape(str(key))}"
        body = rows.to_html(index=index, na_rep="", classes="zslkit-table", border=0)
        display(HTML(_details(f"{head} <small>({len(rows)} row{'s' if len(rows) != 1 else ''})</small>", body,
                              folded)))


def show_by_side(table: pd.DataFrame, folded: bool = False) -> None:
    """Display a table with a ``model`` column as one table per side information (:func:`side_of`): the
    learned head, the other heads and a control's draws of one kind together."""
    if table is None or not len(table) or "model" not in table:
        display(table)
        return
    show_grouped(table, by=lambda t: t.model.map(side_of), folded=folded,
                 title=lambda side, rows: f"side information: {html.escape(str(side))}"
                 if side != "classifier" else "the supervised classifier")


def transfer_tests(results: pd.DataFrame) -> pd.DataFrame:
    """The permutation test of tag-specific transfer and the chance test of the controls, one row per model:
    mean AUC-l on (B+C)-Y with each tag's own side information and with permuted side information, the
    permutation p-value, the smallest p the test can give, and the controls' t-test p (H0: AUC-l = 0.5).
    p-values as :func:`format_p` writes them.

    ``results``: rows of ``results.csv`` (stage 05, the dataset's annotation labels are used)."""
    r = results[results.task.isin(["permutation test", "chance test"])
                & (results.labels.fillna("annotation") == "annotation")]
    names = {"mean AUC-l (own side information)": "AUC-l own", "mean AUC-l (permuted side information)":
             "AUC-l permuted", "permutation p-value (H1: own > permuted)": "permutation p",
             "smallest attainable p-value": "smallest p", "t-test p-value (H0: AUC-l = 0.5)": "chance t-test p",
             "mean AUC-l": "AUC-l (chance test)"}
    rows: dict[tuple, dict] = {}
    for x in r.itertuples():
        row = rows.setdefault((x.model, x.test_setting), {"model": x.model, "test": x.test_setting})
        column = names.get(x.metric, x.metric)
        row[column] = format_p(x.value) if column.endswith(" p") else round(float(x.value), 4)
        if pd.notna(x.n):
            row["unseen tags"] = int(x.n)
    out = pd.DataFrame(list(rows.values()))
    if out.empty:
        return out
    if "AUC-l (chance test)" in out and "AUC-l own" in out:  # the same mean twice for a control
        out = out.drop(columns="AUC-l (chance test)")
    order = ["model", "test", "unseen tags", "AUC-l own", "AUC-l permuted", "permutation p", "smallest p",
             "chance t-test p"]
    return out[[c for c in order if c in out] + [c for c in out if c not in order]].astype(object).fillna("")


def readable(rows: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Tidy ``results.csv`` rows for reading: ``value``, ``ci_low``, ``ci_high`` as text with ``digits``
    decimals (a p-value as :func:`format_p`, so a column never turns to ``9.9990e-05`` notation), counts as
    integers, empty cells blank."""
    out = rows.copy()
    is_p = out.metric.astype(str).str.contains("p-value") if "metric" in out else pd.Series(False, out.index)
    for col in ("value", "ci_low", "ci_high"):
        if col in out:
            out[col] = [("" if pd.isna(v) else format_p(v) if p else f"{v:.{digits}f}")
                        for v, p in zip(pd.to_numeric(out[col], errors="coerce"), is_p)]
    for col in ("n", "n_excluded"):
        if col in out:
            out[col] = [("" if pd.isna(v) else str(int(v))) for v in pd.to_numeric(out[col], errors="coerce")]
    return out.fillna("")


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
