"""Stage 05: the paper's evaluation protocol on a trained run's frozen embeddings.

Stage 05 reads what stage 04 wrote (``embeddings/*.npz``) and the dataset and split; it never trains a network.
Two things it may write into the dataset folder: a frozen backbone's leakage record when stage 02's is missing
or stale, and, for the supervised-source peer, musicnn's tag probabilities of the dataset's audio (a cache,
computed once). For each joint model (the main one and each control) and each zero-shot head in
``evaluate.heads`` it scores every setting; the classifier gets the seen-label check.

Settings are written "tracks-labels" (``docs/evaluation.md``). Track sets are whole subsets (train
and valid together, as the paper): ``A``, ``B``, ``C``, ``B+C``, ``A+B+C``; the seen-label check
also runs on the training setting's validation part (``A-valid-X``). Label sets: ``X`` (seen), ``Y`` (unseen),
``X+Y``. Annotation ranks tags per track (metrics "-i", CIs over tracks); retrieval ranks tracks
per tag ("-l", CIs over tags). Tags without side information cannot be scored and are left out
of the candidate set; :func:`evaluate_embeddings` reports how many.

Leakage (:func:`leakage_of`): for a model on a frozen backbone, every setting with unseen tags is scored again
without the unseen tags the backbone was supervised on (``test_setting`` suffix ``non-leaky``, same tracks), and
``task = "leakage"`` counts them.

The supervised-source ConSE peer (``evaluate.source_conse``, :mod:`zslkit.evaluate.source_conse`): musicnn's own tag
probabilities mixed through side information, scored on every setting as the models are, with its leakage.

The shift (:func:`shift_rows`, ``task = "shift"``): on a dataset whose ``tracks.csv`` marks held-out
tracks (``heldout`` = 1: recorded under a condition no training track has, e.g. m21 clips rendered with
its held-out General-MIDI bank), B-X and (B+C)-Y are scored again on the held-out tracks and on the
others, with the difference: per tag (AUC-l, paired by tag) or per track (AUC-i, two samples).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data import leakage
from ..data.splits import heldout_mask
from ..errors import DataError
from ..layout import RunLayout
from ..model.inference import resolve_device
from ..plan import (
    SHIFT_PARTS,
    RunPlan,
    base_kind,
    draws_label,
    non_leaky_setting_name,
    setting_name,
    shift_setting_name,
    train_setting_name,
)
from ..registry import SIDEINFO
from . import metrics
from .diagnostics import diagnose
from .embeddings import ClassifierScores, Embeddings
from .heads import HeadInput, apply_head
from .source_conse import peer_rows, source_conse_models

ANNOTATION = [("B", "Y"), ("C", "Y"), ("B+C", "Y"), ("B", "X+Y"), ("C", "X+Y"), ("B+C", "X+Y")]
RETRIEVAL = [("B+C", "Y"), ("A+B+C", "Y"), ("B+C", "X+Y")]
SEEN_CHECK = [("B", "X")]
#: the settings scored again on held-out tracks and on the others (:func:`shift_rows`)
SHIFT = [("B", "X"), ("B+C", "Y")]


def seen_checks(train_setting: str) -> list[tuple[str, str]]:
    """The seen-label checks: the training setting's valid tracks, and B (the paper's B-X)."""
    return [(f"{train_setting}_valid", "X"), *SEEN_CHECK]

def metric_backend(ev: Mapping[str, Any]) -> dict[str, Any]:
    """``backend`` and ``device`` of the metric suite (:mod:`zslkit.evaluate.metrics`) from ``evaluate``."""
    if ev["backend"] == "numpy":
        return {"backend": "numpy"}
    return {"backend": "torch", "device": resolve_device(ev["device"], "evaluate.device")}


def metric_label(name: str, axis: int) -> str:
    """``AP`` averaged is the paper's MAP; suffix "-i" per track, "-l" per tag."""
    return f"{'MAP' if name == 'AP' else name}-{'i' if axis == 1 else 'l'}"


def _rows(res: Mapping[str, Any], axis: int, ks, common: Mapping[str, Any]) -> list[dict]:
    return [{**common, "metric": metric_label(name, axis), **{k: res[name][k] for k in
             ("value", "ci_low", "ci_high", "n", "n_excluded")}} for name in metrics.metric_names(ks)]


def evaluate_embeddings(emb, ds, split, train_setting: str, ev: Mapping[str, Any], model: str,
                        seed: int = 0, settings: Sequence[tuple[str, str, str]] | None = None,
                        leaky: Sequence[str] = ()):
    """Every setting for one joint model's embeddings.

    Parameters
    ----------
    emb : embed.Embeddings
    ds, split : the dataset and the run's split
    train_setting : "A", "B" or "AB"
    ev : the resolved ``evaluate`` params (``ks``, ``bootstrap``, ``complete_labels``)
    model : label for the ``model`` column (e.g. "embedding glove")
    settings : ``(task, tracks, tags)`` triples; default every annotation, retrieval and
        seen-label setting of the paper, and the seen-label check on the setting's valid tracks
    leaky : unseen tags a frozen backbone was supervised on (:mod:`zslkit.data.leakage`): when given, they are
        left out of ``Y``, and the settings are those with ``Y`` (default: every annotation and retrieval
        setting), named with the suffix ``non-leaky`` (:func:`zslkit.plan.non_leaky_setting_name`); the tracks
        are the same

    Returns
    -------
    rows : list of dict, for ``results.csv``
    per_item : dict ``(task, setting, labels) -> DataFrame`` of per-track or per-tag values
    """
    leaky = set(leaky)
    if settings is None:
        settings = ([("annotation", *s) for s in ANNOTATION] + [("retrieval", *s) for s in RETRIEVAL]
                    + ([] if leaky else [("seen-label", *s) for s in seen_checks(train_setting)]))
    label_sets = ["annotation"] + (["complete"] if ev["complete_labels"] and ds.complete_truth() is not None else [])
    groups = dict(zip(ds.tags.tag, ds.tags.group))
    rows, per_item = [], {}
    for task, tracks_name, tags_name in settings:
        parts = tags_name.split("+")
        tags = [t for t, s, ok in zip(emb.tags, emb.seen, emb.scorable) if ok and ("X" if s else "Y") in parts
                and (s or t not in leaky)]
        left_out = sum(1 for s, ok in zip(emb.seen, emb.scorable) if not ok and ("X" if s else "Y") in parts)
        ids = [t for t in split.track_set(tracks_name) if t in emb.track_row]
        if not ids or not tags:
            continue
        axis = 1 if task == "annotation" else 0
        scores = emb.scores(ids, tags)
        name = setting_name(tracks_name, tags_name)
        name = non_leaky_setting_name(name) if leaky else name
        for label_kind in label_sets:
            labels = ds.labels(ids, tags) if label_kind == "annotation" else ds.complete_labels(ids, tags)
            res = metrics.evaluate(scores, labels, axis, ev["ks"], ev["bootstrap"], seed, **metric_backend(ev))
            common = {"model": model, "train_setting": train_setting_name(train_setting), "test_setting": name,
                      "task": task, "labels": label_kind}
            rows += _rows(res, axis, ev["ks"], common)
            if left_out:
                rows.append({**common, "metric": "tags without side information", "value": left_out})
            items = res["per_item"]
            keys = ids if axis == 1 else tags
            table = pd.DataFrame({"id": keys, **{metric_label(m, axis): items[m] for m in ("AUC", "AP")},
                                  "n_pos": items["n_pos"]})
            if axis == 0:
                table.insert(1, "group", [groups.get(t, "") for t in tags])
                table.insert(2, "split", ["X" if emb.seen[emb.tag_row[t]] else "Y" for t in tags])
            per_item[(task, name, label_kind)] = table
            if task == "retrieval" and tags_name == "Y" and tracks_name == "B+C" and ev["permutations"]:
                rows += permutation_rows(scores, labels, common, ev["permutations"], seed)
    return rows, per_item


def permutation_rows(scores, labels, common: Mapping[str, Any], n_permutations: int, seed: int) -> list[dict]:
    """The permutation test of tag-specific transfer (:func:`metrics.permutation_test`) as rows."""
    test = metrics.permutation_test(scores, labels, n_permutations, seed)
    common = {**common, "task": "permutation test", "n": test["n"]}
    return [{**common, "metric": "mean AUC-l (own side information)", "value": test["own"]},
            {**common, "metric": "mean AUC-l (permuted side information)", "value": test["permuted"]},
            {**common, "metric": "permutation p-value (H1: own > permuted)", "value": test["p"]},
            # few unseen tags: every permutation is enumerated (exact), and 2 tags have 2, so p >= 0.5
            {**common, "metric": "smallest attainable p-value", "value": test["min_p"]}]


def evaluate_classifier(scores, ds, split, train_setting: str, ev: Mapping[str, Any], seed: int = 0) -> list[dict]:
    """The supervised classifier's seen-label checks (the paper's embedding-vs-classifier
    comparison) from its stored logits (:class:`~zslkit.evaluate.embeddings.ClassifierScores`)."""
    if scores.tags != list(split.seen):
        raise DataError(f"the classifier's scores cover other seen tags than split {split.name!r}; rerun "
                        "notebooks 03-04")
    rows = []
    for tracks_name, tags_name in seen_checks(train_setting):
        ids = [t for t in split.track_set(tracks_name) if t in scores.track_row]
        if not ids:
            continue
        label_sets = [("annotation", ds.labels(ids, scores.tags))]
        if ev["complete_labels"] and ds.complete_truth() is not None:
            label_sets.append(("complete", ds.complete_labels(ids, scores.tags)))
        for label_kind, labels in label_sets:
            res = metrics.evaluate(scores.scores(ids), labels, 0, ev["ks"], ev["bootstrap"], seed, **metric_backend(ev))
            rows += _rows(res, 0, ev["ks"], {"model": "classifier", "task": "seen-label", "labels": label_kind,
                                             "train_setting": train_setting_name(train_setting),
                                             "test_setting": setting_name(tracks_name, tags_name)})
    return rows


def shift_rows(emb, ds, split, train_setting: str, ev: Mapping[str, Any], model: str, seed: int = 0) -> list[dict]:
    """What the held-out condition costs: B-X and (B+C)-Y on held-out tracks and on the others.

    A track is held out when ``tracks.csv`` says ``heldout`` = 1 (:func:`zslkit.data.splits.heldout_mask`).
    The others are the set's tracks that are neither held out nor in the model's training part (for an
    A-X model, all of B; for (A+B)-X and B-X models their B training tracks are left out, so that both
    sides are audio the model never trained on). For each setting, AUC-l (per tag) and AUC-i (per
    track) on each side, with 95 % bootstrap intervals as in :func:`evaluate_embeddings`, and the
    difference held-out minus others: for AUC-l paired by tag (each tag scored on both sides; the
    bootstrap resamples tags, :func:`metrics.paired_difference`), for AUC-i of two samples of tracks
    (:func:`metrics.difference_of_means`). A negative difference whose interval lies below 0: the
    model does worse on the held-out condition.

    Returns
    -------
    rows : list of dict
        ``task = "shift"``, ``test_setting`` = ``"<setting> held-out"``, ``"<setting> others"`` or
        ``"<setting> held-out minus others"`` (e.g. ``"B-X held-out"``), ``metric`` = ``AUC-l`` or ``AUC-i``
        (on the difference rows, the difference of that metric; ``n`` counts the tags paired, or the
        tracks of both sides). Empty when the dataset marks no held-out track, or a setting has no
        track on one side.
    """
    held = heldout_mask(ds.tracks)
    if held is None or not held.any():
        return []
    held_ids = set(ds.tracks.track_id[held])
    trained = set(split.train_tracks(train_setting))
    rows = []
    for tracks_name, tags_name in SHIFT:
        parts = tags_name.split("+")
        tags = [t for t, s, ok in zip(emb.tags, emb.seen, emb.scorable) if ok and ("X" if s else "Y") in parts]
        ids = [t for t in split.track_set(tracks_name) if t in emb.track_row and t not in trained]
        sides = ([t for t in ids if t in held_ids], [t for t in ids if t not in held_ids])
        if not tags or not all(sides):
            continue
        name = setting_name(tracks_name, tags_name)
        common = {"model": model, "train_setting": train_setting_name(train_setting), "task": "shift",
                  "labels": "annotation"}
        for axis in (0, 1):
            metric = metric_label("AUC", axis)
            res = [metrics.evaluate(emb.scores(side, tags), ds.labels(side, tags), axis, (), ev["bootstrap"], seed,
                                    **metric_backend(ev)) for side in sides]
            per = [r["per_item"]["AUC"] for r in res]
            diff = (metrics.paired_difference if axis == 0 else metrics.difference_of_means)(
                per[0], per[1], ev["bootstrap"], seed)
            for part, r in zip(SHIFT_PARTS, (res[0]["AUC"], res[1]["AUC"], diff)):
                rows.append({**common, "test_setting": shift_setting_name(name, part), "metric": metric,
                             **{k: r[k] for k in ("value", "ci_low", "ci_high", "n", "n_excluded")}})
    return rows


def consistency_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """(B+C)-L annotation against the track-weighted mean of B-L and C-L, for L = Y and X+Y.

    Annotation metrics are means over tracks, so the identity is exact (up to float rounding)
    whenever the same tracks are excluded; the paper's own GZSL rows break it (see docs/evaluation.md).
    """
    table = pd.DataFrame(rows)
    out = []
    if table.empty:
        return out
    ann = table[(table.task == "annotation") & table.metric.isin(["AUC-i", "MAP-i"])]
    for (model, labels, metric), g in ann.groupby(["model", "labels", "metric"]):
        v = g.set_index("test_setting")
        for tags in ("Y", "(X+Y)"):
            names = [f"B-{tags}", f"C-{tags}", f"(B+C)-{tags}"]
            if all(n in v.index for n in names):
                b, c, bc = (v.loc[n] for n in names)
                parts = [(r.value, r.n) for r in (b, c) if r.n > 0]  # a subset with no scorable track adds nothing
                if not parts:
                    continue
                weighted = sum(v * n for v, n in parts) / sum(n for _, n in parts)
                out.append({"model": model, "labels": labels, "task": "consistency",
                            "train_setting": bc.train_setting, "test_setting": names[2],
                            "metric": f"{metric} minus weighted mean of B and C", "value": bc.value - weighted,
                            "n": int(bc.n)})
    return out


def chance_rows(per_item: Mapping, model: str, train_setting: str) -> list[dict]:
    """The chance test of a random-side-information model: per-tag AUC-l on (B+C)-Y against 0.5."""
    table = per_item.get(("retrieval", "(B+C)-Y", "annotation"))
    if table is None:
        return []
    test = metrics.chance_test(table["AUC-l"].to_numpy())
    common = {"model": model, "train_setting": train_setting_name(train_setting), "test_setting": "(B+C)-Y",
              "task": "chance test", "labels": "annotation", "n": test["n"]}
    return [{**common, "metric": "mean AUC-l", "value": test["mean"]},
            {**common, "metric": "t-test p-value (H0: AUC-l = 0.5)", "value": test["p"]}]


def leakage_of(emb: Embeddings, ds, split) -> leakage.Leakage | None:
    """The unseen tags of ``split`` that the frozen backbone under ``emb`` was supervised on (stage 02's record,
    :func:`zslkit.data.leakage.of_split`); None for an encoder trained here (no backbone recorded)."""
    record = emb.meta.get("backbone")
    return None if not record else leakage.of_split(ds.root, split.name, split.unseen, record)


def leakage_rows(leaks: leakage.Leakage, model: str, train_setting: str) -> list[dict]:
    """How many unseen tags a model's backbone was supervised on (``task = "leakage"``; ``n``: unseen tags)."""
    return [{"model": model, "train_setting": train_setting_name(train_setting), "test_setting": "Y",
             "task": "leakage", "labels": leaks.backbone, "metric": "n_leaky_unseen_tags",
             "value": len(leaks.leaky), "n": len(leaks.unseen)}]


def head_input(emb: Embeddings, ds, split, train_setting: str) -> HeadInput:
    """What a zero-shot head may fit on: the training tracks' embeddings and seen labels."""
    ids = [t for t in split.train_tracks(train_setting) if t in emb.track_row]
    seen = [t for t, s in zip(emb.tags, emb.seen) if s]
    return HeadInput(emb.side, emb.seen, emb.tag_emb, emb.tracks[[emb.track_row[t] for t in ids]],
                     ds.labels(ids, seen))


def evaluate_run(ds, split, params: Mapping[str, Any], run_dir) -> dict[str, Any]:
    """Stage 05 for a run, from the embeddings stage 04 wrote: every setting for every joint model
    and zero-shot head, the chance test of control models, the classifier's seen-label checks, the
    consistency check, and on a dataset with held-out tracks the shift (:func:`shift_rows`).

    Returns ``{"rows", "per_item", "embeddings", "diagnostics"}``; ``rows`` go to ``results.csv``;
    ``per_item`` maps a model label to its per-track / per-tag tables; ``embeddings`` maps it to
    the :class:`~zslkit.evaluate.embeddings.Embeddings` scored; ``diagnostics`` maps each joint model's
    label to :func:`zslkit.evaluate.diagnostics.diagnose` (``evaluate.diagnostics``).
    """
    ev, plan, layout = params["evaluate"], RunPlan.of_run(params), RunLayout.at(run_dir)
    setting, seed = plan.setting, plan.seed
    rows, per_item, spaces, diags = [], {}, {}, {}
    for m in plan:
        path = layout.embeddings(m.name)
        if not m.is_joint:
            if ev["classifier"]:
                rows += evaluate_classifier(ClassifierScores.load(path), ds, split, setting, ev, seed)
            continue
        emb = Embeddings.load(path)
        if emb.tags != list(split.seen) + list(split.unseen):
            raise DataError(f"{path} belongs to another split; rerun notebook 04")
        inp = head_input(emb, ds, split, setting)
        leaks = leakage_of(emb, ds, split)  # a frozen backbone: the unseen tags it was supervised on
        for head in ev["heads"]:
            label = m.head_label(head)
            view = emb.with_scorer(apply_head(head, inp, params["heads"][head], emb.tracks[:64]), head)
            r, items = score_view(view, ds, split, setting, ev, label, seed, leaks)
            rows += r
            if SIDEINFO[base_kind(m.sideinfo)].control:
                rows += chance_rows(items, label, setting)
            per_item[label], spaces[label] = items, view
            rows += shift_rows(view, ds, split, setting, ev, label, seed)
            if head == ev["heads"][0] and ev["diagnostics"]:  # the audio and side information, once per model
                diags[label] = diagnose(emb, ds, split, items[("retrieval", "(B+C)-(X+Y)", "annotation")], label,
                                        plan.train_setting, seed)
                rows += diags[label]["rows"]
    tags = list(split.seen) + list(split.unseen)
    for label, view in source_conse_models(ds, tags, np.isin(tags, list(split.seen)), params,
                                           params["run"]["progress"]).items():
        r, per_item[label] = score_view(view, ds, split, setting, ev, label, seed, leakage_of(view, ds, split))
        rows += r + shift_rows(view, ds, split, setting, ev, label, seed)
        rows += peer_rows(view, params, train_setting_name(setting))
        spaces[label] = view
    rows += consistency_rows(rows) + draw_rows(rows, plan, ev["heads"])
    return {"rows": rows, "per_item": per_item, "embeddings": spaces, "diagnostics": diags}


def score_view(view: Embeddings, ds, split, setting: str, ev: Mapping[str, Any], label: str, seed: int,
               leaks: leakage.Leakage | None) -> tuple[list[dict], dict]:
    """Every setting of one scored view (:func:`evaluate_embeddings`); with a backbone's ``leaks``, its leakage
    count and every unseen-tag setting again on the non-leaky unseen tags.

    Returns
    -------
    rows : list of dict
    per_item : dict ``(task, setting, labels) -> DataFrame``
    """
    rows, items = evaluate_embeddings(view, ds, split, setting, ev, label, seed)
    if leaks is not None:
        rows += leakage_rows(leaks, label, setting)
        if leaks.leaky:  # every unseen-tag setting again, on the non-leaky unseen tags
            r, more = evaluate_embeddings(view, ds, split, setting, ev, label, seed, leaky=list(leaks.leaky))
            rows += r
            items = {**items, **more}
    return rows, items


#: the settings summarised over a control's draws
DRAW_SUMMARY = [("retrieval", "(B+C)-Y", "AUC-l"), ("annotation", "(B+C)-Y", "AUC-i"),
                ("annotation", "(B+C)-(X+Y)", "AUC-i"), ("seen-label", "B-X", "AUC-l")]


def draw_rows(rows, plan: RunPlan, heads: Sequence[str]) -> list[dict]:
    """For a control trained on several draws (``sideinfo.random.draws``): the mean, min and max of
    its headline metrics over the draws, per head (``model`` = "embedding random, k draws")."""
    table = pd.DataFrame(rows)
    out = []
    for control, models in plan.controls().items():
        if len(models) < 2:
            continue
        for head in heads:
            names = [m.head_label(head) for m in models]
            model = draws_label(control, head, len(models))
            for task, test, metric in DRAW_SUMMARY:
                sel = table[table.model.isin(names) & (table.task == task) & (table.test_setting == test)
                            & (table.metric == metric) & (table.labels == "annotation")]
                if sel.empty:
                    continue
                common = {"model": model, "train_setting": sel.train_setting.iloc[0], "test_setting": test,
                          "task": f"{task} over draws", "labels": "annotation", "n": len(sel)}
                out += [{**common, "metric": f"{metric} {stat}", "value": float(getattr(sel.value, stat)())}
                        for stat in ("mean", "min", "max")]
    return out
