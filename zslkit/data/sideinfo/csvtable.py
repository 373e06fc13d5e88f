"""Attribute tables (``table``): a tag x attribute CSV, the class-attribute matrix of vision
zero-shot benchmarks.

The CSV has a ``tag`` column and one numeric column per attribute (0/1 or any number); the paper's
instrument vectors are one instance. ``path: null`` reads the dataset's own ``knowledge.csv``
(m21 writes one from its catalogue: families, excitation, register, ensembles, styles, regions,
eras). Each vector is optionally L2-normalised. Tags the CSV lacks get NaN rows and are reported;
free text has no attribute vector. Given the columns a trained model expects (``Context.columns``,
when a run is applied to another dataset), the table is aligned to them by name before normalising:
a missing column is zero, an extra one is dropped; ``meta`` lists both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import DataError, ParamError, SideInfoUnavailable
from .table import Context, SideInfo


def read_attribute_csv(path: str | Path) -> pd.DataFrame:
    """A ``tag`` -> attributes table from a CSV; errors name the file, row and column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: attribute table not found")
    try:
        raw = pd.read_csv(path, dtype={"tag": str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse CSV: {exc}") from exc
    if "tag" not in raw.columns or raw.shape[1] < 2:
        raise DataError(f"{path}: needs a 'tag' column and at least one attribute column; found {list(raw.columns)}")
    dup = raw.tag[raw.tag.duplicated()]
    if len(dup):
        raise DataError(f"{path}: tag {dup.iloc[0]!r} is listed twice")
    table = raw.set_index("tag")
    values = table.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & (table != "")
    if bad.any().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise DataError(f"{path}: line {row + 2}, column {table.columns[col]!r}: {table.iat[row, col]!r} is not a "
                        "number")
    return values.fillna(0.0)


def align_columns(table: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """``table`` (tag x attribute, as :func:`read_attribute_csv` returns) with exactly ``columns``, in
    that order: a column it lacks is zero, a column it has beyond them is dropped.

    Returns
    -------
    table : pd.DataFrame [shape=(n_tags, len(columns))]
    report : dict
        ``missing_columns`` (zero-filled) and ``extra_columns`` (dropped), in their tables' order.
    """
    columns = [str(c) for c in columns]
    have = set(table.columns)
    report = {"missing_columns": [c for c in columns if c not in have],
              "extra_columns": [c for c in table.columns if c not in set(columns)]}
    return table.reindex(columns=columns, fill_value=0.0), report


def build(ctx: Context, p: Mapping[str, Any]) -> SideInfo:
    if ctx.dataset_root is None:
        raise ParamError("sideinfo.table: attribute vectors exist only for the dataset's tags")
    path = Path(p["path"]) if p["path"] else Path(ctx.dataset_root) / "knowledge.csv"
    if p["path"] is None and not path.is_file():
        raise SideInfoUnavailable(f"sideinfo.table.path: null, and the dataset has no knowledge.csv ({path}); "
                                  "give a CSV (a 'tag' column, one numeric column per attribute)")
    table = read_attribute_csv(path)
    aligned = {}
    if ctx.columns.get("table") is not None:
        table, aligned = align_columns(table, ctx.columns["table"])
    vectors = np.full((len(ctx.texts), table.shape[1]), np.nan, dtype=np.float32)
    have = [i for i, t in enumerate(ctx.texts) if t in table.index]
    vectors[have] = table.loc[[ctx.texts[i] for i in have]].to_numpy(dtype=np.float32)
    if p["normalise"]:
        norms = np.linalg.norm(vectors[have], axis=1, keepdims=True)
        vectors[have] = np.where(norms > 0, vectors[have] / np.where(norms > 0, norms, 1), np.nan)
    status = ["ok" if ok else "not in table" for ok in ~np.isnan(vectors).any(axis=1)]
    return SideInfo("table", list(ctx.texts), vectors,
                    {"source": str(path), "columns": list(table.columns), "normalise": p["normalise"], **aligned},
                    pd.DataFrame({"tag": ctx.texts, "status": status}))
