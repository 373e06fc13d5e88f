"""The real-recordings check on a run's page: how the run's models do on real recordings (``<run>/real/``, written
by ``run.real_check``; :func:`zslkit.run.runner.real_check`), in one line per model and a table by tag group.

- :func:`real_check_table` condenses the check's ``results.csv`` (stage ``07_transfer``): per model, AUC-l on the
  tags the run saw, on the instrument tags, on the tags it never saw (with the permutation test's p), each tag
  group's AUC-l, how concentrated the clips' top tags are, and, where ``transfer.agreement`` names a tagger, the
  mean agreement with it (:mod:`zslkit.evaluate.agreement`; labelled as agreement, never as truth).
- :func:`real_check_shown` is that table as the page shows it (AUC-l with its interval, per model).
- :func:`real_check_lines` says it in words for the verdict: each model as trained (adapted ones only in the
  table) against the random control's draws, and the tag groups whose interval holds 0.5 named as at chance,
  those under it as ranked backwards, never averaged away.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_json
from ..layout import RunLayout

SEEN, UNSEEN, ALL = "target-T seen by source", "target-T unseen by source", "target-T"
GROUP = "target-T group "


def _value(rows: pd.DataFrame, setting: str, metric: str = "AUC-l", task: str = "retrieval") -> pd.Series | None:
    hit = rows[(rows.test_setting == setting) & (rows.metric == metric) & (rows.task == task)]
    return hit.iloc[0] if len(hit) else None


def real_check_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per transferred model: ``model``, ``seen``, ``instrument``, ``unseen``, ``unseen p``, ``all``
    (AUC-l; NaN where the check has no such tags), ``top share`` and ``top tag`` (the largest share of clips
    with one tag in their top k), then one column per tag group (``group <name>``, AUC-l) and, for each AUC-l,
    its 95 % interval as ``<column> ci`` (a ``(low, high)`` tuple)."""
    rows = results[(results.stage.astype(str) == "07_transfer") & results.model.astype(str).str.startswith("transfer")
                   & (results.metric != "skipped")]
    out = []
    for model, m in rows.groupby("model", sort=False):
        rec: dict = {"model": model}
        for key, setting in (("seen", SEEN), ("instrument", GROUP + "instrument"), ("unseen", UNSEEN), ("all", ALL)):
            r = _value(m, setting)
            rec[key] = float(r.value) if r is not None else np.nan
            rec[f"{key} ci"] = (float(r.ci_low), float(r.ci_high)) if r is not None else (np.nan, np.nan)
        p = _value(m, UNSEEN, "permutation p-value (H1: own > permuted)", "permutation test")
        rec["unseen p"] = float(p.value) if p is not None else np.nan
        agree = m[(m.task == "agreement") & (m.labels == "mean") & (m.metric != "skipped")]
        rec["agreement"] = float(agree.value.iloc[0]) if len(agree) else np.nan
        rec["agreement tags"] = int(agree.n.iloc[0]) if len(agree) else 0
        rec["tagger"] = str(agree.metric.iloc[0]).split(" with ")[1].split(" ")[0] if len(agree) else ""
        conc = m[(m.task == "concentration") & m.metric.astype(str).str.startswith("largest share")]
        rec["top share"] = float(conc.value.iloc[0]) if len(conc) else np.nan
        rec["top tag"] = str(conc.labels.iloc[0]) if len(conc) else ""
        for r in m[m.test_setting.astype(str).str.startswith(GROUP) & (m.metric == "AUC-l")].itertuples():
            name = "group " + r.test_setting[len(GROUP):]
            rec[name] = float(r.value)
            rec[f"{name} ci"] = (float(r.ci_low), float(r.ci_high))
        out.append(rec)
    return pd.DataFrame(out)


def real_check_shown(folder: str | Path) -> pd.DataFrame:
    """The check's table (:func:`real_check_table`) of the run at ``folder`` as text, each AUC-l with its 95 %
    interval; empty when the run has no scored check."""
    real = RunLayout.at(RunLayout.at(folder).real_check)
    if not real.results.is_file():
        return pd.DataFrame()
    table = real_check_table(pd.read_csv(real.results, dtype={"stage": str}))
    if table.empty:
        return table
    out = pd.DataFrame({"model": table.model})
    # "instrument" is the instrument group's column again: shown once, as "group: instrument"
    not_shown = ("model", "instrument", "unseen p", "top share", "top tag", "agreement", "agreement tags", "tagger")
    for c in [c for c in table.columns if c not in not_shown and not c.endswith(" ci")]:
        out[c.replace("group ", "group: ") if c.startswith("group ") else f"{c} tags AUC-l"] = [
            "" if pd.isna(v) else f"{v:.3f}" + ("" if pd.isna(lo) else f" [{lo:.3f}, {hi:.3f}]") for v, (lo, hi) in
            zip(table[c], table[f"{c} ci"].map(lambda x: x if isinstance(x, tuple) else (np.nan, np.nan)))]
    out["unseen p"] = table["unseen p"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    out["agreement with the tagger (rho, not truth)"] = table["agreement"].map(
        lambda v: "" if pd.isna(v) else f"{v:.2f}")
    out["top tag (share of clips)"] = [f"{t} ({v:.0%})" if t else "" for t, v in zip(table["top tag"],
                                                                                      table["top share"])]
    return out


def _is_control(model: str) -> bool:
    return "(random" in model


def _adaptation(model: str) -> str:
    """What a transferred model's label says was adapted (``" + adabn"``), or ``""``."""
    return model.partition(" + ")[2]


def _fmt(v: float) -> str:
    return "n/a" if pd.isna(v) else f"{v:.2f}"


def real_check_lines(folder: str | Path) -> list[str]:
    """The verdict's lines on real recordings for the run at ``folder``: none when the run has no check; one
    saying why when the check was skipped (its packages not installed) or failed to score any model."""
    real = RunLayout.at(RunLayout.at(folder).real_check)
    skipped = real.root / "skipped.json"
    if skipped.is_file():
        return [f"On real recordings: not checked: {read_json(skipped)['reason']}."]
    if not real.results.is_file():
        return []
    results = pd.read_csv(real.results, dtype={"stage": str})
    table = real_check_table(results)
    if table.empty:
        return ["On real recordings: no model could be scored (real/results.csv says why)."]
    n_clips = _clips(results)
    controls = table[table.model.map(_is_control)]
    lines = []
    # the models as trained; their adapted versions (AdaBN) are in the table below the headline
    for _, r in table[~table.model.map(_is_control) & (table.model.map(_adaptation) == "")].iterrows():
        rec = r.to_dict()
        parts = [f"seen tags AUC-l {_fmt(rec['seen'])}", f"instrument tags {_fmt(rec['instrument'])}",
                 f"unseen tags {_fmt(rec['unseen'])}"
                 + (f" (p = {rec['unseen p']:.3f})" if not pd.isna(rec["unseen p"]) else "")]
        same = controls[controls.model.map(_adaptation) == _adaptation(rec["model"])]
        if len(same):
            parts.append("random control (seen, instrument, unseen) " + " / ".join(
                f"{_fmt(c['seen'])}, {_fmt(c['instrument'])}, {_fmt(c['unseen'])}" for _, c in same.iterrows()))
        if not pd.isna(rec["agreement"]):
            parts.append(f"agreement with {rec['tagger']} on {rec['agreement tags']} tags both know (not truth): "
                         f"mean Spearman rho {rec['agreement']:.2f}" + (" (control " + " / ".join(
                             _fmt(v) for v in same["agreement"]) + ")" if len(same) else ""))
        if not pd.isna(rec["top share"]):
            parts.append(f"'{rec['top tag']}' is in the top tags of {rec['top share']:.0%} of the clips")
        groups = [k for k in rec if k.startswith("group ") and not k.endswith(" ci") and not pd.isna(rec[k])]
        chance = [k[len("group "):] for k in groups if _side(table, rec["model"], k) == 0]
        below = [k[len("group "):] for k in groups if _side(table, rec["model"], k) < 0]
        line = f"On real recordings ({n_clips} clips), {rec['model']}: " + "; ".join(parts)
        if chance:
            line += f"; at chance (interval holds 0.5): {', '.join(chance)}"
        if below:
            line += f"; below chance, ranked backwards (interval under 0.5): {', '.join(below)}"
        lines.append(line + ".")
    return lines


def _side(table: pd.DataFrame, model: str, column: str) -> int:
    """Where a group's AUC-l interval lies: 1 above 0.5, -1 under it, 0 holding it (or not known)."""
    ci = table.loc[table.model == model, f"{column} ci"].iloc[0]
    if not isinstance(ci, tuple) or pd.isna(ci[0]):
        return 0
    return 1 if ci[0] > 0.5 else -1 if ci[1] < 0.5 else 0


def _clips(results: pd.DataFrame) -> int:
    """Clips scored: the annotation rows' tracks, those without a positive (excluded there) included."""
    r = results[(results.test_setting == ALL) & (results.metric == "AUC-i")]
    return int((r.n + r.n_excluded.fillna(0)).max()) if len(r) else 0
