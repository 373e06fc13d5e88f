"""Side information: one tag -> vector table per kind, with a report of tags left without one.

Kinds are registered in :data:`zslkit.registry.SIDEINFO` (the built-in ones declared in :mod:`zslkit.builtins`):
``glove``, ``table``, ``sentence``, ``attributes``, ``random`` (the chance control) and ``original`` (the original
project's vectors). A kind is a function ``build(ctx, params) -> SideInfo``:

- ``ctx`` is a :class:`Context`: the texts to give vectors (the dataset's tags in tag order, or
  free-text queries), the tag table, the annotation, the training rows, the dataset folder, and
  the tables built before it;
- ``params`` is the kind's own resolved section ``sideinfo.<kind>`` (for draw ``d`` of a kind with
  ``draws``, its ``seed`` is ``seed + d`` and the table is named ``<kind>@<d>``);
- it returns a :class:`SideInfo` with one row per text, NaN rows for texts it has no vector for.

Flags: ``free_text`` (the kind can embed any text, so free-text queries work with it) and
``control`` (a control such as random vectors: built after the others, trainable through
``train.controls``, and tested against chance in stage 05). Control labels never leak: only the
training rows are passed for kinds that count co-occurrence.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import ParamError
from ...layout import DatasetLayout
from ...plan import base_kind, draw_names
from ...registry import SIDEINFO
from .attributes import attribute_table, openmic_fma_vectors, zscore_rows
from .glove import NEGATORS, WordVectors, tag_words, word_vector_table, word_vectors
from .random import random_table
from .sentence import sentence_table
from .table import Context, SideInfo, load_table

__all__ = ["Context", "SideInfo", "load_table", "build_tables", "equal_tables", "control_warnings",
           "prepare_sideinfo",
           "text_vectors", "nearest_seen", "coverage_report", "results_rows", "attribute_table",
           "openmic_fma_vectors", "zscore_rows", "NEGATORS", "WordVectors", "tag_words",
           "word_vector_table", "word_vectors", "random_table", "sentence_table"]


def build_tables(ctx: Context, params: Mapping[str, Any]) -> dict[str, SideInfo]:
    """Every kind named in ``params['kinds']`` (the resolved ``sideinfo`` section), controls last;
    a kind with ``draws > 1`` also gives ``<kind>@<d>``, drawn with seed ``seed + d``."""
    kinds = list(params["kinds"])
    order = sorted(kinds, key=lambda k: SIDEINFO[k].control)
    names = []
    for kind in order:
        for d, name in enumerate(draw_names(kind, params)):
            p = params[kind] if d == 0 else {**params[kind], "seed": params[kind]["seed"] + d}
            table = SIDEINFO[kind].obj(ctx, p)
            if len(table.tags) != len(ctx.texts) or table.vectors.ndim != 2:
                raise ParamError(f"sideinfo kind {kind!r} returned {table.vectors.shape} vectors for "
                                 f"{len(ctx.texts)} tags")
            table.kind = name
            ctx.built[name] = table
            names.append(name)
    return {k: ctx.built[k] for k in sorted(names, key=lambda n: (kinds.index(base_kind(n)), n))}


def text_vectors(texts: Sequence[str], kind: str, params: Mapping[str, Any]) -> np.ndarray:
    """Side information for arbitrary texts, built as the tags' own: ``(n, dim)``, NaN if unknown.

    Raises :class:`ParamError` for kinds that exist only for the dataset's tags.
    """
    entry = SIDEINFO[kind]
    if not entry.free_text:
        raise ParamError(f"model.sideinfo: {kind!r} vectors exist only for the dataset's tags; free-text "
                         f"queries need one of {', '.join(SIDEINFO.names(free_text=True))}")
    return entry.obj(Context(list(texts), free_text=True), params[kind]).vectors


def prepare_sideinfo(ds, params: Mapping[str, Any], split) -> dict[str, SideInfo]:
    """Build every kind in the ``sideinfo`` params and save it with the split
    (:meth:`zslkit.layout.DatasetLayout.sideinfo`).

    Kinds that count co-occurrence see A-train and B-train tracks only: no validation track and
    no C track contributes (B-Y evaluation, as in the paper, still covers B-train).
    """
    row = {t: i for i, t in enumerate(ds.tracks.track_id)}
    train_rows = np.array(sorted(row[t] for t in set(split.tracks["A_train"]) | set(split.tracks["B_train"])),
                          dtype=int)
    ctx = Context(ds.tag_texts, ds.tags, ds.label_matrix(), train_rows, ds.root)
    tables = build_tables(ctx, params)
    for kind, table in tables.items():
        table.save(DatasetLayout.at(ds.root).sideinfo(split.name, kind))
    return tables


def nearest_seen(table: SideInfo, seen: Sequence[str], unseen: Sequence[str], k: int = 5) -> pd.DataFrame:
    """For each unseen tag, its ``k`` most similar seen tags by cosine of the side information."""
    index = {t: i for i, t in enumerate(table.tags)}
    sim = table.cosine()
    seen_idx = [index[t] for t in seen if table.present[index[t]]]
    rows = []
    for t in unseen:
        i = index[t]
        if not table.present[i]:
            rows.append({"unseen": t, "nearest seen": "(no vector)"})
            continue
        s = sim[i, seen_idx]
        top = np.argsort(-s)[:k]
        rows.append({"unseen": t, "nearest seen": ", ".join(f"{table.tags[seen_idx[j]]} {s[j]:.2f}" for j in top)})
    return pd.DataFrame(rows)


def coverage_report(tables: Mapping[str, SideInfo]) -> pd.DataFrame:
    """Per kind: dimension, tags with a vector, and the tags without one."""
    return pd.DataFrame([{"kind": k, "dim": t.dim, "tags with vector": int(t.present.sum()),
                          "without": len(t.missing()), "missing tags": ", ".join(t.missing()[:15])}
                         for k, t in tables.items()])


#: two tables whose tag-by-tag cosine similarities differ by less than this everywhere are "nearly equal"
SAME_GEOMETRY = 1e-3


def equal_tables(tables: Mapping[str, SideInfo], tol: float = SAME_GEOMETRY) -> pd.DataFrame:
    """Pairs of side-information tables that are equal or nearly so: a control that is not one.

    A model sees side information only through the tags' geometry, so two tables that give every
    pair of tags the same cosine similarity (a table equal to another, scaled, or rotated) train the
    same model: a "real" table equal to a random draw makes the control comparison meaningless.

    Parameters
    ----------
    tables : mapping of str -> SideInfo
        The run's tables (stage 02), over the same tags.
    tol : float
        Largest absolute difference of cosine similarities still called nearly equal.

    Returns
    -------
    pd.DataFrame
        One row per such pair: ``a``, ``b``, ``identical`` (same shape and the same vectors),
        ``max_cosine_difference`` (over the tags both tables have a vector for), ``tags``; empty when
        every table differs from every other.
    """
    names = list(tables)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ta, tb = tables[a], tables[b]
            if ta.tags != tb.tags:
                continue
            both = ta.present & tb.present
            if both.sum() < 2:
                continue
            ca, cb = ta.cosine()[np.ix_(both, both)], tb.cosine()[np.ix_(both, both)]
            diff = float(np.nanmax(np.abs(ca - cb)))
            identical = ta.vectors.shape == tb.vectors.shape and np.array_equal(ta.vectors[both], tb.vectors[both])
            if identical or diff < tol:
                rows.append({"a": a, "b": b, "identical": bool(identical), "max_cosine_difference": diff,
                             "tags": int(both.sum())})
    return pd.DataFrame(rows, columns=["a", "b", "identical", "max_cosine_difference", "tags"])


def control_warnings(tables: Mapping[str, SideInfo], tol: float = SAME_GEOMETRY) -> list[str]:
    """One sentence per pair of :func:`equal_tables`, naming both tables (a control among them first)."""
    out = []
    for r in equal_tables(tables, tol).itertuples():
        how = "are identical" if r.identical else (f"give every pair of tags the same cosine similarity "
                                                    f"(largest difference {r.max_cosine_difference:.1e})")
        ctl = [n for n in (r.a, r.b) if SIDEINFO[base_kind(n)].control]
        why = (f"; {ctl[0]!r} is a control, so the comparison with it says nothing" if ctl
               else "; the two models will learn the same thing")
        out.append(f"side information {r.a!r} and {r.b!r} {how} over {r.tags} tags{why}")
    return out


def results_rows(tables: Mapping[str, SideInfo]) -> list[dict]:
    """Per kind: dimension and number of tags without a vector, for ``results.csv``."""
    rows = []
    for kind, t in tables.items():
        rows.append({"task": f"sideinfo {kind}", "metric": "dim", "value": t.dim})
        rows.append({"task": f"sideinfo {kind}", "metric": "n_tags_without_vector", "value": len(t.missing()),
                     "n": len(t.tags)})
    rows += [{"task": f"sideinfo {r.a} = {r.b}", "metric": "max_cosine_difference", "value": r.max_cosine_difference,
              "n": r.tags} for r in equal_tables(tables).itertuples()]
    return rows
