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

A kind that cannot be built for the dataset (it raises :class:`zslkit.errors.SideInfoUnavailable`: the
m21 ``table`` on a dataset without ``knowledge.csv``, ``attributes`` with tag groups the dataset lacks),
or that has no vector for a seen tag (an out-of-vocabulary word; a joint model trains on every seen
tag), is left out by stage 02 (:func:`prepare_sideinfo`), never silently: the reason is saved beside the
tables (``<kind>.unavailable.json``), printed by notebook 02, recorded in ``results.csv`` (metric
``skipped``), and the run's plan leaves out the models that would train on it
(:meth:`zslkit.plan.RunPlan.of_run`; the main model's kind is an error that says what to change).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from ...config import project_root
from ...errors import ParamError, SideInfoUnavailable
from ...io import write_json
from ...layout import DatasetLayout
from ...plan import base_kind, draw_names
from ...registry import SIDEINFO
from .attributes import attribute_table, openmic_fma_vectors, zscore_rows
from .glove import NEGATORS, WordVectors, tag_words, word_vector_table, word_vectors
from .random import random_table
from .sentence import sentence_table
from .table import Context, SideInfo, load_table

__all__ = ["Context", "SideInfo", "load_table", "build_tables", "equal_tables", "control_warnings",
           "prepare_sideinfo", "unavailable_notes",
           "text_vectors", "nearest_seen", "coverage_report", "results_rows", "attribute_table",
           "openmic_fma_vectors", "zscore_rows", "NEGATORS", "WordVectors", "tag_words",
           "word_vector_table", "word_vectors", "random_table", "sentence_table"]


def build_tables(ctx: Context, params: Mapping[str, Any], skip_unavailable: bool = False) -> dict[str, SideInfo]:
    """Every kind named in ``params['kinds']`` (the resolved ``sideinfo`` section), controls last;
    a kind with ``draws > 1`` also gives ``<kind>@<d>``, drawn with seed ``seed + d``.

    With ``skip_unavailable``, a kind that cannot be built for this dataset
    (:class:`~zslkit.errors.SideInfoUnavailable`) is left out and its reason kept in ``ctx.unavailable``;
    otherwise it raises."""
    kinds = list(params["kinds"])
    order = sorted(kinds, key=lambda k: SIDEINFO[k].control)
    names = []
    for kind in order:
        for d, name in enumerate(draw_names(kind, params)):
            p = params[kind] if d == 0 else {**params[kind], "seed": params[kind]["seed"] + d}
            try:
                table = SIDEINFO[kind].obj(ctx, p)
            except SideInfoUnavailable as exc:
                if not skip_unavailable:
                    raise
                ctx.unavailable[kind] = f"it cannot be built for this dataset: {exc}"
                names = [n for n in names if base_kind(n) != kind]  # a kind is built whole or not at all
                break
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


def prepare_sideinfo(ds, params: Mapping[str, Any], split, trained: Collection[str] = ()) -> dict[str, SideInfo]:
    """Build every kind in the ``sideinfo`` params and save it with the split
    (:meth:`zslkit.layout.DatasetLayout.sideinfo`).

    Kinds that count co-occurrence see A-train and B-train tracks only: no validation track and
    no C track contributes (B-Y evaluation, as in the paper, still covers B-train).

    A kind that cannot be built, or one of ``trained`` (the kinds the run trains joint models on:
    :meth:`zslkit.plan.RunPlan.sideinfo_kinds`) without a vector for a seen tag, is recorded as left out
    with its reason (module doc); a kind built but left out keeps its table.
    """
    row = {t: i for i, t in enumerate(ds.tracks.track_id)}
    train_rows = np.array(sorted(row[t] for t in set(split.tracks["A_train"]) | set(split.tracks["B_train"])),
                          dtype=int)
    ctx = Context(ds.tag_texts, ds.tags, ds.label_matrix(), train_rows, ds.root)
    tables = build_tables(ctx, params, skip_unavailable=True)
    unbuilt = set(ctx.unavailable)
    for name, table in tables.items():  # built, but no joint model can train on it
        kind, lacking = base_kind(name), [t for t, ok in zip(table.tags, table.present) if t in split.seen and not ok]
        if lacking and kind in trained and kind not in ctx.unavailable:
            ctx.unavailable[kind] = untrainable_reason(name, lacking, split)
    layout = DatasetLayout.at(ds.root)
    ctx.unavailable = {k: shown_paths(why, ds.root) for k, why in ctx.unavailable.items()}
    for kind, table in tables.items():
        table.save(layout.sideinfo(split.name, kind))
    for kind in params["kinds"]:  # what the run cannot train on is recorded, and no earlier table of it stays
        marker = layout.sideinfo_unavailable(split.name, kind)
        if kind in ctx.unavailable:
            if kind in unbuilt:
                for name in draw_names(kind, params):
                    layout.sideinfo(split.name, name).unlink(missing_ok=True)
            write_json(marker, {"kind": kind, "reason": ctx.unavailable[kind], "built": kind not in unbuilt})
        else:
            marker.unlink(missing_ok=True)
    return tables


def shown_paths(text: str, root: str | os.PathLike) -> str:
    """``text`` with the dataset folder ``root`` written as reports show it (relative to the project root, else
    its name): the reasons go to notebooks, ``results.csv`` and ``index.html``, which read the same anywhere."""
    root = Path(root)
    try:
        shown = root.resolve().relative_to(project_root().resolve()).as_posix()
    except ValueError:
        shown = root.name
    for form in dict.fromkeys([str(root.resolve()), str(root)]):
        text = text.replace(form, shown)
    return text


def untrainable_reason(kind: str, lacking: Sequence[str], split) -> str:
    """Why a joint model cannot train on side information ``kind``: seen tags without a vector (``lacking``),
    and the two ways out, the second as the exact ``split.unseen`` that makes them unseen tags."""
    unseen = [*split.unseen, *lacking]
    return (f"it has no vector for seen tag(s) {', '.join(repr(t) for t in lacking[:10])}"
            f"{' ...' if len(lacking) > 10 else ''}, and a joint model trains on every seen tag: give them "
            f"{kind!r} vectors, or make them unseen tags (split.unseen: [{', '.join(unseen)}])")


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


def unavailable_notes(unavailable: Mapping[str, str]) -> list[str]:
    """One sentence per kind the run leaves out (:func:`zslkit.plan.left_out_kinds`)."""
    return [f"side information {kind!r} is left out: {why}" for kind, why in unavailable.items()]


def results_rows(tables: Mapping[str, SideInfo], unavailable: Mapping[str, str] | None = None) -> list[dict]:
    """Per kind: dimension and number of tags without a vector, for ``results.csv``; per kind that could
    not be built or trained on (``unavailable``: kind -> reason), a row ``metric = "skipped"`` with the reason in
    ``test_setting``."""
    rows = [{"task": f"sideinfo {kind}", "metric": "skipped", "test_setting": why}
            for kind, why in (unavailable or {}).items()]
    for kind, t in tables.items():
        rows.append({"task": f"sideinfo {kind}", "metric": "dim", "value": t.dim})
        rows.append({"task": f"sideinfo {kind}", "metric": "n_tags_without_vector", "value": len(t.missing()),
                     "n": len(t.tags)})
    rows += [{"task": f"sideinfo {r.a} = {r.b}", "metric": "max_cosine_difference", "value": r.max_cosine_difference,
              "n": r.tags} for r in equal_tables(tables).itertuples()]
    return rows
