"""Agreement with a supervised tagger on real audio: a second measure beside a target's few honest tags, labelled as
agreement and never as truth.

Real recordings with tags their packages prove are few, and their instrument tags fewer (the real-recordings check
has `guitar` alone). A supervised tagger trained on real music (musicnn, ``MTT_musicnn``: 50 MagnaTagATune tags)
says something about every clip for the tags it knows. For each tag the source run and the tagger share (the demo
and MTT share 14: cello, choir, dance, fast, flute, guitar, harp, harpsichord, piano, sitar, slow, solo, strings,
violin), the source model's score of that tag on the target's clips is set against the tagger's probability,
clip by clip: Spearman's rho per tag, and its mean over the shared tags. A model that hears on real audio what the
tagger hears agrees; musicnn's own errors are in the number too, which is why it is agreement.

Not for a source model built on the same tagger's features (``model.encoder: musicnn``): its agreement would be
the tagger agreeing with itself; :func:`agreement_rows` says so instead of scoring it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..model.backbones import musicnn
from ..model.frozen import dataset_features
from ..model.inference import cosine_scores
from .embeddings import Embeddings
from .source_conse import source_spec


def spearman_per_tag(scores: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Spearman's rho of each column of ``scores`` with the same column of ``probs`` (average ranks for ties; NaN
    where either column is constant).

    Parameters
    ----------
    scores, probs : np.ndarray [shape=(n_tracks, n_tags)]

    Returns
    -------
    rho : np.ndarray [shape=(n_tags,)]
    """
    from scipy.stats import rankdata

    a, b = rankdata(scores, axis=0), rankdata(probs, axis=0)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((a ** 2).sum(axis=0) * (b ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=0) / den, np.nan)


def tagger_probabilities(ds, tagger: str, params: Mapping[str, Any], track_ids: Sequence[str],
                         progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """The tagger's probabilities of ``track_ids`` (computed once per dataset into its feature cache, resumable):
    ``(probs [shape=(len(track_ids), 50)], the tagger's tag names)``.

    Raises
    ------
    DataError
        A track has no probabilities (its audio could not be read).
    """
    store = dataset_features(ds, source_spec(tagger), params, compute=True, progress=progress)
    missing = [t for t in track_ids if t not in store]
    if missing:
        raise DataError(f"{ds.root}: {len(missing)} track(s) have no {tagger} probabilities, e.g. {missing[0]!r}")
    return store.matrix(list(track_ids)).astype(np.float32), list(musicnn.labels(tagger))


def agreement_rows(model: str, emb: Embeddings, source: Embeddings, probs: np.ndarray, vocabulary: Sequence[str],
                   tagger: str, source_name: str) -> list[dict]:
    """``results.csv`` rows of one transferred model's agreement with the tagger (module doc).

    Parameters
    ----------
    model : str
        The model's label in ``results.csv``.
    emb : Embeddings
        The model on the target: its ``tracks`` (the target's clips) are scored.
    source : Embeddings
        The source run's own stage-04 embeddings of the same model: its tags and their joint-space vectors.
    probs : np.ndarray [shape=(len(emb.track_ids), len(vocabulary))]
        The tagger's probabilities of the same clips.
    vocabulary : sequence of str
        The tagger's tag names.
    tagger, source_name : str
        For the rows.

    Returns
    -------
    list of dict
        One row per shared tag (``labels``: the tag) and their mean (``labels``: ``mean``), task ``agreement``;
        a single ``skipped`` row when the model stands on the tagger's own features or no tag is shared.
    """
    common = {"model": model, "train_setting": source_name, "task": "agreement",
              "test_setting": f"target-T, tags shared with {tagger}"}
    metric = f"Spearman rho with {tagger} (agreement, not truth)"
    backbone = (emb.meta.get("backbone") or {}).get("key", "")
    if "musicnn" in str(backbone) or emb.meta.get("encoder") == "musicnn":
        return [{**common, "metric": "skipped", "labels": f"the model stands on musicnn's features: its agreement "
                 f"with {tagger} would be the tagger agreeing with itself"}]
    shared = [t for t in source.tags if t in vocabulary]
    if not shared:
        return [{**common, "metric": "skipped", "labels": f"no tag of the source run is one of {tagger}'s"}]
    index = [list(source.tags).index(t) for t in shared]
    scores = cosine_scores(emb.tracks, source.tag_emb[index])
    rho = spearman_per_tag(scores, probs[:, [list(vocabulary).index(t) for t in shared]])
    rows = [{**common, "metric": metric, "labels": t, "value": float(r), "n": len(emb.track_ids)}
            for t, r in zip(shared, rho)]
    return rows + [{**common, "metric": metric, "labels": "mean", "value": float(np.nanmean(rho)),
                    "n": len(shared)}]
