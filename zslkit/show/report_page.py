"""A run's ``index.html`` and offline HTML: what a run found, readable at a glance, with no network.

- :func:`verdict` says in words what the numbers say: which side information transfers to the unseen tags,
  each against the random control's spread over its draws and with the permutation test's p, and the best
  model; it opens ``index.html``.
- :func:`headline` condenses ``results.csv`` into the table a reader looks for first: per model and
  head, unseen-tag annotation (AUC-i) and retrieval (AUC-l) on (B+C)-Y with 95 % intervals, the
  permutation test, seen tags on B (B-X), the random control as its mean over draws, the classifier's
  seen-tag check, and the diagnostics' upper bound and side-audio correlation; on a dataset with held-out
  tracks (m21's held-out bank) the shift, AUC-l on held-out tracks minus the others for B-X and (B+C)-Y
  (:func:`shift_table` gives it whole, shown below the headline); for a transfer run
  the target's numbers and accuracy. Best model first; each model with its colour
  (:func:`zslkit.show.style.model_colour`, the same in every figure); every term linked to the page's
  glossary (:data:`GLOSSARY`, the same anchors as docs/evaluation.md's "Glossary").
- :func:`offline_notebook` and :func:`offline_html` remove what a page would fetch from the network
  (require.js and MathJax from a CDN, the widget manager), put one short note where interactive widgets
  were (headless runs make none: :func:`zslkit.run.session.headless`), title the page
  (:func:`page_title`: "zslkit · demo · 05 evaluate") and let wide tables scroll instead of wrapping.
- :func:`adaptations` lists what the run adapted to its data (small or odd data: docs/small_data.md),
  from ``results.csv``: side information that could not be built and the models left out
  with it, batches fitted to few tracks, maps skipped or coloured by another group, and a permutation test
  that cannot reject with so few unseen tags.
- :func:`write_index` writes ``index.html``: the verdict, the parameters in brief, what was adapted to the
  data, the headline, figure thumbnails with captions grouped by stage (:func:`figure_caption`) beside the
  interactive map pages, links to each notebook's HTML and to ``results.csv``, the glossary. Only
  relative links.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from .. import builtins  # noqa: F401  (registers the heads and side-information kinds the page tells apart)
from ..data.leakage import leakage_table
from ..io import write_text
from ..layout import DatasetLayout, RunLayout
from ..plan import SHIFT_PARTS, SOURCE_PEER, shift_setting_name
from ..registry import HEADS, SIDEINFO
from .real_check import real_check_lines, real_check_shown
from .style import format_p, parse, swatch

CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", re.I)
CDN_LINK = re.compile(r"<link[^>]*\bhref=[\"']https?://[^>]*>", re.I)
MATHJAX_CONFIG = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "<p><em>(Interactive in JupyterLab only: open the notebook there to use it.)</em></p>"
#: the exported pages' own style: a wide table scrolls in its output instead of wrapping its cells (an interval
#: stays on one line), a grouped table's heading sits close to it
REPORT_CSS = """<style id="zslkit-report-css">
.jp-OutputArea-output { overflow-x: auto; }
.jp-RenderedHTMLCommon table { table-layout: auto; margin-left: 0; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { white-space: nowrap; }
.jp-RenderedHTMLCommon h4.zslkit-group { margin: 1.2em 0 0.3em; }
.jp-RenderedHTMLCommon details.zslkit-group { margin: 0.3em 0; }
</style>"""


def page_title(run: str, page: str) -> str:
    """The title of a run's page: ``page_title("demo", "05_evaluate") == "zslkit · demo · 05 evaluate"``;
    the run's own index is ``page_title("demo", "")``."""
    return " · ".join(["zslkit", str(run)] + ([str(page).replace("_", " ")] if page else []))


def offline_notebook(nb, title: str | None = None):
    """An executed notebook (nbformat node) made for an offline page, in place: the widget views of a cell
    become one short note and the widget state goes (a page would fetch the widget manager from a CDN);
    ``title`` becomes the page's title."""
    for cell in nb.cells:
        outputs, noted = [], False
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                if noted:
                    continue  # one note per cell, not one per widget
                out["data"], noted = {"text/html": WIDGET_NOTE, "text/plain": "(interactive widget)"}, True
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    nb.metadata.pop("widgets", None)
    if title:
        nb.metadata["title"] = title
    return nb


def offline_html(page: str) -> str:
    """``page`` without the scripts and styles that nbconvert's template loads from a CDN (require.js,
    MathJax; the template loads mermaid only for diagrams, which the stage notebooks do not have), with
    :data:`REPORT_CSS`."""
    page = CDN_SCRIPT.sub("", page)
    page = CDN_LINK.sub("", page)
    page = MATHJAX_CONFIG.sub("", page)
    return page.replace("</head>", REPORT_CSS + "\n</head>", 1) if "</head>" in page else REPORT_CSS + page


def _cell(value: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    if pd.isna(value):
        return ""
    if lo is None or pd.isna(lo):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _p(value: float) -> str:
    return format_p(value)


def _order(auc_l, auc_i) -> tuple:
    """Sort key of a headline row: the higher (B+C)-Y AUC-l, then AUC-i, first; no unseen-tag score last."""
    values = [r.value if r is not None and pd.notna(r.value) else None for r in (auc_l, auc_i)]
    return tuple((v is None, -(v or 0.0)) for v in values)


def headline(results: pd.DataFrame, heads: bool = False) -> pd.DataFrame:
    """The run's main numbers, one row per model (module doc), the best on the unseen tags first (by (B+C)-Y
    AUC-l, then AUC-i; the classifier, which has no unseen-tag score, last; the supervised-source peer of
    ``evaluate.source_conse`` after all of them); empty when there is nothing to show.

    ``heads=False``: the paper's learned head, the controls as their mean over draws (with the range of the
    draws, which is not an interval) and the classifier; ``heads=True``: the other zero-shot heads."""
    ev = results[(results.stage == "05_evaluate") & (results.labels.fillna("annotation") == "annotation")]
    names = [n for n in HEADS.names() if n != "learned"]
    rows = []
    for model in dict.fromkeys(ev.model.dropna()):
        base = model.split(",")[0]
        is_head = any(base.endswith(" " + n) for n in names)
        single_draw = "@" in base or (ev[(ev.model.str.startswith(base + ", ")) & (ev.model != model)].shape[0] > 0
                                      and not model.endswith(" draws"))
        if is_head != heads or single_draw:
            continue
        m = ev[ev.model == model]

        def pick(setting, metric, task=None):
            q = m[(m.test_setting == setting) & (m.metric == metric)]
            q = q[q.task == task] if task else q
            return q.iloc[0] if len(q) else None

        over_draws = model.endswith(" draws")
        auc_i = pick("(B+C)-Y", "AUC-i mean" if over_draws else "AUC-i")
        auc_l = pick("(B+C)-Y", "AUC-l mean" if over_draws else "AUC-l")
        bx = pick("B-X", "AUC-l mean" if over_draws else "AUC-l")
        perm = pick("(B+C)-Y", "permutation p-value (H1: own > permuted)")
        shift = {s: pick(shift_setting_name(s, SHIFT_PARTS[2]), "AUC-l", "shift") for s in ("B-X", "(B+C)-Y")}
        probe = pick("(B+C)-Y half", "upper bound AUC-l, linear probe")
        rho = pick("tag pairs", "side-audio Spearman, seen-unseen pairs")
        if all(r is None for r in (auc_i, auc_l, bx)):
            continue
        if over_draws:  # the spread over draws, not an interval
            def spread(setting, metric, mean):
                lo, hi = pick(setting, f"{metric} min"), pick(setting, f"{metric} max")
                return (f"{mean.value:.3f} (draws {lo.value:.3f}–{hi.value:.3f})" if mean is not None and lo is not None
                        and hi is not None else "")
            rows.append({"model": model, "(B+C)-Y AUC-i": spread("(B+C)-Y", "AUC-i", auc_i),
                         "(B+C)-Y AUC-l": spread("(B+C)-Y", "AUC-l", auc_l), "B-X AUC-l": spread("B-X", "AUC-l", bx),
                         "_order": (False, *_order(auc_l, auc_i))})
            continue
        rows.append({"model": model,
                     "(B+C)-Y AUC-i": _cell(auc_i.value, auc_i.ci_low, auc_i.ci_high) if auc_i is not None else "",
                     "(B+C)-Y AUC-l": _cell(auc_l.value, auc_l.ci_low, auc_l.ci_high) if auc_l is not None else "",
                     "permutation p": _p(perm.value) if perm is not None else "",
                     "B-X AUC-l": _cell(bx.value, bx.ci_low, bx.ci_high) if bx is not None else "",
                     **{f"{s} AUC-l {SHIFT_PARTS[2]}": _cell(d.value, d.ci_low, d.ci_high) if d is not None
                        else "" for s, d in shift.items()},
                     "upper bound (probe)": _cell(probe.value) if probe is not None else "",
                     "side-audio ρ": _cell(rho.value) if rho is not None else "",
                     # the supervised-source peer after the run's models: no model of the run, and its number on all
                     # unseen tags counts those its source was taught (section "Leakage")
                     "_order": (model.startswith(SOURCE_PEER), *_order(auc_l, auc_i))})
    rows.sort(key=lambda r: r["_order"])  # best first; a stable sort keeps the run's order among equals
    for r in rows:
        del r["_order"]
    tr = results[results.stage == "07_transfer"]
    for model in dict.fromkeys(tr.model.dropna()):
        for setting in ("target-T", "target-T unseen by source"):
            m = tr[(tr.model == model) & (tr.test_setting == setting)]
            if not len(m):
                continue
            get = {r.metric: r for r in m.itertuples()}
            row = {"model": f"{model}, {setting}"}
            for metric in ("AUC-i", "AUC-l", "accuracy"):
                if metric in get:
                    r = get[metric]
                    row[metric] = _cell(r.value, r.ci_low, r.ci_high)
            if "permutation p-value (H1: own > permuted)" in get:
                row["permutation p"] = _p(get["permutation p-value (H1: own > permuted)"].value)
            rows.append(row)
        for r in tr[(tr.model == model) & (tr.metric == "skipped")].itertuples():  # the reason is in test_setting
            rows.append({"model": model, "skipped": str(r.test_setting)})
    out = pd.DataFrame(rows).fillna("")
    return out.loc[:, (out != "").any()] if len(out) else out


#: how the verdict names a side-information kind
KIND_NAMES = {"glove": "GloVe word vectors", "table": "the knowledge table", "sentence": "sentence vectors",
              "attributes": "attribute vectors", "original": "the original side information",
              "random": "random vectors"}
PERMUTATION_P = "permutation p-value (H1: own > permuted)"


def _kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, f"'{kind}'")


def _row(ev: pd.DataFrame, model: str, setting: str, metric: str):
    q = ev[(ev.model == model) & (ev.test_setting == setting) & (ev.metric == metric)]
    return q.iloc[0] if len(q) else None


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f} (one draw: one sample)"
    return f"{min(values):.3f}–{max(values):.3f} over {len(values)} draws"


def verdict(results: pd.DataFrame, params: Mapping[str, Any] | None = None) -> list[str]:
    """What the run's numbers say, in words, one sentence per side-information kind (best first), then the
    best model of all: does each kind's side information transfer to the unseen tags?

    A kind **transfers** when, for its model with the paper's learned head on (B+C)-Y, the permutation
    test rejects (p < 0.05: each unseen tag's own side information ranks its tracks better than the other
    tags' do) and the lower end of its AUC-l interval lies above every draw of the random control; **transfers
    weakly** when only one of the two holds; **does not transfer** when neither does. Without a control the
    comparison is with chance (0.5). Annotation (AUC-i) is said beside it, against the same control.

    Parameters
    ----------
    results : pd.DataFrame
        The run's ``results.csv`` (stage 05 rows are read; the dataset's own labels).
    params : mapping, optional
        Its ``params.yaml``: ``train.controls`` names the control kinds (default: the registered controls).

    Returns
    -------
    list of str
        Plain sentences (no markup); empty when the run has no stage-05 result yet.
    """
    ev = results[(results.stage.astype(str) == "05_evaluate") & (results.labels.fillna("annotation") == "annotation")]
    if ev.empty:
        return []
    controls = set(((params or {}).get("train") or {}).get("controls") or SIDEINFO.names(control=True))
    models = list(dict.fromkeys(ev.model.dropna()))
    parsed = {m: parse(m) for m in models}
    auc = {m: _row(ev, m, "(B+C)-Y", "AUC-l") for m in models}
    auc = {m: r if r is not None and pd.notna(r.value) else None for m, r in auc.items()}  # a defined AUC-l only
    learned = [m for m in models if parsed[m][0] is not None and parsed[m][2] == "learned" and "," not in m]
    main = [m for m in learned if parsed[m][0] not in controls and parsed[m][1] == 0 and auc[m] is not None]
    draws = {c: [m for m in learned if parsed[m][0] == c and auc[m] is not None] for c in sorted(controls)}
    draws = {c: ms for c, ms in draws.items() if ms}
    control = next(iter(draws), None)
    ctrl_l = [auc[m].value for m in draws.get(control, [])]
    ctrl_i = [r.value for m in draws.get(control, []) for r in [_row(ev, m, "(B+C)-Y", "AUC-i")] if r is not None]
    against = f"the {control} control ({_spread(ctrl_l)})" if ctrl_l else "chance (0.5; this run has no control)"
    ceiling = max(ctrl_l) if ctrl_l else 0.5
    out = []
    for m in sorted(main, key=lambda m: -auc[m].value):
        kind, r = parsed[m][0], auc[m]
        perm = _row(ev, m, "(B+C)-Y", PERMUTATION_P)
        floor = _row(ev, m, "(B+C)-Y", "smallest attainable p-value")
        rejects = perm is not None and perm.value < 0.05
        clear = pd.notna(r.ci_low) and r.ci_low > ceiling
        word = "transfers" if rejects and clear else "transfers weakly" if rejects or clear else "does not transfer"
        interval = f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if pd.notna(r.ci_low) else ""
        if clear:
            where = f"its interval above {against}"
        elif r.value > ceiling:
            where = f"above {against}" + (", but its interval reaches down to it" if interval else "")
        else:
            where = f"not above {against}"
        text = (f"Side information {kind} ({_kind_name(kind)}, model '{m}') {word} to the unseen tags: "
                f"(B+C)-Y AUC-l {r.value:.3f}{interval}, {where}")
        if perm is not None:
            text += (f"; permutation p = {format_p(perm.value)}: each tag's own side information ranks its tracks "
                     f"{'better than' if rejects else 'no better than'} the other tags' side information does")
            if floor is not None and floor.value > 0.05:
                few = f"{int(floor.n)} unseen tags" if pd.notna(floor.n) else "so few unseen tags"
                text += f" (with {few} the test cannot give p below {format_p(floor.value)})"
        ai = _row(ev, m, "(B+C)-Y", "AUC-i")
        if ai is not None and ctrl_i:
            lo, hi = min(ctrl_i), max(ctrl_i)
            place = "above" if ai.value > hi else "below" if ai.value < lo else "within"
            text += (f". Annotation: AUC-i {ai.value:.3f}, {place} the control's "
                     + (f"{lo:.3f}–{hi:.3f}" if hi > lo else f"{hi:.3f}"))
        elif ai is not None:
            text += f". Annotation: AUC-i {ai.value:.3f}"
        out.append(text + ".")
    scored = [m for m in models if auc[m] is not None and parsed[m][0] is not None and parsed[m][0] not in controls
              and "," not in m]
    if scored:
        best = max(scored, key=lambda m: auc[m].value)
        r = auc[best]
        interval = f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if pd.notna(r.ci_low) else ""
        out.append(f"Best model on the unseen tags: {best}, (B+C)-Y AUC-l {r.value:.3f}{interval}"
                   + (f" (head {parsed[best][2]})" if parsed[best][2] != "learned" else "") + ".")
    return out


def shift_table(results: pd.DataFrame) -> pd.DataFrame:
    """The shift (stage 05, ``task = "shift"``): B-X and (B+C)-Y on held-out tracks and on the others.

    Parameters
    ----------
    results : pd.DataFrame
        Rows of ``results.csv``.

    Returns
    -------
    pd.DataFrame
        One row per (model, test setting, metric): ``held-out``, ``others`` and ``held-out minus others``
        as ``"value [ci_low, ci_high]"`` (the difference paired by tag for AUC-l, of two samples of
        tracks for AUC-i), ``n held-out`` and ``n others`` (tags for AUC-l, tracks for AUC-i). Empty
        when the run has no shift rows (its dataset marks no held-out track).
    """
    shift = results[(results.task == "shift") & (results.labels.fillna("annotation") == "annotation")]
    if "stage" in shift.columns:
        shift = shift[shift.stage == "05_evaluate"]
    if shift.empty:
        return pd.DataFrame()
    rows = {}
    for r in shift.itertuples():
        part = next(p for p in SHIFT_PARTS[::-1] if r.test_setting.endswith(shift_setting_name("", p)))
        test = r.test_setting[:-len(part) - 1]
        row = rows.setdefault((r.model, test, r.metric), {"model": r.model, "test": test, "metric": r.metric})
        row[part] = _cell(r.value, r.ci_low, r.ci_high)
        if part != SHIFT_PARTS[2]:
            row[f"n {part}"] = int(r.n) if pd.notna(r.n) else None
    return pd.DataFrame(list(rows.values()), columns=["model", "test", "metric", *SHIFT_PARTS,
                                                      *(f"n {p}" for p in SHIFT_PARTS[:2])])


def params_brief(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The parameters a reader needs to place the run, as (label, value) pairs. A transfer run (``transfer.source``
    set) trains nothing: its brief names the target, the source run and the models applied, not the split, model
    and training keys its own parameter file holds at their defaults."""
    d, s, m, t = (params.get(k, {}) for k in ("data", "split", "model", "train"))
    tr = params.get("transfer") or {}
    if tr.get("source"):
        return [("target dataset", f"{d.get('name')} (source {d.get('source')})"),
                ("source run", Path(str(tr["source"])).name),
                ("models applied", ", ".join(tr.get("models") or [])
                 + (f"; each also with {', '.join(a for a in tr.get('adapt') or [] if a != 'none')}"
                    if any(a != "none" for a in tr.get("adapt") or []) else ""))]
    side = [m.get("sideinfo")] + list(t.get("also") or [])
    return [("dataset", f"{d.get('name')} (source {d.get('source')})"),
            ("tag split", f"{s.get('name')}: {s.get('ratio')} seen, seed {s.get('seed')}"),
            ("side information", ", ".join(str(k) for k in side if k)),
            ("controls", ", ".join(t.get("controls") or []) or "none"),
            ("model", f"{m.get('encoder')} encoder; setting {t.get('setting')}, {t.get('loss')} loss, "
                      f"{t.get('optimizer')}, up to {t.get('max_epochs')} epochs"),
            ("augmentation", augment_note(t.get("augment"))),
            ("heads", ", ".join((params.get("evaluate") or {}).get("heads") or []))] + [
            ("rendering", note) for note in [_render_note(params)] if note]


def augment_note(augment: Any) -> str:
    """``train.augment`` in words: each augmentation with its parameters, in the list's order; "none" for ``[]``.

    >>> augment_note([{"name": "specaugment", "time_width": 40}, "gain"])
    'specaugment (time_width 40), gain'
    """
    parts = []
    for item in augment or []:
        if isinstance(item, str):
            parts.append(item)
            continue
        args = ", ".join(f"{k} {v}" for k, v in item.items() if k != "name")
        parts.append(f"{item.get('name')} ({args})" if args else str(item.get("name")))
    return ", ".join(parts) or "none"


def _render_note(params: Mapping[str, Any]) -> str | None:
    """How a rendered dataset was made, from its ``dataset.json`` (m21: the timbre banks used, missing and
    held out, the performance and production); None when there is no such note."""
    try:
        meta = json.loads(DatasetLayout.from_params(params).meta.read_text())
    except (KeyError, TypeError, OSError, ValueError):
        return None
    return meta.get("render") if isinstance(meta, dict) else None


def adaptations(results: pd.DataFrame, params: Mapping[str, Any]) -> list[str]:
    """What a run adapted to its data, one sentence each, from its ``results.csv`` rows (module doc).

    Parameters
    ----------
    results : pd.DataFrame
        The run's ``results.csv``.
    params : mapping
        Its ``params.yaml`` (``train.batch_size``).
    """
    out = []
    stage = results.stage.astype(str)
    skipped = results[(results.metric == "skipped") & stage.str[:2].isin(["02", "03", "04"])]
    for st, r in zip(stage[skipped.index], skipped.itertuples()):
        what = {"02": f"side information '{str(r.task).removeprefix('sideinfo ')}' not built",
                "03": f"model '{r.model}' not trained", "04": "maps skipped"}[st[:2]]
        out.append(f"{what}: {r.test_setting}")
    for r in results[(results.metric == "color_group") & stage.str.startswith("04")].itertuples():
        out.append(str(r.test_setting))
    asked = ((params or {}).get("train") or {}).get("batch_size")
    batch = results[(results.metric == "batch_size") & stage.str.startswith("03")]
    if asked is not None and len(batch):
        fitted = batch[pd.to_numeric(batch.value, errors="coerce") < asked]
        for value, rows in fitted.groupby("value", sort=True):
            out.append(f"train.batch_size {asked} is more than the training tracks: batches of {int(value)} "
                       f"({', '.join(rows.model.astype(str))})")
    perm = results[(results.metric == "smallest attainable p-value") & stage.str.startswith("05")]
    for (value, n), _ in (perm.groupby(["value", "n"], sort=True) if len(perm) else ()):
        if value > 0.05:
            out.append(f"permutation test on (B+C)-Y: with {int(n)} unseen tags the smallest p it can give is "
                       f"{value:.3g}, so it cannot reject at 5 %")
    return out


#: the terms of the report, each with its anchor (the same in docs/evaluation.md's "Glossary") and a definition
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    ("x-y", "X, Y", "the seen tags (X: the model is trained on them) and the unseen tags (Y: no trace of them, "
                    "not even their side information, reaches training)."),
    ("a-b-c", "A, B, C", "the tracks: A has only seen tags, B seen and unseen ones, C only unseen ones; a "
                         "setting 'tracks-labels' scores a track set on a label set."),
    ("bc-y", "(B+C)-Y", "the zero-shot test: the tracks of B and C scored on the unseen tags Y only."),
    ("b-x", "B-X", "the seen tags on the tracks of B: what the model learnt of the tags it was trained on, on "
                   "tracks an A-X model never heard."),
    ("auc-i", "AUC-i", "annotation, instance-wise: for each track, ROC-AUC of the ranking of the candidate tags; "
                       "the mean over tracks (0.5 is chance)."),
    ("auc-l", "AUC-l", "retrieval, label-wise: for each tag, ROC-AUC of the ranking of the tracks; the mean over "
                       "tags (0.5 is chance)."),
    ("interval", "[low, high]", "a 95 % percentile bootstrap interval, over tracks (-i) or over tags (-l)."),
    ("random-control", "random control", "the same model and training on random side information, one per draw "
                                         "(sideinfo.random.draws): what chance looks like here. Shown as the mean "
                                         "over its draws with their range, which is not an interval."),
    ("permutation-p", "permutation p", "the permutation test of tag-specific transfer: the unseen tags' side "
                                       "information is shuffled among them; p is the share of shuffles that do as "
                                       "well as each tag's own (small: the side information carries the tags)."),
    ("upper-bound", "upper bound", "a linear probe per unseen tag fitted on half of B+C with the unseen labels "
                                   "and scored (AUC-l) on the other half: how well the audio embeddings can tell "
                                   "the unseen tags apart at all."),
    ("side-audio-rho", "side-audio ρ", "Spearman correlation between tag-tag similarities in side-information "
                                       "space and in audio space, over seen-unseen pairs: does the side "
                                       "information point where the audio is?"),
    ("heads", "heads", "the zero-shot heads that turn side information into scores on the same embeddings: the "
                       "paper's learned tag branch, ConSE, a ridge map, ESZSL."),
    ("supervised-source", "supervised-source conse", "musicnn's own tag probabilities mixed through the side "
                                                     "information of its tag names (evaluate.source_conse): a peer "
                                                     "trained on real recordings elsewhere, not zero-shot on the tags "
                                                     "it was taught (read its non-leaky rows)."),
    ("held-out", "held-out minus others", "the shift: AUC on the tracks the dataset holds out of training minus "
                                          "the other unheard tracks (paired by tag for AUC-l)."),
)
#: text in the page that links to a glossary entry, longest first
_TERMS = sorted([("(B+C)-Y", "bc-y"), ("B-X", "b-x"), ("AUC-i", "auc-i"), ("AUC-l", "auc-l"),
                 ("permutation p", "permutation-p"), ("upper bound", "upper-bound"), ("side-audio ρ", "side-audio-rho"),
                 ("random control", "random-control"), ("held-out minus others", "held-out"), ("heads", "heads"),
                 ("supervised-source conse", "supervised-source")],
                key=lambda t: -len(t[0]))
_TERM_RE = re.compile("|".join(re.escape(html.escape(t)) for t, _ in _TERMS))
_ANCHOR = {html.escape(t): a for t, a in _TERMS}


def linked(text: str) -> str:
    """``text`` escaped for HTML, each term of :data:`GLOSSARY` in it a link to its entry (``#auc-l``)."""
    return _TERM_RE.sub(lambda m: f'<a class="term" href="#{_ANCHOR[m.group(0)]}">{m.group(0)}</a>',
                        html.escape(str(text)))


def glossary_html() -> str:
    """The glossary as an HTML definition list (anchors as :data:`GLOSSARY`)."""
    return "<dl class='glossary'>" + "".join(f"<dt id='{a}'>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>"
                                             for a, t, d in GLOSSARY) + "</dl>"


def table_html(table: pd.DataFrame) -> str:
    """A headline table: headers with their terms linked (:func:`linked`), each model with its colour."""
    head = "".join(f"<th>{linked(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{swatch(v) if c == 'model' else ''}{html.escape(str(v))}</td>"
                                    for c, v in zip(table.columns, row)) + "</tr>" for row in table.values)
    return f"<table class='headline'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STAGES = {"01": "01 · Preprocess", "02": "02 · Splits and side information", "03": "03 · Train",
          "04": "04 · Embeddings and maps", "05": "05 · Evaluate", "06": "06 · Compare runs", "07": "07 · Transfer"}
_CAPTIONS = (
    (r"01_tag_counts", "Positive tracks per tag, one panel per tag group"),
    (r"01_split_shares", "A/B/C shares of the tracks under five tag-split seeds"),
    (r"01_examples", "Log-mel spectrograms of example tracks, segments dotted"),
    (r"02_similarity_(?P<kind>.+)", "Tag-to-tag cosine similarity of the {kind} side information (unseen tags red, *)"),
    (r"03_curves", "Training: loss, learning rate and seconds per epoch, one colour per model"),
    (r"04_side_vs_learned", "The tag map before training (side information) and after (learned tag space)"),
    (r"04_tag_space", "The learned tag space of the main model (UMAP)"),
    (r"04_joint_space", "Tracks and tags in the main model's joint space (UMAP)"),
    (r"04_maps", "Interactive maps: every model's tag maps, linked, and the joint map with audio"),
    (r"05_per_tag_auc", "Per-tag AUC-l on B+C by group, seen and unseen tags, the main model"),
    (r"05_per_tag_auc_(?P<model>.+)", "Per-tag AUC-l on B+C by group, {model}"),
    (r"06_(?P<metric>AUC-[il]|[^_]+)_(?P<test>.+)", "{metric} on {test} across the compared runs (mean, sd over "
                                                     "seeds and over splits)"),
)


def _setting(name: str) -> str:
    """A test setting from a figure's file name: ``BpC-XpY`` -> ``(B+C)-(X+Y)``."""
    return "-".join(f"({p})" if "+" in p else p for p in name.replace("p", "+").split("-"))


def figure_caption(stem: str) -> str:
    """A figure's caption from its file name (``02_similarity_glove`` -> "Tag-to-tag cosine similarity of the
    glove side information ..."); the name in words for a figure of no known kind."""
    for pattern, caption in _CAPTIONS:
        m = re.fullmatch(pattern, stem)
        if m:
            parts = m.groupdict()
            if "model" in parts:
                parts["model"] = parts["model"].replace("_", " ")
            if "test" in parts:
                parts["test"] = _setting(parts["test"])
            return caption.format(**parts)
    return stem.replace("_", " ")


def figures_html(run: RunLayout) -> str:
    """The run's figures as captioned thumbnails and its interactive pages as links, grouped by stage."""
    out = []
    files = sorted(run.figures.glob("*.png")) + sorted(run.figures.glob("*.html"))
    for stage in sorted({p.name[:2] for p in files}):
        items = []
        for p in sorted((f for f in files if f.name[:2] == stage), key=lambda f: (f.suffix != ".html", f.name)):
            caption = html.escape(figure_caption(p.stem))
            if p.suffix == ".html":
                items.append(f'<figure class="page"><a href="figures/{p.name}">{html.escape(p.name)}</a>'
                             f"<figcaption>{caption} (interactive, works offline)</figcaption></figure>")
            else:
                items.append(f'<figure><a href="figures/{p.name}"><img src="figures/{p.name}" alt="{caption}" '
                             f'loading="lazy"></a><figcaption>{linked(figure_caption(p.stem))}</figcaption></figure>')
        out.append(f"<h3>{html.escape(STAGES.get(stage, stage))}</h3><div class='thumbs'>{''.join(items)}</div>")
    return "".join(out)


STYLE = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse}th,td{padding:4px 10px;text-align:left;border-bottom:1px solid #ddd}"
         "table.headline th,table.headline td{white-space:nowrap}.scroll{overflow-x:auto}"
         "a.term{color:inherit;text-decoration:underline dotted}"
         ".verdict{background:#f4f7fb;border-left:4px solid #0f55bd;padding:0.6em 1.2em;margin:1em 0}"
         ".verdict li{margin:0.4em 0}"
         ".thumbs{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:250px}"
         "figure img{width:250px;height:170px;object-fit:contain;border:1px solid #ccc;background:#fff}"
         "figcaption{font-size:0.85em;color:#444}figure.page{border:1px solid #ccc;padding:8px;width:232px}"
         "dl.glossary dt{font-weight:bold;margin-top:0.5em}dl.glossary dd{margin-left:1.5em}"
         "dl.glossary dt:target{background:#ffef9e}")


def leakage_html(results: pd.DataFrame) -> str:
    """A frozen backbone's leakage on the page: the warnings that the run's dataset is (or overlaps) the corpus the
    backbone was trained on, the unseen tags it was supervised on, and the unseen-tag headline on all unseen tags
    and on the non-leaky ones (:func:`zslkit.data.leakage.leakage_table`); empty for a run without any."""
    rows = results[results.task == "leakage"]
    warnings = list(dict.fromkeys(rows.test_setting[rows.metric == "warning"].dropna()))
    leaky = list(dict.fromkeys(rows.test_setting[rows.metric == "leaky unseen tag"].dropna()))
    table = leakage_table(results[results.stage.astype(str) == "05_evaluate"])
    if not warnings and not leaky and table.empty:
        return ""
    out = "<h3>Leakage</h3>" + "".join(f"<p class='warning'><b>Warning:</b> {html.escape(str(w))}</p>"
                                       for w in warnings)
    if leaky:
        out += (f"<p>Unseen tags the backbone was supervised on (leaky; their numbers are not zero-shot): "
                f"{html.escape(', '.join(map(str, leaky)))}. Every unseen-tag setting is scored again without them "
                f"(\"non-leaky\", docs/evaluation.md).</p>")
    if not table.empty:
        shown = table.copy()
        for c in shown.columns[2:]:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        out += f"<div class='scroll'>{table_html(shown)}</div>"
    return out


def write_index(folder: str | Path) -> Path:
    """``index.html`` of a run folder (module doc)."""
    run = RunLayout.at(folder)
    folder = run.root
    params = yaml.safe_load(run.params.read_text()) if run.params.is_file() else {}
    notebooks = "".join(f'<li><a href="html/{p.name}">{html.escape(p.stem.replace("_", " "))}</a> '
                        f'(<a href="{p.stem}.ipynb">ipynb</a>)</li>' for p in sorted(run.html.glob("*.html")))
    brief = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in params_brief(params)) if params else ""
    table = "<p>No evaluation in this run yet.</p>"
    n_rows, adapted, said = 0, "", []
    if run.results.is_file():
        results = pd.read_csv(run.results, dtype={"stage": str})
        n_rows = len(results)
        said = verdict(results, params) + real_check_lines(folder)
        notes = adaptations(results, params)
        if notes:
            adapted = ("<h2>Adapted to the data</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                       + "</ul>")
        head, others = headline(results), headline(results, heads=True)
        if len(head):
            table = f"<div class='scroll'>{table_html(head)}</div>"
        if len(others):
            table += (f"<h3>The other zero-shot {linked('heads')}</h3>"
                      f"<div class='scroll'>{table_html(others)}</div>")
        shift = shift_table(results)
        if len(shift):
            table += ("<h3>The held-out condition</h3><p>Tracks the dataset holds out of training (m21: rendered "
                      "with the held-out General-MIDI bank) against the other unheard tracks; the difference is "
                      "paired by tag for AUC-l (docs/evaluation.md, \"The shift\").</p>"
                      f"<div class='scroll'>{table_html(shift)}</div>")
        table += leakage_html(results)
    real = real_check_shown(folder)
    if len(real):
        table += ("<h3>On real recordings</h3><p>The run's models on recorded music whose tags its packages prove "
                  "(run.real_check; docs/transfer.md, \"Real recordings\"): AUC-l on the tags the run saw, on the "
                  "instrument tags, on the tags it never saw, and by tag group; a group whose interval holds 0.5 is "
                  "at chance. <a href='real/index.html'>The check's own page</a>.</p>"
                  f"<div class='scroll'>{table_html(real)}</div>")
    verdict_html = ("<div class='verdict'><h2>Verdict</h2><ul>" + "".join(f"<li>{linked(v)}</li>" for v in said)
                    + "</ul><p><small>Transfers: the permutation test rejects (p &lt; 0.05) and the AUC-l "
                      "interval lies above every draw of the random control; weakly: one of the two; the "
                      "terms are defined in the <a href='#glossary'>glossary</a>.</small></p></div>") if said else ""
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(page_title(folder.name, ''))}</title>"
            f"<style>{STYLE}</style></head><body><h1>zslkit run {html.escape(folder.name)}</h1>"
            f"{verdict_html}<table>{brief}</table>{adapted}"
            f"<h2>Headline</h2><p>Best first. {linked('(B+C)-Y')}: the unseen tags on the tracks of B and C; "
            f"{linked('B-X')}: the seen tags on B; 95 % bootstrap intervals in brackets; the "
            f"{linked('random control')} as its mean over draws with their range (not an interval); each model in "
            f"the colour it has in every figure.</p>{table}"
            f"<p><a href='results.csv'>results.csv</a> ({n_rows} rows, every number of the run) · "
            f"<a href='params.yaml'>params.yaml</a> · <a href='env.json'>env.json</a></p>"
            f"<h2>Figures</h2>{figures_html(run)}"
            f"<h2>Notebooks</h2><ul>{notebooks}</ul>"
            f"<h2 id='glossary'>Glossary</h2><p>As in docs/evaluation.md (\"Glossary\"), which defines every "
            f"setting, metric and test at length.</p>{glossary_html()}"
            f"</body></html>")
    write_text(run.index, page)
    return run.index
