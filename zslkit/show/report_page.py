"""A run's ``index.html`` and offline HTML: what a run found, readable at a glance, with no network.

- :func:`headline` condenses ``results.csv`` into the table a reader looks for first: per model and
  head, unseen-tag annotation (AUC-i) and retrieval (AUC-l) on (B+C)-Y with 95 % intervals, the
  permutation test, seen tags on B (B-X), the random control as its mean over draws, the classifier's
  seen-tag check, and the diagnostics' upper bound and side-audio correlation; on a dataset with held-out
  tracks (m21's held-out bank) the shift, AUC-l on held-out tracks minus the others for B-X and (B+C)-Y
  (:func:`shift_table` gives it whole, shown below the headline); for a transfer run
  the target's numbers and accuracy.
- :func:`offline_notebook` and :func:`offline_html` remove what a page would fetch from the network
  (require.js and MathJax from a CDN, the widget manager) and put a note where an interactive widget
  was.
- :func:`adaptations` lists what the run adapted to its data (small or odd data: docs/small_data.md),
  from ``results.csv``: side information that could not be built and the models left out
  with it, batches fitted to few tracks, maps skipped or coloured by another group, and a permutation test
  that cannot reject with so few unseen tags.
- :func:`write_index` writes ``index.html``: the parameters in brief, what was adapted to the data, the
  headline, figure thumbnails, links to the interactive map pages, to each notebook's HTML and to
  ``results.csv``. Only relative links.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from ..io import write_text
from ..layout import DatasetLayout, RunLayout
from ..plan import SHIFT_PARTS, shift_setting_name
from ..registry import HEADS

CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", re.I)
CDN_LINK = re.compile(r"<link[^>]*\bhref=[\"']https?://[^>]*>", re.I)
MATHJAX_CONFIG = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("<p><em>(An interactive widget was here. Open the notebook in JupyterLab to use it; "
               "the static figures are above.)</em></p>")


def offline_notebook(nb):
    """An executed notebook (nbformat node) made for an offline page, in place: each widget view becomes
    a short note and the widget state goes (a page would fetch the widget manager from a CDN)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME in data:
                out["data"] = {"text/html": WIDGET_NOTE, "text/plain": "(interactive widget)"}
    nb.metadata.pop("widgets", None)
    return nb


def offline_html(page: str) -> str:
    """``page`` without the scripts and styles that nbconvert's template loads from a CDN (require.js,
    MathJax; the template loads mermaid only for diagrams, which the stage notebooks do not have)."""
    page = CDN_SCRIPT.sub("", page)
    page = CDN_LINK.sub("", page)
    return MATHJAX_CONFIG.sub("", page)


def _cell(value: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    if pd.isna(value):
        return ""
    if lo is None or pd.isna(lo):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _p(value: float) -> str:
    return "" if pd.isna(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def headline(results: pd.DataFrame, heads: bool = False) -> pd.DataFrame:
    """The run's main numbers, one row per model (module doc); empty when there is nothing to show.

    ``heads=False``: the paper's learned head, the controls as their mean over draws and the
    classifier; ``heads=True``: the other zero-shot heads."""
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
                         "(B+C)-Y AUC-l": spread("(B+C)-Y", "AUC-l", auc_l), "B-X AUC-l": spread("B-X", "AUC-l", bx)})
            continue
        rows.append({"model": model,
                     "(B+C)-Y AUC-i": _cell(auc_i.value, auc_i.ci_low, auc_i.ci_high) if auc_i is not None else "",
                     "(B+C)-Y AUC-l": _cell(auc_l.value, auc_l.ci_low, auc_l.ci_high) if auc_l is not None else "",
                     "permutation p": _p(perm.value) if perm is not None else "",
                     "B-X AUC-l": _cell(bx.value, bx.ci_low, bx.ci_high) if bx is not None else "",
                     **{f"{s} AUC-l {SHIFT_PARTS[2]}": _cell(d.value, d.ci_low, d.ci_high) if d is not None
                        else "" for s, d in shift.items()},
                     "upper bound (probe)": _cell(probe.value) if probe is not None else "",
                     "side-audio ρ": _cell(rho.value) if rho is not None else ""})
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
    """The parameters a reader needs to place the run, as (label, value) pairs."""
    d, s, m, t = (params.get(k, {}) for k in ("data", "split", "model", "train"))
    side = [m.get("sideinfo")] + list(t.get("also") or [])
    return [("dataset", f"{d.get('name')} (source {d.get('source')})"),
            ("tag split", f"{s.get('name')}: {s.get('ratio')} seen, seed {s.get('seed')}"),
            ("side information", ", ".join(str(k) for k in side if k)),
            ("controls", ", ".join(t.get("controls") or []) or "none"),
            ("model", f"{m.get('encoder')} encoder; setting {t.get('setting')}, {t.get('loss')} loss, "
                      f"{t.get('optimizer')}, up to {t.get('max_epochs')} epochs"),
            ("heads", ", ".join((params.get("evaluate") or {}).get("heads") or []))] + [
            ("rendering", note) for note in [_render_note(params)] if note]


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


def write_index(folder: str | Path) -> Path:
    """``index.html`` of a run folder (module doc)."""
    run = RunLayout.at(folder)
    folder = run.root
    params = yaml.safe_load(run.params.read_text()) if run.params.is_file() else {}
    notebooks = "".join(f'<li><a href="html/{p.name}">{html.escape(p.stem)}</a> (<a href="{p.stem}.ipynb">ipynb</a>)'
                        f"</li>" for p in sorted(run.html.glob("*.html")))
    figures = sorted(run.figures.glob("*.png"))
    pages = "".join(f'<li><a href="figures/{p.name}">{html.escape(p.stem)}</a> (interactive, works offline)</li>'
                    for p in sorted(run.figures.glob("*.html")))
    thumbs = "".join(f'<a href="figures/{p.name}" title="{html.escape(p.stem)}"><img src="figures/{p.name}" '
                     f'alt="{html.escape(p.stem)}" loading="lazy"></a>' for p in figures)
    brief = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in params_brief(params)) if params else ""
    table = "<p>No evaluation in this run yet.</p>"
    n_rows, adapted = 0, ""
    if run.results.is_file():
        results = pd.read_csv(run.results, dtype={"stage": str})
        n_rows = len(results)
        notes = adaptations(results, params)
        if notes:
            adapted = ("<h2>Adapted to the data</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                       + "</ul>")
        head, others = headline(results), headline(results, heads=True)
        if len(head):
            table = head.to_html(index=False, escape=True, classes="headline", border=0)
        if len(others):
            table += ("<h3>The other zero-shot heads</h3>"
                      + others.to_html(index=False, escape=True, classes="headline", border=0))
        shift = shift_table(results)
        if len(shift):
            table += ("<h3>The held-out condition</h3><p>Tracks the dataset holds out of training (m21: rendered "
                      "with the held-out General-MIDI bank) against the other unheard tracks; the difference is "
                      "paired by tag for AUC-l (docs/evaluation.md, \"The shift\").</p>"
                      + shift.to_html(index=False, escape=True, classes="headline", border=0))
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse}th,td{padding:4px 10px;text-align:left;border-bottom:1px solid #ddd}"
             ".thumbs img{height:160px;margin:4px;border:1px solid #ccc}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(folder.name)}</title>"
            f"<style>{style}</style></head><body><h1>zslkit run {html.escape(folder.name)}</h1>"
            f"<table>{brief}</table>{adapted}"
            f"<h2>Headline</h2><p>Unseen tags on B+C (Y), seen tags on B (X); 95 % bootstrap intervals in "
            f"brackets; the random control as its mean over draws.</p>{table}"
            f"<p><a href='results.csv'>results.csv</a> ({n_rows} rows, every number of the run) · "
            f"<a href='params.yaml'>params.yaml</a> · <a href='env.json'>env.json</a></p>"
            f"<h2>Notebooks</h2><ul>{notebooks}</ul><h2>Figures</h2>"
            f"{f'<ul>{pages}</ul>' if pages else ''}<div class='thumbs'>{thumbs}</div>"
            f"</body></html>")
    write_text(run.index, page)
    return run.index
