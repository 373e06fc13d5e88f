"""The supervised-source ConSE peer: a pretrained tagger's own tag probabilities, carried to any tag through side
information.

ConSE (Norouzi et al., ICLR 2014) run on a *source* classifier instead of the run's seen tags: musicnn
(``evaluate.source_conse.source``, MTT_musicnn by default) gives every clip 50 tag probabilities ``p`` (the mean over
its 3-s patches of the network's sigmoid output; the feature cache's layer ``taggram``, computed once per dataset).
For each track, its ``top`` source tags by ``p`` give the convex combination

    ``m = sum_t p_t s(t) / sum_t p_t``

of those tags' unit-length side-information vectors ``s(t)`` (the source tags' *names*, embedded by a free-text
kind of ``evaluate.source_conse.sideinfo``: ``glove``, ``sentence``); every tag of the dataset is scored by the
cosine of its own side information with ``m``. Both sides are built as free text
(:func:`zslkit.data.sideinfo.text_vectors`, with the run's ``sideinfo.<kind>`` parameters): a tag's vector is that of
its name, which for ``sentence`` may differ from the run's own table when that one reads descriptions.

Nothing is fitted on the dataset: no track, label or seen tag of the run enters it. What it learned comes from the
source's corpus and labels. So a tag of the dataset that the source was supervised on (the same name or a synonym:
:mod:`zslkit.data.leakage`) is **not zero-shot** for it: its number measures supervised recognition, carried
through its own name. Stage 05 scores the peer on every setting, with its ``model`` label
``supervised-source conse <kind> (<source>)`` (:func:`zslkit.plan.source_conse_label`), and again on the non-leaky
unseen tags (``non-leaky``); those are the numbers to set beside a zero-shot model. Transfer (stage 07) scores it on
the target the same way.

Arrays: ``probs [shape=(n_tracks, n_source)]``, side information ``[shape=(n_tags, side_dim)]``; tags without a
side-information vector (NaN rows) get NaN scores, as with every head (:mod:`zslkit.evaluate.heads`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..config import project_root
from ..data.features import BackboneSpec
from ..data.leakage import warning_rows
from ..data.sideinfo import text_vectors
from ..errors import DataError
from ..model.backbones import musicnn
from ..model.frozen import dataset_features
from ..model.inference import cosine_scores, unit
from ..plan import source_conse_label
from .embeddings import Embeddings

#: the layer of the source network whose outputs are mixed: its tag probabilities
SOURCE_LAYER = "taggram"


def source_spec(source: str) -> BackboneSpec:
    """The backbone computing ``source``'s tag probabilities (musicnn ``variant``, layer :data:`SOURCE_LAYER`)."""
    return BackboneSpec("musicnn", {"variant": source, "layer": SOURCE_LAYER}, (), str(project_root()))


def conse_scores(probs: np.ndarray, source_side: np.ndarray, tag_side: np.ndarray, top: int) -> np.ndarray:
    """ConSE over a source classifier's probabilities (module doc).

    Parameters
    ----------
    probs : np.ndarray [shape=(n_tracks, n_source)]
        The source's tag probabilities (non-negative).
    source_side : np.ndarray [shape=(n_source, side_dim)]
        Side information of the source's tag names; NaN rows for names without a vector (never mixed).
    tag_side : np.ndarray [shape=(n_tags, side_dim)]
        Side information of the tags to score; NaN rows give NaN columns.
    top : int
        Source tags mixed per track (ConSE's T), at most those with a vector. A track whose probabilities are all
        zero gets the mean of every source tag's vector.

    Returns
    -------
    scores : np.ndarray [shape=(n_tracks, n_tags), dtype=float32]

    Raises
    ------
    DataError
        When no source tag has a vector, or a probability is negative or not finite.
    ValueError
        When ``top`` is below 1.
    """
    if int(top) < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    probs = np.asarray(probs, dtype=np.float64)
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise DataError(f"source tag probabilities must be finite and >= 0; got min {np.nanmin(probs):.3g}")
    ok = np.flatnonzero(~np.isnan(source_side).any(axis=1))
    if not len(ok):
        raise DataError("no source tag name has a side-information vector: supervised-source ConSE cannot mix any")
    p, side = probs[:, ok], unit(np.asarray(source_side, dtype=np.float32)[ok])
    k = min(int(top), len(ok))
    keep = np.argpartition(-p, k - 1, axis=1)[:, :k]                        # (n, k)
    w = np.take_along_axis(p, keep, axis=1)
    total = w.sum(axis=1, keepdims=True)
    mix = np.einsum("nk,nkd->nd", (w / np.where(total > 0, total, 1.0)).astype(np.float32), side[keep])
    silent = total[:, 0] <= 0
    mix[silent] = side.mean(axis=0)  # no probability at all: every source tag alike, not an arbitrary k of them
    return cosine_scores(mix, unit(np.asarray(tag_side, dtype=np.float32)))


def source_conse_models(ds, tags: Sequence[str], seen: np.ndarray, params: Mapping[str, Any],
                        progress: bool = False) -> dict[str, Embeddings]:
    """The supervised-source ConSE peer on every track of ``ds``, one per kind of ``evaluate.source_conse.sideinfo``.

    Parameters
    ----------
    ds : Dataset
        Its tracks' source probabilities are read from the feature cache, computed there first when missing
        (:func:`zslkit.model.frozen.dataset_features`; resumable, ``run.workers`` processes).
    tags : sequence of str
        The tags scored (the split's X then Y; a transfer target's tags), texts as the dataset's.
    seen : np.ndarray [shape=(len(tags),), dtype=bool]
        Which of them are seen tags of the run (the peer never uses this: it only names the settings).
    params : mapping
        Resolved parameters: ``evaluate.source_conse``, ``sideinfo`` (each kind's parameters), ``audio``, ``run``.
    progress : bool
        A progress bar while features are computed.

    Returns
    -------
    dict of str -> Embeddings
        ``{label: view}``, label from :func:`zslkit.plan.source_conse_label`; a view's ``tracks`` are the
        probabilities, its ``side`` and ``tag_emb`` the tags' side information, its scorer :func:`conse_scores`;
        ``meta["backbone"]`` records the source, so leakage is marked as for a frozen backbone. Empty when
        ``evaluate.source_conse.sideinfo`` is empty.
    """
    sc = params["evaluate"]["source_conse"]
    if not sc["sideinfo"]:
        return {}
    spec = source_spec(sc["source"])
    store = dataset_features(ds, spec, params, compute=True, progress=progress)
    ids = [t for t in ds.tracks.track_id if t in store]
    if not ids:
        raise DataError(f"{ds.root}: no track has {sc['source']} tag probabilities (no audio could be read)")
    probs = store.matrix(ids).astype(np.float32)
    vocabulary = list(musicnn.labels(sc["source"]))
    if probs.shape[1] != len(vocabulary):
        raise DataError(f"{ds.root}: the cached {spec.params} features have {probs.shape[1]} columns, "
                        f"{sc['source']} has {len(vocabulary)} tags; delete the cache folder and rerun")
    record = {k: store.meta[k] for k in ("key", "supervised_on")}  # what the cache recorded: no weights loaded
    out = {}
    for kind in sc["sideinfo"]:
        source_side = text_vectors(vocabulary, kind, params["sideinfo"])
        tag_side = text_vectors(list(tags), kind, params["sideinfo"]).astype(np.float32)
        label = source_conse_label(sc["source"], kind)

        def scorer(tracks, source_side=source_side, tag_side=tag_side):
            return conse_scores(tracks, source_side, tag_side, sc["top"])
        out[label] = Embeddings(ids, probs, list(tags), tag_side, np.asarray(seen, dtype=bool), tag_side,
                                {"sideinfo": kind, "model": label, "label": label, "head": "source conse",
                                 "backbone": record, "n_source_tags": len(vocabulary),
                                 "source_tags_without_vector": [t for t, v in zip(vocabulary, source_side)
                                                                if np.isnan(v).any()]},
                                scorer)
    return out


def peer_rows(view: Embeddings, params: Mapping[str, Any], train_setting: str) -> list[dict]:
    """A peer's rows beside its scores (stages 05 and 07): the warning when the dataset is (or overlaps) its
    source's training corpus (:func:`zslkit.data.leakage.warning_rows`), and how many source tag names had no
    side-information vector, so were never mixed (``task = tags``; a row only when some had none)."""
    rows = warning_rows(params, view.meta["backbone"], view.meta["label"], train_setting)
    missing = view.meta["source_tags_without_vector"]
    if missing:
        rows.append({"model": view.meta["label"], "train_setting": train_setting, "test_setting": ", ".join(missing),
                     "task": "tags", "metric": "source tags without side information", "value": len(missing),
                     "n": view.meta["n_source_tags"]})
    return rows
