"""Transfer: a trained run applied to another dataset (tagging arbitrary audio files: :mod:`zslkit.tagging`).

Conventions
-----------
- The *source* is a finished run folder (``reports/<run>``: ``params.yaml``, ``train/<model>/best.pt``),
  read with :func:`zslkit.tagging.source_params` and :func:`zslkit.tagging.load_source_model`.
  The *target* is any dataset a registered importer reads; its mels are computed with the source's mel
  settings (the ``audio`` keys in :data:`MEL_KEYS` are taken from the source's ``params.yaml``) and
  standardised with the source's constants, stored in the checkpoint.
- Target tags are embedded through the source's side information (built for the target's tag texts,
  with the source's ``sideinfo`` parameters) and its tag branch. A target tag is *seen* when the same
  text was a seen (X) tag of the source's split; most are not.
- Side information with named columns (the attribute ``table``) is aligned by name to the columns the
  source model was trained with (:func:`source_side_columns`): a column the target's table lacks is
  zero, an extra one is dropped, and both are reported. The ``table`` read for the target is the
  target's ``sideinfo.table.path`` when its parameters set one, else the source's, else the target's
  own ``knowledge.csv``.
- Each model of ``transfer.models`` is applied on its own (:func:`transfer_models`): one that cannot be
  applied is skipped, with its reason, and the others are scored.
- A source model on a frozen backbone (``model.encoder: musicnn``, ``hear``) embeds the target's tracks from the
  backbone's features of the target's audio, computed once and cached in the target dataset
  (:func:`zslkit.model.frozen.dataset_features`). Target tags the backbone was supervised on are *leaky*
  (:func:`leaky_target_tags`, :mod:`zslkit.data.leakage`): the unseen part is scored again without them
  (``target-T unseen by source non-leaky``), and a target that is (or overlaps) the backbone's corpus gets a
  warning row.
- The supervised-source ConSE peer (the target's ``evaluate.source_conse``; :mod:`zslkit.evaluate.source_conse`) is
  scored on the target beside the source's models (rows only: :func:`transfer_models` returns the models' embeddings),
  its leaky target tags marked the same way; a target tag counts as seen when the source run saw it.
- Evaluation uses the same metric suite, bootstrap intervals and permutation test as stage 05, over
  every target track with a mel: retrieval (per tag, AUC-l) and annotation (per track, AUC-i) over all
  target tags, and separately over the target tags the source never saw (the zero-shot part); for
  single-label datasets (GTZAN, FMA genre_top) also accuracy: the top-scoring tag is the true one.
  Rows go to the target run's ``results.csv`` (stage ``07_transfer``); ``train_setting`` names the
  source run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .data import leakage
from .data.features import SupervisedOn
from .data.prepare import MEL_SETTINGS
from .data.sideinfo import Context, SideInfo, build_tables
from .data.sideinfo.csvtable import read_attribute_csv
from .errors import DataError, ParamError
from .evaluate import metrics
from .evaluate.agreement import agreement_rows, tagger_probabilities
from .evaluate.embeddings import Embeddings
from .evaluate.protocol import metric_backend, metric_label
from .evaluate.source_conse import peer_rows, source_conse_models
from .layout import DatasetLayout, RunLayout
from .model.frozen import backbone_spec, dataset_features, frozen_arch, supervised_record
from .model.inference import adapt_batch_norm, embed_tag_vectors, resolve_device, track_embeddings
from .plan import base_kind
from .registry import SIDEINFO
from .tagging import load_source_model, source_params  # noqa: F401  (notebook 07 reads transfer.source_params)

MEL_KEYS = MEL_SETTINGS


def with_source_audio(params: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` whose mel settings are the source run's (a model hears only what it was trained on)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in params.items()}
    out["audio"].update({k: source["audio"][k] for k in MEL_KEYS})
    return out


def source_side_columns(run_dir: str | os.PathLike, src: Mapping[str, Any], name: str, kind: str,
                        side_dim: int) -> tuple[list[str] | None, str]:
    """The named columns of the side information the source model ``name`` was trained with.

    Looked for, in order, and taken from the first place that has ``side_dim`` of them: the source run's
    ``embeddings/<name>.npz`` (stage 04 records them), the side-information table the source's stage 02
    saved (``<source dataset>/splits/<split>/sideinfo/<kind>.npz``), and, for ``table``, the header of the
    source's attribute CSV (its ``sideinfo.table.path``, else its dataset's ``knowledge.csv``).

    Returns
    -------
    columns : list of str or None
        None when the kind names no columns (word vectors) or no place has them.
    where : str
        Where they were found, or the places looked at.
    """
    looked, candidates = [], [(RunLayout.at(run_dir).embeddings(name), "side_columns")]
    dataset = DatasetLayout.from_params(src) if src.get("run", {}).get("data_dir") and src.get("data") else None
    if dataset is not None:
        candidates.append((dataset.sideinfo(src["split"]["name"], kind), "columns"))
    for path, key in candidates:
        looked.append(str(path))
        if not Path(path).is_file():
            continue
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        except (OSError, ValueError, KeyError):
            continue
        columns = meta.get(key)
        if columns is not None and len(columns) == side_dim:
            return [str(c) for c in columns], str(path)
    table = (src.get("sideinfo") or {}).get("table") or {}
    csv = Path(table["path"]) if table.get("path") else dataset.root / "knowledge.csv" if dataset else None
    if base_kind(kind) == "table" and csv is not None:
        looked.append(str(csv))
        if csv.is_file():
            columns = list(read_attribute_csv(csv).columns)
            if len(columns) == side_dim:
                return [str(c) for c in columns], str(csv)
    return None, "looked in " + ", ".join(looked)


def target_side_table(kind: str, texts: Sequence[str], ds, sideinfo_params: Mapping[str, Any],
                      columns: Sequence[str] | None = None,
                      target_sideinfo: Mapping[str, Any] | None = None) -> SideInfo:
    """Side information of ``kind`` for the target's tag texts, built with the source's parameters.

    No target annotation is shown to the builder (kinds that count co-occurrence get no track).

    Parameters
    ----------
    kind : str
        The source model's side-information kind (``glove``, ``table``, ``random@1``, ...).
    texts : sequence of str
        The target's tag texts.
    ds : Dataset
        The target.
    sideinfo_params : mapping
        The source's resolved ``sideinfo`` section.
    columns : sequence of str, optional
        The named columns the source model expects (:func:`source_side_columns`): a kind with named
        columns (``table``) aligns its vectors to them by name.
    target_sideinfo : mapping, optional
        The target's resolved ``sideinfo`` section: its ``table.path``, when set, is the table read.

    Returns
    -------
    SideInfo
        ``meta`` lists ``missing_columns`` and ``extra_columns`` when the table was aligned.

    Raises
    ------
    ParamError
        ``table`` with no attribute table for the target (no ``sideinfo.table.path`` in the target's
        parameters or the source's, and no ``knowledge.csv`` in the target dataset).
    """
    base = base_kind(kind)
    params = dict(sideinfo_params)
    draw = int(kind.split("@", 1)[1]) if "@" in kind else 0
    p = dict(params[base]) if draw == 0 else {**params[base], "seed": params[base]["seed"] + draw}
    if base == "table":
        p["path"] = ((target_sideinfo or {}).get("table") or {}).get("path") or p.get("path")
        if p["path"] is None and not (Path(ds.root) / "knowledge.csv").is_file():
            raise ParamError(f"sideinfo.table: the target dataset {ds.root} has no knowledge.csv, and neither the "
                             "target's parameters nor the source run set sideinfo.table.path; set it in the target's "
                             "parameter file to a CSV of the target's tags (column tag, then the source's attribute "
                             "columns)")
    ctx = Context(list(texts), ds.tags, ds.label_matrix(), np.array([], dtype=int), ds.root,
                  columns={base: list(columns)} if columns is not None else {})
    like = p.get("like")  # a kind sized like another (the random control) needs that one built first
    kinds = ([like] if like and like != base else []) + [base]
    return build_tables(ctx, {**params, "kinds": kinds, base: {**p, "draws": 1} if "draws" in p else p})[base]


def tag_side_vectors(kind: str, texts: Sequence[str], ds, sideinfo_params: Mapping[str, Any],
                     columns: Sequence[str] | None = None,
                     target_sideinfo: Mapping[str, Any] | None = None) -> np.ndarray:
    """The vectors of :func:`target_side_table` (same arguments): ``(len(texts), dim)``, NaN rows for
    tags without a vector."""
    return target_side_table(kind, texts, ds, sideinfo_params, columns, target_sideinfo).vectors


def embed_target(run_dir: str | os.PathLike, src: Mapping[str, Any], ds, name: str = "joint",
                 device: str = "cpu", progress: bool = False,
                 target_sideinfo: Mapping[str, Any] | None = None,
                 params: Mapping[str, Any] | None = None, adapt: str = "none") -> Embeddings:
    """Every target track with a mel and every target tag in the source model's joint space.

    The target's side information is built as the source's (:func:`target_side_table`; ``target_sideinfo``:
    the target's ``sideinfo`` section) and, for named columns, aligned to the source model's
    (:func:`source_side_columns`); ``meta["side_alignment"]`` then lists the columns missing and extra.

    A source model on a frozen backbone reads the backbone's features of the target's tracks: computed here from
    the target's audio the first time (cached in the target dataset, resumable; ``params``, the target's resolved
    parameters, say how many workers and how much of each file), and ``meta["backbone"]`` records the backbone.

    ``adapt="adabn"`` re-estimates the audio encoder's batch-norm statistics on the target's tracks before they are
    embedded (:func:`zslkit.model.inference.adapt_batch_norm`); ``meta["adapt"]`` records it and how many layers
    it changed, and the model's label gets `` + adabn``.

    Raises
    ------
    DataError
        When the target's side information is not as wide as the source model's input, saying why.
    """
    device = resolve_device(device)
    model, info = load_source_model(run_dir, name, device)
    kind = info["arch"]["sideinfo"]
    texts = ds.tag_texts
    side_dim = int(info["arch"]["side_dim"])
    columns, where = source_side_columns(run_dir, src, name, kind, side_dim)
    table = target_side_table(kind, texts, ds, src["sideinfo"], columns, target_sideinfo)
    if table.dim != side_dim:
        why = (f": its {table.dim} named columns cannot be aligned to the source's, whose names were not found "
               f"({where})" if "columns" in table.meta else "")
        raise DataError(f"{kind} side information for the target has {table.dim} columns, the source model "
                        f"{name!r} takes {side_dim}{why}")
    frozen = frozen_arch(info["arch"])
    store = dataset_features(ds, backbone_spec(info["arch"]), params, compute=True, progress=progress) \
        if frozen else ds.mels
    ids = [t for t in ds.tracks.track_id if t in store]
    if not ids:
        raise DataError(f"{ds.root}: no target track has " + ("backbone features (no audio could be read)" if frozen
                        else "a mel; run stage 01 of the target first"))
    e = src["embed"]
    adapted = adapt_batch_norm(model.audio, store, ids, info["mean"], info["std"], info["arch"]["segment_frames"],
                               e["batch_segments"], device) if adapt == "adabn" else 0
    if adapt == "adabn" and not adapted:
        raise ParamError(f"transfer.adapt: adabn needs batch norm, and the audio encoder of {name!r} "
                         f"({info['arch']['encoder']}) has none")
    tracks = track_embeddings(model.audio, store, ids, info["mean"], info["std"], info["arch"]["segment_frames"],
                              e["batch_segments"], e["normalize_segments"], device, progress)
    side = table.vectors.astype(np.float32)
    seen = np.isin(texts, info["seen"])
    alignment = {k: table.meta[k] for k in ("missing_columns", "extra_columns") if k in table.meta}
    return Embeddings(ids, tracks, texts, embed_tag_vectors(model, side, device), seen, side,
                      {"sideinfo": kind, "model": name, "source_run": str(Path(run_dir).resolve()),
                       "checkpoint_epoch": info["epoch"], "encoder": info["arch"]["encoder"],
                       "control": SIDEINFO[base_kind(kind)].control,
                       **({"adapt": adapt, "adapted_layers": adapted,
                           "label": model_label(name, kind) + " + adabn"} if adapt != "none" else {}),
                       **({"backbone": record} if (record := supervised_record(info["arch"])) else {}),
                       **({"side_alignment": {**alignment, "columns_from": where}} if alignment else {})})


def leaky_target_tags(emb: Embeddings) -> dict[str, str]:
    """The target tags the source's frozen backbone was supervised on, with the term each matched
    (:func:`zslkit.data.leakage.leaky_tags`); empty for an encoder trained by the source run."""
    record = emb.meta.get("backbone")
    return leakage.leaky_tags(emb.tags, SupervisedOn.of(record["supervised_on"]).tags) if record else {}


def seen_report(emb: Embeddings) -> pd.DataFrame:
    """Per target tag: seen by the source (X), has a side-information vector, and (``leaky``) the source's frozen
    backbone was supervised on it."""
    leaky = leaky_target_tags(emb)
    return pd.DataFrame({"tag": emb.tags, "seen_by_source": emb.seen, "has_vector": emb.scorable,
                         "leaky": [t in leaky for t in emb.tags]})


def accuracy(scores: np.ndarray, labels: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Single-label accuracy: the top-scoring tag is a true one. ``scores, labels``: (tracks, tags);
    tracks with no true tag among the columns are excluded and counted."""
    labels = np.asarray(labels, bool)
    keep = labels.any(axis=1)
    hit = labels[keep][np.arange(int(keep.sum())), np.argmax(scores[keep], axis=1)].astype(float)
    lo, hi = metrics.bootstrap_ci(hit, n_boot, seed) if len(hit) else (np.nan, np.nan)
    return {"value": float(hit.mean()) if len(hit) else np.nan, "ci_low": lo, "ci_high": hi, "n": int(keep.sum()),
            "n_excluded": int((~keep).sum()), "chance": float(1 / labels.shape[1]) if labels.shape[1] else np.nan}


def evaluate_transfer(emb: Embeddings, ds, ev: Mapping[str, Any], source_name: str, seed: int = 0) -> list[dict]:
    """Stage 07's rows: retrieval and annotation over all target tags and over the unseen ones, the
    permutation test on the unseen ones, accuracy for single-label datasets (module doc)."""
    rows = []
    model = emb.meta.get("label") or model_label(emb.meta["model"], emb.meta["sideinfo"])
    ok = emb.scorable
    sets = {"T": ok, "T seen by source": ok & emb.seen, "T unseen by source": ok & ~emb.seen}
    leaky = leaky_target_tags(emb)
    if leaky:  # the zero-shot part again, without the tags the source's frozen backbone was taught
        sets["T unseen by source non-leaky"] = ok & ~emb.seen & ~np.isin(emb.tags, list(leaky))
    for set_name, mask in sets.items():
        tags = [t for t, m in zip(emb.tags, mask) if m]
        if not tags:
            continue
        scores = emb.scores(emb.track_ids, tags)
        labels = ds.labels(emb.track_ids, tags)
        common = {"model": model, "train_setting": source_name, "test_setting": f"target-{set_name}",
                  "labels": "annotation"}
        for task, axis in (("annotation", 1), ("retrieval", 0)):
            res = metrics.evaluate(scores, labels, axis, ev["ks"], ev["bootstrap"], seed, **metric_backend(ev))
            for m in metrics.metric_names(ev["ks"]):
                rows.append({**common, "task": task, "metric": metric_label(m, axis),
                             **{k: res[m][k] for k in ("value", "ci_low", "ci_high", "n", "n_excluded")}})
        if "unseen" in set_name and ev["permutations"] and len(tags) > 1:
            test = metrics.permutation_test(scores, labels, ev["permutations"], seed)
            rows += [{**common, "task": "permutation test", "n": test["n"], "metric": m, "value": v} for m, v in
                     (("mean AUC-l (own side information)", test["own"]),
                      ("mean AUC-l (permuted side information)", test["permuted"]),
                      ("permutation p-value (H1: own > permuted)", test["p"]))]
        if ds.meta.get("single_label"):
            acc = accuracy(scores, labels, ev["bootstrap"], seed)
            rows.append({**common, "task": "classification", "metric": "accuracy",
                         **{k: acc[k] for k in ("value", "ci_low", "ci_high", "n", "n_excluded")}})
            rows.append({**common, "task": "classification", "metric": "accuracy, chance (1 / tags)",
                         "value": acc["chance"], "n": len(tags)})
    rows += group_rows(emb, ds, ev, model, source_name, seed) + concentration_rows(emb, model, source_name)
    rows.append({"model": model, "train_setting": source_name, "test_setting": "target", "task": "tags",
                 "metric": "target tags seen by the source", "value": int(emb.seen.sum()), "n": len(emb.tags)})
    rows.append({"model": model, "train_setting": source_name, "test_setting": "target", "task": "tags",
                 "metric": "target tags without side information", "value": int((~ok).sum()), "n": len(emb.tags)})
    if emb.meta.get("backbone"):
        rows.append({"model": model, "train_setting": source_name, "test_setting": "target", "task": "leakage",
                     "labels": emb.meta["backbone"]["key"], "metric": "target tags the backbone was supervised on",
                     "value": len(leaky), "n": len(emb.tags)})
        rows += [{"model": model, "train_setting": source_name, "test_setting": t, "task": "leakage",
                  "labels": v, "metric": "leaky target tag", "value": 1} for t, v in leaky.items()]
    aligned = emb.meta.get("side_alignment")
    if aligned:  # the target's attribute table aligned to the source's columns (embed_target)
        common = {"model": model, "train_setting": source_name, "test_setting": "target", "task": "tags",
                  "n": int(emb.side.shape[1])}
        rows.append({**common, "metric": "source side-information columns missing from the target (zero)",
                     "value": len(aligned.get("missing_columns", []))})
        rows.append({**common, "metric": "target side-information columns unknown to the source (dropped)",
                     "value": len(aligned.get("extra_columns", []))})
    return rows


def group_rows(emb: Embeddings, ds, ev: Mapping[str, Any], model: str, source_name: str, seed: int = 0) -> list[dict]:
    """AUC-l of each tag group of the target (``tags.csv`` ``group``) over its scorable tags, seen and unseen
    together, with the share of them the source saw (``labels``): which kinds of tag carry to the target and
    which sit at chance (``test_setting`` ``target-T group <group>``). The interval resamples the tracks
    (:func:`zslkit.evaluate.metrics.auc_ci_over_tracks`): a group may hold a single tag."""
    groups = dict(zip(ds.tags.tag, ds.tags.group))
    rows = []
    for group in sorted({groups[t] for t in emb.tags}):
        tags = [t for t, ok in zip(emb.tags, emb.scorable) if ok and groups[t] == group]
        if not tags:
            continue
        seen = int(np.isin(tags, np.asarray(emb.tags)[emb.seen]).sum())
        scores, labels = emb.scores(emb.track_ids, tags), ds.labels(emb.track_ids, tags)
        res = metrics.evaluate(scores, labels, 0, ev["ks"], 0, seed, **metric_backend(ev))["AUC"]
        low, high = metrics.auc_ci_over_tracks(scores, labels, ev["bootstrap"], seed)
        rows.append({"model": model, "train_setting": source_name, "test_setting": f"target-T group {group}",
                     "task": "retrieval", "metric": "AUC-l", "labels": f"{seen} of {len(tags)} seen",
                     "ci_low": low, "ci_high": high, **{k: res[k] for k in ("value", "n", "n_excluded")}})
    return rows


def concentration_rows(emb: Embeddings, model: str, source_name: str) -> list[dict]:
    """How concentrated the tracks' top tags are (hubness): with ``k = max(1, min(5, tags // 4))``, the largest share
    of tracks whose top ``k`` holds one tag (``labels``: that tag) and how many tags reach any track's top ``k``.
    A model that answers every track with the same tags has a share near 1."""
    tags = [t for t, ok in zip(emb.tags, emb.scorable) if ok]
    if len(tags) < 2:
        return []
    k = max(1, min(5, len(tags) // 4))
    scores = emb.scores(emb.track_ids, tags)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    counts = np.bincount(top.ravel(), minlength=len(tags))
    common = {"model": model, "train_setting": source_name, "test_setting": "target-T", "task": "concentration"}
    return [{**common, "metric": f"largest share of tracks with one tag in their top {k}",
             "value": float(counts.max() / len(top)), "labels": tags[int(counts.argmax())], "n": len(top)},
            {**common, "metric": f"tags in any track's top {k}", "value": int((counts > 0).sum()), "n": len(tags)}]


def model_label(name: str, kind: str | None = None) -> str:
    """The ``model`` column of a transferred model: ``"transfer joint (glove)"`` (``"transfer joint"``
    when its side information is not known)."""
    return f"transfer {name}" + (f" ({kind})" if kind else "")


def skipped_row(name: str, source_name: str, reason: str) -> dict:
    """The ``results.csv`` row of a model that could not be applied: ``task = "transfer"``,
    ``metric = "skipped"``, the reason in ``test_setting``."""
    return {"model": model_label(name), "train_setting": source_name, "test_setting": reason,
            "task": "transfer", "metric": "skipped"}


def transfer_models(run_dir: str | os.PathLike, src: Mapping[str, Any], ds, params: Mapping[str, Any],
                    save_to: str | os.PathLike | None = None
                    ) -> tuple[list[dict], dict[str, Embeddings], dict[str, str]]:
    """Stage 07: each model of ``transfer.models`` embedded (:func:`embed_target`) and scored
    (:func:`evaluate_transfer`) on its own.

    A model that cannot be applied (no checkpoint, side information that cannot be built for the target,
    ...) is skipped: a row (:func:`skipped_row`) says why, and the other models are still scored.

    Parameters
    ----------
    run_dir : path
        The source run.
    src : mapping
        The source's parameters (:func:`source_params`).
    ds : Dataset
        The target.
    params : mapping
        The target run's resolved parameters (``transfer.models``, ``train.device``, ``evaluate``,
        ``sideinfo``, ``run.seed``, ``run.progress``).
    save_to : path, optional
        A run folder: each applied model's embeddings go to its ``embeddings/transfer-<model>.npz``.

    Returns
    -------
    rows : list of dict
        For ``results.csv`` (stage ``07_transfer``), the skipped models' rows included.
    embedded : dict of str -> Embeddings
        The models applied, in ``transfer.models`` order.
    skipped : dict of str -> str
        The models skipped, and why.
    """
    rows, embedded, skipped = [], {}, {}
    source_name = src["run"]["name"]
    adapts = params["transfer"].get("adapt", ["none"])  # parameters resolved before transfer.adapt existed
    runs = [(name, adapt) for name in params["transfer"]["models"] for adapt in adapts]
    for name, adapt in runs:
        key = name if adapt == "none" else f"{name}+{adapt}"
        try:
            emb = embed_target(run_dir, src, ds, name, params["train"]["device"], params["run"]["progress"],
                               params.get("sideinfo"), params, adapt)
            model_rows = evaluate_transfer(emb, ds, params["evaluate"], source_name, params["run"]["seed"])
            if emb.meta.get("backbone"):  # the target is (or overlaps) the corpus the backbone was trained on
                model_rows += leakage.warning_rows(params, emb.meta["backbone"],
                                                   model_label(name, emb.meta["sideinfo"]), source_name)
        except Exception as exc:  # one model's failure must not lose the others' rows: it is reported
            skipped[key] = failure(exc)
            rows.append(skipped_row(key, source_name, skipped[key]))
            continue
        if save_to is not None:
            emb.save(RunLayout.at(save_to).embeddings(f"transfer-{key}"))
        embedded[key] = emb
        rows += model_rows
    if params["transfer"].get("agreement") and embedded:
        rows += tagger_agreement_rows(run_dir, src, ds, embedded, params)
    if params["evaluate"]["source_conse"]["sideinfo"]:
        rows += source_peer_rows(run_dir, src, ds, params)
    return rows, embedded, skipped


def tagger_agreement_rows(run_dir: str | os.PathLike, src: Mapping[str, Any], ds, embedded: Mapping[str, Embeddings],
                          params: Mapping[str, Any]) -> list[dict]:
    """Each applied model's agreement with ``transfer.agreement``'s tagger on the target's clips, for the source
    run's own tags the tagger knows (:mod:`zslkit.evaluate.agreement`); a model whose source embeddings (stage 04)
    are missing, or a tagger that cannot run, is a skipped row, never lost rows of the models."""
    tagger, source_name = params["transfer"]["agreement"], src["run"]["name"]
    rows, read = [], {}  # the tagger's probabilities, read once per set of tracks (the models mostly share one)
    for key, emb in embedded.items():
        label = emb.meta.get("label") or model_label(emb.meta["model"], emb.meta["sideinfo"])
        try:
            source = Embeddings.load(RunLayout.at(run_dir).embeddings(key.split("+")[0]))
            ids = tuple(emb.track_ids)
            if ids not in read:
                read[ids] = tagger_probabilities(ds, tagger, params, ids, params["run"]["progress"])
            probs, vocabulary = read[ids]
            rows += agreement_rows(label, emb, source, probs, vocabulary, tagger, source_name)
        except Exception as exc:  # reported like a model that could not be applied
            rows.append({"model": label, "train_setting": source_name, "task": "agreement", "metric": "skipped",
                         "test_setting": f"target-T, tags shared with {tagger}", "labels": failure(exc)})
    return rows


def source_seen_tags(run_dir: str | os.PathLike) -> list[str]:
    """The seen (X) tags of a source run, from the first model's embeddings stage 04 wrote.

    Raises
    ------
    DataError
        When the run has no embeddings (its stage 04 has not run).
    """
    folder = RunLayout.at(run_dir).embeddings("joint").parent
    for path in sorted(folder.glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            if "seen" in z and "tags" in z:
                return [str(t) for t, s in zip(z["tags"], z["seen"]) if s]
    raise DataError(f"{folder}: no embeddings of the source run to read its seen tags from; run its stage 04")


def source_peer_rows(run_dir: str | os.PathLike, src: Mapping[str, Any], ds, params: Mapping[str, Any]) -> list[dict]:
    """Stage 07's rows of the supervised-source peer (the target's ``evaluate.source_conse``;
    :mod:`zslkit.evaluate.source_conse`) on the target, a tag counted as seen when the source run saw it, with its
    leakage and, on the source's own corpus, the warning; a peer that cannot be built is a skipped row, not lost
    rows of the models."""
    source_name = src["run"]["name"]
    try:
        seen = np.isin(ds.tag_texts, source_seen_tags(run_dir))
        peers = source_conse_models(ds, ds.tag_texts, seen, params, params["run"]["progress"])
    except Exception as exc:  # reported like a model that could not be applied
        return [skipped_row("supervised-source peer", source_name, failure(exc))]
    rows = []
    for label, emb in peers.items():
        rows += evaluate_transfer(emb, ds, params["evaluate"], source_name, params["run"]["seed"])
        rows += peer_rows(emb, params, source_name)
    return rows


def failure(exc: BaseException) -> str:
    """Why a model was skipped, in one line: ``"DataError: <first line of its message>"``."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")
