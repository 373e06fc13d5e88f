"""Zero-shot heads: how every tag, seen or unseen, is scored against a track from its side
information.

Heads are registered in :data:`zslkit.registry.HEADS`, compared in stage 05 by
``evaluate.heads``, each with its own section ``heads.<name>``. A head is a function
``head(inp, params) -> scorer``; ``scorer(tracks)`` maps track embeddings
``np.ndarray [shape=(n_tracks, d)]`` to scores ``np.ndarray [shape=(n_tracks, n_tags)]`` over every
tag, seen then unseen (the rows of ``inp.side``); tags without side information (NaN rows) get NaN
columns from every built-in head:

- ``inp`` is a :class:`HeadInput` built from one model's frozen embeddings (stage 04). A head may
  fit on seen-tag data only: ``inp.side[inp.seen]``, ``inp.learned[inp.seen]`` and the training
  tracks' seen labels. Unseen rows of ``inp.side`` are only mapped, never fitted on:
  :func:`apply_head` re-runs the head with those rows replaced by noise and refuses a head whose
  seen-tag scores move.
- Flag ``trained``: the head is learned with the audio encoder in stage 03 (the paper's tag
  branch); its section is read by training, and stage 04 stores its output.

Built-in heads
--------------
- ``learned``: the paper's tag branch; score = cosine(track, branch(side)).
- ``conse`` (Norouzi et al., ICLR 2014): a track's ``top`` best seen tags by the learned model's
  cosine score, their scores passed through a softmax with temperature ``temperature``, give a
  convex combination of those tags' unit-length side-information vectors; every tag is scored by
  the cosine of its own side information with that combination.
- ``ridge``: a closed-form ridge map ``W`` from side information to the learned seen-tag
  embeddings, ``min ||S W - E||^2 + alpha ||W||^2`` over seen tags; score = cosine(track, s W).
- ``eszsl`` (Romera-Paredes & Torr, ICML 2015): the bilinear map
  ``V = (X X^T + gamma I)^-1 X Y S^T (S S^T + lambda I)^-1`` fitted on the training tracks'
  unit-length embeddings ``X`` (d x n), their seen labels ``Y`` in {-1, +1} (n x z) and the seen
  tags' side information ``S`` (a x z); score = ``x^T V s`` with ``x`` the unit-length track
  embedding and ``s`` the tag's side information as is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import DataError
from ..model.inference import cosine_scores, unit
from ..registry import HEADS

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class HeadInput:
    """Frozen embeddings a head works from.

    Attributes
    ----------
    side : np.ndarray [shape=(n_tags, side_dim), dtype=float32]
        Side information, seen tags (X) then unseen (Y); NaN rows for tags that have none.
    seen : np.ndarray [shape=(n_tags,), dtype=bool]
    learned : np.ndarray [shape=(n_tags, d), dtype=float32]
        The trained tag branch applied to ``side`` (NaN rows stay NaN).
    train_tracks : np.ndarray [shape=(n_train, d), dtype=float32]
        Embeddings of the training tracks (the training setting's ``_train`` part).
    train_labels : np.ndarray [shape=(n_train, n_seen), dtype=bool]
        Their seen-tag labels; column ``j`` is the ``j``-th seen tag in row order of ``side``.
    """

    side: np.ndarray
    seen: np.ndarray
    learned: np.ndarray
    train_tracks: np.ndarray
    train_labels: np.ndarray

    def seen_rows(self) -> np.ndarray:
        """Indices of the seen tags that have side information (what a head may fit on).

        Returns
        -------
        rows : np.ndarray [shape=(n_fit,), dtype=int]
            Rows of ``side`` and ``learned``, ascending.
        """
        ok = ~np.isnan(self.side).any(axis=1)
        return np.flatnonzero(self.seen & ok)


def learned(inp: HeadInput, params: Mapping[str, Any]) -> Scorer:
    """The paper's tag branch: the cosine of each track with each tag's learned embedding.

    Parameters
    ----------
    inp : HeadInput
    params : mapping
        The section ``heads.learned`` (``hidden`` shapes the branch in training; unused here).

    Returns
    -------
    scorer : callable
        ``np.ndarray [shape=(n_tracks, d)]`` track embeddings -> ``np.ndarray [shape=(n_tracks, n_tags)]``
        scores: ``cosine(track, inp.learned[tag])``.
    """
    return lambda tracks: cosine_scores(tracks, inp.learned)


def conse(inp: HeadInput, params: Mapping[str, Any]) -> Scorer:
    """ConSE: each track becomes a softmax-weighted mix of its best seen tags' side information.

    Parameters
    ----------
    inp : HeadInput
    params : mapping
        The section ``heads.conse``: ``top`` (seen tags mixed per track, at most the seen tags with
        side information) and ``temperature`` (of the softmax over their cosine scores).

    Returns
    -------
    scorer : callable
        ``np.ndarray [shape=(n_tracks, d)]`` track embeddings -> ``np.ndarray [shape=(n_tracks, n_tags)]``
        scores: the cosine of each tag's side information with the track's mix.
    """
    rows = inp.seen_rows()
    seen_emb, seen_side = inp.learned[rows], unit(inp.side[rows])
    all_side = unit(inp.side)
    top = min(params["top"], len(rows))

    def score(tracks: np.ndarray) -> np.ndarray:
        sims = cosine_scores(tracks, seen_emb)                             # (n, n_seen_ok)
        keep = np.argpartition(-sims, top - 1, axis=1)[:, :top]
        picked = np.take_along_axis(sims, keep, axis=1) / params["temperature"]
        weights = np.exp(picked - picked.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        mix = np.einsum("nk,nkd->nd", weights, seen_side[keep])             # (n, side_dim)
        return cosine_scores(mix, all_side)
    return score


def ridge_map(side: np.ndarray, target: np.ndarray, alpha: float) -> np.ndarray:
    """Closed-form ridge regression ``W = argmin ||side W - target||^2 + alpha ||W||^2``.

    Parameters
    ----------
    side : np.ndarray [shape=(n, side_dim)]
        Inputs, one row per tag.
    target : np.ndarray [shape=(n, d)]
        Targets, one row per tag.
    alpha : float
        Ridge penalty; 0 needs ``side`` of full column rank (so at least ``side_dim`` rows).

    Returns
    -------
    W : np.ndarray [shape=(side_dim, d)]
    """
    a = side.T @ side + alpha * np.eye(side.shape[1])
    return np.linalg.solve(a, side.T @ target)


def ridge(inp: HeadInput, params: Mapping[str, Any]) -> Scorer:
    """A ridge map from side information to the learned embeddings of the seen tags, applied to every tag.

    Parameters
    ----------
    inp : HeadInput
    params : mapping
        The section ``heads.ridge``: ``alpha`` (the ridge penalty of :func:`ridge_map`).

    Returns
    -------
    scorer : callable
        ``np.ndarray [shape=(n_tracks, d)]`` track embeddings -> ``np.ndarray [shape=(n_tracks, n_tags)]``
        scores: ``cosine(track, inp.side[tag] @ W)``.
    """
    rows = inp.seen_rows()
    w = ridge_map(inp.side[rows].astype(np.float64), inp.learned[rows].astype(np.float64), params["alpha"])
    tags = (inp.side.astype(np.float64) @ w).astype(np.float32)
    return lambda tracks: cosine_scores(tracks, tags)


def eszsl_map(x: np.ndarray, y: np.ndarray, s: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """ESZSL's closed form ``V = (X X^T + gamma I)^-1 X Y S^T (S S^T + lambda I)^-1``.

    Parameters
    ----------
    x : np.ndarray [shape=(d, n)]
        Features, one column per training track.
    y : np.ndarray [shape=(n, z)]
        Labels in {-1, +1}, one column per seen tag.
    s : np.ndarray [shape=(a, z)]
        Side information, one column per seen tag.
    gamma : float
        Penalty on the feature side.
    lam : float
        Penalty on the side-information side.

    Returns
    -------
    V : np.ndarray [shape=(d, a)]
        A feature vector ``x`` and side information ``s`` score ``x^T V s``.
    """
    left = np.linalg.solve(x @ x.T + gamma * np.eye(x.shape[0]), x @ y @ s.T)
    return np.linalg.solve((s @ s.T + lam * np.eye(s.shape[0])).T, left.T).T


def eszsl(inp: HeadInput, params: Mapping[str, Any]) -> Scorer:
    """ESZSL: a bilinear map fitted on the training tracks' seen labels (:func:`eszsl_map`).

    Parameters
    ----------
    inp : HeadInput
    params : mapping
        The section ``heads.eszsl``: ``gamma`` (feature side) and ``lam`` (side-information side).

    Returns
    -------
    scorer : callable
        ``np.ndarray [shape=(n_tracks, d)]`` track embeddings -> ``np.ndarray [shape=(n_tracks, n_tags)]``
        scores: ``unit(track) @ V @ inp.side[tag]``.
    """
    rows = inp.seen_rows()
    col = {r: j for j, r in enumerate(np.flatnonzero(inp.seen))}           # seen tag -> label column
    y = np.where(inp.train_labels[:, [col[r] for r in rows]], 1.0, -1.0)
    x = unit(inp.train_tracks.astype(np.float64)).T
    v = eszsl_map(x, y, inp.side[rows].astype(np.float64).T, params["gamma"], params["lam"])
    side = inp.side.astype(np.float64)
    return lambda tracks: (unit(tracks.astype(np.float64)) @ v @ side.T).astype(np.float32)


def apply_head(name: str, inp: HeadInput, params: Mapping[str, Any], probe_tracks: np.ndarray) -> Scorer:
    """Build head ``name`` on ``inp`` and check it before use.

    Two checks: the scorer returns one score column per tag, and unseen side information cannot
    move any seen tag's scores on ``probe_tracks`` (a head that fits on unseen tags fails). For the
    second, when there are both seen and unseen tags, the head is rebuilt with the unseen rows of
    ``inp.side`` replaced by Gaussian noise and its seen columns must agree within 1e-4;
    ``inp.learned`` is left as it is.

    Parameters
    ----------
    name : str
        A head registered in :data:`zslkit.registry.HEADS`.
    inp : HeadInput
    params : mapping
        The head's section ``heads.<name>``.
    probe_tracks : np.ndarray [shape=(n_probe, d)]
        Track embeddings the checks score (stage 05 passes the first 64).

    Returns
    -------
    scorer : callable
        ``np.ndarray [shape=(n_tracks, d)]`` track embeddings -> ``np.ndarray [shape=(n_tracks, n_tags)]``
        scores, from the head built on ``inp``.

    Raises
    ------
    DataError
        If either check fails.
    """
    head: Callable = HEADS[name].obj
    scorer = head(inp, params)
    out = np.asarray(scorer(probe_tracks), dtype=np.float32)
    if out.shape != (len(probe_tracks), len(inp.side)):
        raise DataError(f"head {name!r} returned scores of shape {out.shape} for {len(probe_tracks)} tracks and "
                        f"{len(inp.side)} tags")
    if (~inp.seen).any() and inp.seen.any():
        side = inp.side.copy()
        rng = np.random.default_rng(0)
        side[~inp.seen] = rng.standard_normal(side[~inp.seen].shape).astype(np.float32)
        probe = HeadInput(side, inp.seen, inp.learned, inp.train_tracks, inp.train_labels)
        again = np.asarray(head(probe, params)(probe_tracks), dtype=np.float32)
        if not np.allclose(again[:, inp.seen], out[:, inp.seen], atol=1e-4, equal_nan=True):
            raise DataError(f"head {name!r} uses unseen tags' side information for seen tags: it fits on "
                            "unseen tags")
    return scorer
