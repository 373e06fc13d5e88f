"""Training data: the setting's tracks, their random crops, and their sampled tags.

Conventions
-----------
- An epoch is a seeded shuffle of the setting's training tracks (A, B or A+B train), each listed
  ``crops_per_track`` times (paper: once), cut into ``floor(n * crops_per_track / batch_size)``
  batches. Each entry gives one random crop of ``segment_frames`` frames (clips shorter than that
  are tiled). Crops are read from a pack of the tracks' mels (:mod:`zslkit.data.melpack`,
  ``train.pack``) or from the mel store's memory maps (shards or per-track files,
  :mod:`zslkit.data.melstore`); both give identical batches. Crops travel in the
  store's dtype (float16); the trainer standardises them.
- Each crop gets one positive drawn uniformly from the track's seen (X) tags and ``negatives``
  (K) distinct tags drawn uniformly from the X tags it is not annotated with.
- Validation is deterministic: batch ``b`` of every epoch uses the same crops and negatives
  (seeded by ``(seed, 'valid', b)``), so the validation loss can select the checkpoint.
- Batches are seeded by ``(seed, epoch, b)``: the same data whatever the number of workers, and a
  resumed run continues exactly where an uninterrupted run would be. Under ``torchrun`` every
  process draws the same plan and keeps its share of the rows (:mod:`zslkit.model.distributed`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..data.melpack import build_pack
from ..data.melstore import MelStore
from ..errors import DataError
from .distributed import Context


@dataclass
class TrackSet:
    """Training or validation tracks with their seen-tag positives (X indices)."""

    track_ids: list[str]
    store: MelStore            # where their mels are (per-track files or shards)
    n_frames: np.ndarray
    positives: np.ndarray      # bool (n_tracks, n_X)

    def __len__(self) -> int:
        return len(self.track_ids)


def track_set(ds, track_ids: Sequence[str], seen: Sequence[str], store=None) -> TrackSet:
    """Tracks with mels (or with vectors in ``store``: a frozen backbone's
    :class:`~zslkit.data.features.FeatureStore`) and at least one seen positive, with their X-label matrix."""
    store = ds.mels if store is None else store
    keep = [t for t in track_ids if t in store]
    labels = ds.labels(keep, seen)
    ok = labels.any(axis=1)
    keep = [t for t, k in zip(keep, ok) if k]
    return TrackSet(keep, store, store.n_frames(keep), labels[ok])


def pack_tracks(ds, tracks: TrackSet, progress: bool = True):
    """The tracks' mels in one memory map under ``<dataset>/mels/packs/`` (built once, then reused)."""
    if not len(tracks):
        return None
    return build_pack(tracks.track_ids, tracks.store, ds.root / "mels" / "packs", progress=progress)


def crop(mel: np.ndarray, n_frames: int, start: int, length: int) -> np.ndarray:
    """Frames ``start:start+length`` of a memory-mapped mel (in its dtype), tiling clips shorter
    than ``length``."""
    if n_frames < length:
        mel = np.tile(np.asarray(mel), (math.ceil(length / n_frames), 1))
    return np.array(mel[start:start + length])


def sample_batch(tracks: TrackSet, idx: np.ndarray, rng: np.random.Generator, negatives: int,
                 length: int):
    """Vectorised draws for one batch: crop starts (for crops of ``length`` frames), one positive
    and K negatives per track.

    Returns ``starts (b,)``, ``pos (b,)``, ``neg (b, K)`` as X indices.
    """
    pos_mat = tracks.positives[idx]
    span = np.maximum(tracks.n_frames[idx] - length, 0) + 1
    starts = (rng.random(len(idx)) * span).astype(np.int64)
    counts = pos_mat.sum(axis=1)
    pick = (rng.random(len(idx)) * counts).astype(np.int64)  # the pick-th positive of each row
    pos = np.argmax(np.cumsum(pos_mat, axis=1) > pick[:, None], axis=1)
    if negatives:
        if (pos_mat.shape[1] - counts < negatives).any():
            raise DataError(f"a track has fewer than {negatives} seen negative tags")
        keys = rng.random(pos_mat.shape)
        keys[pos_mat] = np.inf  # positives are never drawn as negatives
        neg = np.argpartition(keys, negatives - 1, axis=1)[:, :negatives]
    else:
        neg = np.zeros((len(idx), 0), dtype=np.int64)
    return starts, pos, neg


class BatchSource(torch.utils.data.Dataset):
    """Batch ``b`` of an epoch (or of the fixed validation pass), built in the main process or a
    DataLoader worker (``train.workers``)."""

    def __init__(self, tracks: TrackSet, batch_size: int, negatives: int, seed: int, segment_frames: int,
                 valid: bool = False, crops_per_track: int = 1, pack=None, part: tuple[int, int] = (0, 1)):
        self.pack = pack  # a melpack.MelPack of these tracks, in order, or None: per-file memory maps
        self.part = part  # (rank, world): this process keeps its share of every batch (zslkit.model.distributed)
        self.tracks, self.batch_size, self.negatives = tracks, batch_size, negatives
        self.seed, self.length, self.valid = seed, segment_frames, valid
        self.crops = 1 if valid else crops_per_track
        self.epoch = 0
        n = len(tracks)
        self.n_batches = math.ceil(n / batch_size) if valid else n * self.crops // batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def plan(self, key) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What batch ``key = (epoch, b)`` (or ``b`` of the current epoch) holds, without its crops:
        track positions ``idx (b,)``, crop ``starts (b,)``, ``pos (b,)`` and ``neg (b, K)`` X indices."""
        epoch, b = key if isinstance(key, tuple) else (self.epoch, key)
        if self.valid:
            idx = np.arange(b * self.batch_size, min((b + 1) * self.batch_size, len(self.tracks)))
            rng = np.random.default_rng([self.seed, 999_983, b])
        else:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.tracks) * self.crops)
            order %= len(self.tracks)  # each track `crops` times, each with its own crop
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            rng = np.random.default_rng([self.seed, epoch, b])
        starts, pos, neg = sample_batch(self.tracks, idx, rng, self.negatives, self.length)
        return idx, starts, pos, neg

    def local_plan(self, key) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """This process's rows of :meth:`plan` (all of them in a single process)."""
        plan = self.plan(key)
        if self.part[1] == 1:
            return plan
        rows = Context(*self.part).share(len(plan[0]))
        return tuple(a[rows] for a in plan)

    def __getitem__(self, key):
        """Batch ``key``: crops ``(b, segment_frames, n_mels)`` in the store's dtype, ``pos``, ``neg`` and
        the tracks' X-label rows, as tensors (:meth:`local_plan` says which)."""
        idx, starts, pos, neg = self.local_plan(key)
        if self.pack is not None:
            x = self.pack.crops(idx, starts, self.length)
        else:
            store, ids = self.tracks.store, self.tracks.track_ids
            x = np.stack([crop(store[ids[i]], int(self.tracks.n_frames[i]), int(s), self.length)
                          for i, s in zip(idx, starts)])
        # crops travel in the store's dtype (half the bytes for float16); the trainer standardises
        return (torch.from_numpy(x), torch.from_numpy(pos), torch.from_numpy(neg),
                torch.from_numpy(self.tracks.positives[idx]))


class EpochKeys(torch.utils.data.Sampler):
    """Yields ``(epoch, b)`` for every batch of the source's current epoch."""

    def __init__(self, source: BatchSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        return iter([(self.source.epoch, b) for b in range(len(self.source))])
