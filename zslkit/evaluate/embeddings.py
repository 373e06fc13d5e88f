"""What stage 04 writes and stages 05 and later read: a trained model's frozen embeddings.

- :class:`Embeddings` (``embeddings/<model>.npz``): a joint model's space. Every track with a mel
  (the segment-averaged audio embedding) and every tag of the split, seen (X) then unseen (Y): the
  tag branch applied to its side information, with the side information itself kept beside it.
- :class:`ClassifierScores` (``embeddings/classifier.npz``): the supervised classifier's logits
  over the seen tags for every track.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import DataError
from ..io import read_npz, save_npz
from ..model.inference import cosine_scores


@dataclass
class Embeddings:
    """The joint space of one run: every track with a mel and every tag of the split (X, then Y).

    Attributes
    ----------
    track_ids : list of str [length=n_tracks]
    tracks : np.ndarray [shape=(n_tracks, d), dtype=float32]
        Segment-averaged audio embeddings, rows in ``track_ids`` order.
    tags : list of str [length=n_tags]
        The seen tags X in split order, then the unseen tags Y.
    tag_emb : np.ndarray [shape=(n_tags, d), dtype=float32]
        The tag branch applied to the side information; NaN rows for tags that have no
        side-information vector (they cannot be scored).
    seen : np.ndarray [shape=(n_tags,), dtype=bool]
    side : np.ndarray [shape=(n_tags, side_dim), dtype=float32]
        The side information itself (the tag branch's input); NaN rows as in ``tag_emb``.
    meta : dict
        Provenance (side-information kind, checkpoint epoch, split, averaging; ``head`` for a
        view of :meth:`with_scorer`).
    scorer : callable or None
        A zero-shot head's scorer, ``[shape=(n_tracks, d)]`` -> ``[shape=(n_tracks, n_tags)]``;
        None scores by the cosine with ``tag_emb``. Not saved.
    track_row, tag_row : dict of str to int
        Row of each track in ``tracks`` and of each tag in ``tag_emb`` (built on construction).
    """

    track_ids: list[str]
    tracks: np.ndarray
    tags: list[str]
    tag_emb: np.ndarray
    seen: np.ndarray
    side: np.ndarray
    meta: dict = field(default_factory=dict)
    scorer: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self):
        self._scored = None
        self.track_row = {t: i for i, t in enumerate(self.track_ids)}
        self.tag_row = {t: i for i, t in enumerate(self.tags)}

    @property
    def scorable(self) -> np.ndarray:
        """Tags with a side-information vector (and hence an embedding).

        Returns
        -------
        scorable : np.ndarray [shape=(n_tags,), dtype=bool]
        """
        return ~np.isnan(self.tag_emb).any(axis=1)

    def tag_vector(self, tag: str) -> np.ndarray:
        """The learned embedding of one tag.

        Parameters
        ----------
        tag : str

        Returns
        -------
        vector : np.ndarray [shape=(d,), dtype=float32]
            Its row of ``tag_emb``.

        Raises
        ------
        DataError
            If the tag is not in this run's split or has no side-information vector.
        """
        if tag not in self.tag_row:
            raise DataError(f"tag {tag!r} is not in this run's split ({len(self.tags)} tags)")
        vec = self.tag_emb[self.tag_row[tag]]
        if np.isnan(vec).any():
            raise DataError(f"tag {tag!r} has no side-information vector ({self.meta.get('sideinfo')})")
        return vec

    def with_scorer(self, scorer: Callable[[np.ndarray], np.ndarray], head: str) -> "Embeddings":
        """The same tracks and tags, scored by a zero-shot head instead of the cosine with ``tag_emb``.

        Parameters
        ----------
        scorer : callable
            ``np.ndarray [shape=(n_tracks, d)]`` -> ``np.ndarray [shape=(n_tracks, n_tags)]``: scores
            over every tag (:func:`zslkit.evaluate.heads.apply_head`).
        head : str
            The head's name, recorded as ``meta["head"]``.

        Returns
        -------
        view : Embeddings
            Shares this one's arrays; scores every track once, on its first call to :meth:`scores`.
        """
        return Embeddings(self.track_ids, self.tracks, self.tags, self.tag_emb, self.seen, self.side,
                          {**self.meta, "head": head}, scorer)

    def scores(self, track_ids: Sequence[str] | None = None, tags: Sequence[str] | None = None) -> np.ndarray:
        """Scores of tracks against tags: the cosine with ``tag_emb``, or the head's when there is a ``scorer``.

        Parameters
        ----------
        track_ids : sequence of str or None
            Rows, in this order; None = every track.
        tags : sequence of str or None
            Columns, in this order; None = every tag.

        Returns
        -------
        scores : np.ndarray [shape=(len(track_ids), len(tags)), dtype=float32]
            NaN columns for tags without side information (cosine and every built-in head).

        Raises
        ------
        DataError
            For a track or tag this run does not have.
        """
        rows = slice(None) if track_ids is None else [self._track(t) for t in track_ids]
        cols = slice(None) if tags is None else [self._tag(t) for t in tags]
        if self.scorer is not None:  # scored once for all tracks: a track's score never depends on its batch
            if self._scored is None:
                self._scored = np.asarray(self.scorer(self.tracks), dtype=np.float32)
            return self._scored[rows][:, cols]
        return cosine_scores(self.tracks[rows], self.tag_emb[cols])

    def _track(self, t: str) -> int:
        if t not in self.track_row:
            raise DataError(f"track {t!r} has no embedding in this run")
        return self.track_row[t]

    def _tag(self, t: str) -> int:
        if t not in self.tag_row:
            raise DataError(f"tag {t!r} is not in this run's split")
        return self.tag_row[t]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the arrays and ``meta`` (as JSON) to ``path`` (``.npz``, atomically; the scorer is not saved).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        path : Path
        """
        save_npz(path, track_ids=np.array(self.track_ids, dtype=str), tracks=self.tracks,
                 tags=np.array(self.tags, dtype=str), tag_emb=self.tag_emb, seen=self.seen,
                 side=self.side, meta=np.array(json.dumps(self.meta)))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Embeddings":
        """Read what :meth:`save` wrote (without a scorer).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        emb : Embeddings

        Raises
        ------
        DataError
            If the file is missing.
        """
        z = read_npz(path, "embeddings not found; run notebook 04 first")
        return cls(z["track_ids"].tolist(), z["tracks"], z["tags"].tolist(), z["tag_emb"],
                   z["seen"], z["side"], json.loads(str(z["meta"])))



@dataclass
class ClassifierScores:
    """The supervised classifier's logits.

    Attributes
    ----------
    track_ids : list of str [length=n_tracks]
    tags : list of str [length=n_seen]
        The seen tags in split order.
    logits : np.ndarray [shape=(n_tracks, n_seen), dtype=float32]
    meta : dict
        Provenance (checkpoint epoch, split).
    track_row : dict of str to int
        Row of each track in ``logits`` (built on construction).
    """

    track_ids: list[str]
    tags: list[str]
    logits: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.track_row = {t: i for i, t in enumerate(self.track_ids)}

    def scores(self, track_ids: Sequence[str]) -> np.ndarray:
        """The logits of some tracks over every seen tag.

        Parameters
        ----------
        track_ids : sequence of str
            Rows, in this order.

        Returns
        -------
        logits : np.ndarray [shape=(len(track_ids), n_seen), dtype=float32]

        Raises
        ------
        DataError
            For a track without classifier scores.
        """
        missing = [t for t in track_ids if t not in self.track_row]
        if missing:
            raise DataError(f"track {missing[0]!r} has no classifier scores in this run")
        return self.logits[[self.track_row[t] for t in track_ids]]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the arrays and ``meta`` (as JSON) to ``path`` (``.npz``, atomically).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        path : Path
        """
        save_npz(path, track_ids=np.array(self.track_ids, dtype=str), tags=np.array(self.tags, dtype=str),
                 logits=self.logits, meta=np.array(json.dumps(self.meta)))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ClassifierScores":
        """Read what :meth:`save` wrote.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        scores : ClassifierScores

        Raises
        ------
        DataError
            If the file is missing.
        """
        z = read_npz(path, "classifier scores not found; run notebook 04 first")
        return cls(z["track_ids"].tolist(), z["tags"].tolist(), z["logits"], json.loads(str(z["meta"])))
