"""One memory map holding many tracks' log-mels, for fast random crops during training.

Conventions
-----------
- A pack is ``<folder>/<digest>.npy``, shape ``(total_frames, n_mels)``, the tracks' frames one
  after another in the given order, in the store's dtype (float16 for zslkit's own mels; float32
  if any file is float32), plus ``<digest>.index.npz`` with ``track_ids``, ``offsets`` and
  ``n_frames`` (the format of a preprocessing shard, :mod:`zslkit.data.melstore`). The digest covers
  the track ids and where each mel lives (file, offset, the file's size and mtime), so a pack is
  rebuilt when any mel changes and reused otherwise.
- Both files are written atomically, the index last: a killed build leaves no pack behind.
- A crop of ``length`` frames starting at ``start`` reads rows ``offset + (start + j) % n_frames``:
  for clips shorter than ``length`` (start 0) this is the original's tiling by self-concatenation,
  for the rest it is a plain slice. A batch of crops is one fancy-indexing read of the map.
- The map is opened lazily and dropped when pickled, so DataLoader workers open their own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataError
from ..io import atomic_path
from .melstore import MelStore, frame_offsets, shard_index, write_shard_index


class MelPack:
    """Random crops from a pack built by :func:`build_pack` (or an existing one)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index = shard_index(self.path)
        self.track_ids = [str(t) for t in index["track_ids"]]
        self.offsets = index["offsets"].astype(np.int64)
        self.n_frames = index["n_frames"].astype(np.int64)
        self._frames = None

    def __len__(self) -> int:
        return len(self.track_ids)

    def __getstate__(self):
        return {**self.__dict__, "_frames": None}

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = np.load(self.path, mmap_mode="r")
        return self._frames

    def crops(self, idx: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """Crops ``(len(idx), length, n_mels)`` of tracks ``idx`` (positions in the pack), in the
        pack's dtype (convert with torch, which does float16 -> float32 ~10x faster than numpy)."""
        idx = np.asarray(idx, dtype=np.int64)
        rows = (np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)) % self.n_frames[idx, None]
        rows += self.offsets[idx, None]
        return self.frames[rows.ravel()].reshape(len(idx), length, -1)


def build_pack(track_ids: Sequence[str], mels: MelStore | Sequence[str | os.PathLike], folder: str | os.PathLike,
               progress: bool = True) -> MelPack:
    """Copy the tracks' mels, in this order, into one memory map under ``folder`` (or reuse it).

    Parameters
    ----------
    track_ids : the tracks
    mels : the :class:`~zslkit.data.melstore.MelStore` holding them, or their per-track ``.npy`` files
        ``(n_frames, n_mels)`` in the order of ``track_ids``
    folder : where packs are kept (one per set of tracks)

    Returns
    -------
    MelPack
    """
    if not isinstance(mels, MelStore):
        if len(mels) != len(track_ids):
            raise DataError(f"{len(track_ids)} tracks but {len(mels)} mel files")
        mels = MelStore(dict(zip(track_ids, mels)))
    folder = Path(folder)
    if not track_ids:
        raise DataError("cannot pack an empty set of tracks")
    path = folder / f"{mels.signature(track_ids)}.npy"
    index_path = path.with_suffix(".index.npz")
    if index_path.is_file() and path.is_file():
        return MelPack(path)
    shapes, dtypes = [], set()
    for t in track_ids:
        mel = mels[t]
        if mel.ndim != 2 or len(mel) == 0:
            raise DataError(f"{mels.file(t)}: mel of track {t!r} has shape {mel.shape}, expected (n_frames>0, n_mels)")
        shapes.append(mel.shape)
        dtypes.add(mel.dtype)
    n_mels = {s[1] for s in shapes}
    if len(n_mels) > 1:
        raise DataError(f"mels under {mels.file(track_ids[0]).parent} have different band counts {sorted(n_mels)}")
    n_frames = np.array([s[0] for s in shapes], dtype=np.int64)
    offsets = frame_offsets(n_frames)
    dtype = np.float16 if dtypes == {np.dtype(np.float16)} else np.float32
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(int(n_frames.sum()), n_mels.pop()))
        for t, o, n in tqdm(list(zip(track_ids, offsets, n_frames)), desc="packing mels", unit="track",
                            disable=not progress, leave=False):
            out[o:o + n] = mels[t]
        out.flush()
        del out
    write_shard_index(path, track_ids, n_frames)
    return MelPack(path)
