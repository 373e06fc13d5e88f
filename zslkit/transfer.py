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
- Evaluation uses the same metric suite, bootstrap intervals and permutation test as stage 05, over
  every target track with a mel: retrieval (per tag, AUC-l) and annotation (per track, AUC-i) over all
  target tags, and separately over the target tags the source never saw (the zero-shot part); for
  single-label datasets (GTZAN, FMA genre_top) also accuracy: the top-scoring tag is the true one.
  Rows go to the target run's ``results.csv`` (stage ``07_transfer``); ``train_setting`` names the
  source run.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .data.prepare import MEL_SETTINGS
from .data.sideinfo import Context, build_tables
from .errors import DataError
from .evaluate import metrics
from .evaluate.embeddings import Embeddings
from .evaluate.protocol import metric_backend, metric_label
from .model.inference import embed_tag_vectors, resolve_device, track_embeddings
from .plan import base_kind
from .registry import SIDEINFO
from .tagging import load_source_model, source_params  # noqa: F401  (notebook 07 reads transfer.source_params)

MEL_KEYS = MEL_SETTINGS


def with_source_audio(params: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` whose mel settings are the source run's (a model hears only what it was trained on)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in params.items()}
    out["audio"].update({k: source["audio"][k] for k in MEL_KEYS})
    return out


def tag_side_vectors(kind: str, texts: Sequence[str], ds, sideinfo_params: Mapping[str, Any]) -> np.ndarray:
    """Side information of ``kind`` for the target's tag texts, built with the source's parameters.

    No target annotation is shown to the builder (kinds that count co-occurrence get no track)."""
    base = base_kind(kind)
    params = dict(sideinfo_params)
    draw = int(kind.split("@", 1)[1]) if "@" in kind else 0
    p = dict(params[base]) if draw == 0 else {**params[base], "seed": params[base]["seed"] + draw}
    ctx = Context(list(texts), ds.tags, ds.label_matrix(), np.array([], dtype=int), ds.root)
    like = p.get("like")  # a kind sized like another (the random control) needs that one built first
    kinds = ([like] if like and like != base else []) + [base]
    table = build_tables(ctx, {**params, "kinds": kinds, base: {**p, "draws": 1} if "draws" in p else p})[base]
    return table.vectors


def embed_target(run_dir: str | os.PathLike, src: Mapping[str, Any], ds, name: str = "joint",
                 device: str = "cpu", progress: bool = False) -> Embeddings:
    """Every target track with a mel and every target tag in the source model's joint space."""
    device = resolve_device(device)
    model, info = load_source_model(run_dir, name, device)
    kind = info["arch"]["sideinfo"]
    ids = [t for t in ds.tracks.track_id if t in ds.mels]
    if not ids:
        raise DataError(f"{ds.root}: no target track has a mel; run stage 01 of the target first")
    e = src["embed"]
    tracks = track_embeddings(model.audio, ds.mels, ids, info["mean"], info["std"], info["arch"]["segment_frames"],
                              e["batch_segments"], e["normalize_segments"], device, progress)
    texts = ds.tag_texts
    side = tag_side_vectors(kind, texts, ds, src["sideinfo"]).astype(np.float32)
    seen = np.isin(texts, info["seen"])
    return Embeddings(ids, tracks, texts, embed_tag_vectors(model, side, device), seen, side,
                      {"sideinfo": kind, "model": name, "source_run": str(Path(run_dir).resolve()),
                       "checkpoint_epoch": info["epoch"], "encoder": info["arch"]["encoder"],
                       "control": SIDEINFO[base_kind(kind)].control})


def seen_report(emb: Embeddings) -> pd.DataFrame:
    """Per target tag: seen by the source (X), has a side-information vector, positives."""
    return pd.DataFrame({"tag": emb.tags, "seen_by_source": emb.seen, "has_vector": emb.scorable})


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
    model = f"transfer {emb.meta['model']} ({emb.meta['sideinfo']})"
    ok = emb.scorable
    sets = {"T": ok, "T unseen by source": ok & ~emb.seen}
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
        if set_name != "T" and ev["permutations"] and len(tags) > 1:
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
    rows.append({"model": model, "train_setting": source_name, "test_setting": "target", "task": "tags",
                 "metric": "target tags seen by the source", "value": int(emb.seen.sum()), "n": len(emb.tags)})
    rows.append({"model": model, "train_setting": source_name, "test_setting": "target", "task": "tags",
                 "metric": "target tags without side information", "value": int((~ok).sum()), "n": len(emb.tags)})
    return rows
