"""The mel store: every track's log-mel, read through memory maps, from per-track files or shards.

Conventions
-----------
- A mel folder holds ``index.csv`` with one row per track: ``track_id, file, n_frames`` and,
  for sharded tracks, ``offset``. ``file`` is relative to the folder (or absolute: the original
  project's mels stay where they are).
- **files** layout (zslkit before 0.3, and imported mels): ``file`` is ``<track>.npy`` of shape
  ``(n_frames, n_mels)``; ``offset`` is empty.
- **shards** layout (what preprocessing writes by default): ``file`` is ``shards/<name>.npy``, shape
  ``(total_frames, n_mels)``, many tracks' frames one after another; the track is rows
  ``offset : offset + n_frames``. Beside each shard, ``<name>.index.npz`` holds its own
  ``track_ids``, ``offsets`` and ``n_frames`` (the same format as a training pack,
  :mod:`zslkit.data.melpack`), written after the shard, so a shard with an index is complete.
- One store may mix both layouts (a folder preprocessed before and resumed after the change).
- Every file is written atomically (a temporary ``.<name>.tmp*`` renamed into place); what a killed
  job leaves (temporary files, a shard without its index) is never read and is removed by
  :func:`remove_leftovers` before preprocessing resumes (:mod:`zslkit.data.preprocess`).
- Memory: the index is held as a pandas Index of the track ids and arrays of files, offsets and
  frame counts (about 200 bytes per track at 400,000 tracks, docs/benchmarks.md); every shard is
  one memory map opened on first use; per-track files are opened on use and at most ``MAX_OPEN`` stay open.
  Maps are dropped when the store is pickled, so DataLoader and Dask workers open their own.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..io import read_npz, save_npy, save_npz, write_csv

#: per-track files kept open at once (each open map costs a kernel mapping; shards are always kept)
MAX_OPEN = 4096
SHARD_DIR = "shards"


class MelStore:
    """Per-track log-mels by track id, from files or shards (module doc).

    ``store[track_id]`` is the track's mel, an np.ndarray [shape=(n_frames, n_mels)] read through
    a memory map.

    Parameters
    ----------
    files : mapping of str to path, optional
        ``track_id`` -> a per-track ``.npy`` file [shape=(n_frames, n_mels)], float16 (zslkit's)
        or float32 (the original project's). Use :meth:`from_dir` for a preprocessed folder.
    """

    def __init__(self, files: Mapping[str, str | os.PathLike] | None = None):
        files = files or {}
        self._init([str(k) for k in files], [str(v) for v in files.values()], Path(),
                   np.full(len(files), -1, np.int64), np.full(len(files), -1, np.int64))

    def _init(self, track_ids: list[str], files: Sequence[str], base: Path, offsets: np.ndarray,
              n_frames: np.ndarray):
        """``files`` as written in the index, relative to ``base`` unless absolute (resolved once per file)."""
        codes, uniques = pd.factorize(pd.Series(files, dtype=object))
        self._ids = pd.Index(track_ids, dtype=object)
        if not self._ids.is_unique:
            dup = self._ids[self._ids.duplicated()][0]
            raise DataError(f"track {dup!r} is listed twice in the mel index")
        self._file_codes = codes.astype(np.int32)
        self._paths = [Path(f) if os.path.isabs(f) else base / f for f in uniques]
        self.offsets, self._n_frames = offsets, n_frames
        self._shard_maps: dict[int, np.ndarray] = {}  # kept open
        self._file_maps: dict[int, np.ndarray] = {}   # at most MAX_OPEN

    @classmethod
    def from_dir(cls, mel_dir: str | os.PathLike) -> "MelStore":
        """Open a mel folder: one written by :func:`zslkit.data.preprocess.preprocess`, or any
        folder with an ``index.csv`` (module doc).

        Parameters
        ----------
        mel_dir : str or os.PathLike
            The folder; relative ``file`` entries of its index are resolved against it.

        Returns
        -------
        store : MelStore

        Raises
        ------
        DataError
            No ``index.csv``, a column missing, or a sharded track without a frame count.
        """
        mel_dir = Path(mel_dir)
        index = mel_dir / "index.csv"
        if not index.is_file():
            raise DataError(f"{index}: mel index not found; run preprocessing first")
        table = pd.read_csv(index, dtype={"track_id": str, "file": str})
        for col in ("track_id", "file"):
            if col not in table:
                raise DataError(f"{index}: no {col!r} column (found {list(table.columns)})")
        offsets = (pd.to_numeric(table["offset"], errors="coerce").fillna(-1).to_numpy(np.int64)
                   if "offset" in table else np.full(len(table), -1, np.int64))
        n_frames = (table["n_frames"].to_numpy(np.int64) if "n_frames" in table
                    else np.full(len(table), -1, np.int64))
        sharded = offsets >= 0
        if (sharded & (n_frames < 1)).any():
            row = int(np.argmax(sharded & (n_frames < 1)))
            raise DataError(f"{index}, line {row + 2}: track {table.track_id[row]!r} is in a shard but has "
                            f"n_frames {n_frames[row]}")
        store = cls.__new__(cls)
        store._init(table.track_id.tolist(), table.file.tolist(), mel_dir, offsets, n_frames)
        return store

    # -- lookup ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, track_id: str) -> bool:
        return str(track_id) in self._ids

    @property
    def track_ids(self) -> list[str]:
        """The stored tracks, in the index's order."""
        return self._ids.tolist()

    def _row(self, track_id: str) -> int:
        try:
            return self._ids.get_loc(str(track_id))
        except KeyError:
            raise DataError(f"track {track_id!r} has no mel in this store") from None

    def location(self, track_id: str) -> tuple[Path, int, int]:
        """Where a track's mel is.

        Parameters
        ----------
        track_id : str

        Returns
        -------
        file : Path
            Its own ``.npy`` or its shard.
        offset : int
            First row in the shard; -1 for a per-track file.
        n_frames : int
            Its frame count; -1 for a per-track file whose length the index does not give.

        Raises
        ------
        DataError
            The track is not in the store.
        """
        i = self._row(track_id)
        return self._paths[self._file_codes[i]], int(self.offsets[i]), int(self._n_frames[i])

    def file(self, track_id: str) -> Path:
        """The file holding a track's mel (its own ``.npy`` or its shard): :meth:`location`'s first item."""
        return self.location(track_id)[0]

    @property
    def sharded(self) -> bool:
        """True when at least one track lives in a shard."""
        return bool((self.offsets >= 0).any())

    @property
    def n_files(self) -> int:
        """Distinct files (shards and per-track files) the store reads from."""
        return len(self._paths)

    def __getstate__(self):
        return {**self.__dict__, "_shard_maps": {}, "_file_maps": {}}

    def _map(self, code: int, shard: bool) -> np.ndarray:
        """The memory map of file ``code``; shards stay open, at most MAX_OPEN per-track files do."""
        maps = self._shard_maps if shard else self._file_maps
        mel = maps.get(code)
        if mel is None:
            path = self._paths[code]
            try:
                mel = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"{path}: cannot read mel: {exc}") from exc
            if not shard and len(maps) >= MAX_OPEN:
                maps.clear()
            maps[code] = mel
        return mel

    def __getitem__(self, track_id: str) -> np.ndarray:
        """One track's mel, read through a memory map (not copied).

        Parameters
        ----------
        track_id : str

        Returns
        -------
        mel : np.ndarray [shape=(n_frames, n_mels)]
            Read-only view of its file or of its rows of the shard; float16 as preprocessing
            writes it (float32 for the original project's files).

        Raises
        ------
        DataError
            Unknown track, an unreadable file, or a shard shorter than the index says.
        """
        i = self._row(track_id)
        offset = int(self.offsets[i])
        mel = self._map(int(self._file_codes[i]), offset >= 0)
        if offset < 0:
            return mel
        n = int(self._n_frames[i])
        if offset + n > len(mel):
            raise DataError(f"{self._paths[self._file_codes[i]]}: track {track_id!r} needs rows {offset}:{offset + n}, "
                            f"the shard has {len(mel)}")
        return mel[offset:offset + n]

    def _rows(self, track_ids: Sequence[str]) -> np.ndarray:
        """Index rows of many tracks at once (a DataError names the first unknown one)."""
        rows = self._ids.get_indexer(pd.Index([str(t) for t in track_ids], dtype=object))
        if (rows < 0).any():
            raise DataError(f"track {track_ids[int(np.argmax(rows < 0))]!r} has no mel in this store")
        return rows

    def n_frames(self, track_ids: Sequence[str]) -> np.ndarray:
        """Frame counts of tracks, from the index (files the index does not size are opened).

        Parameters
        ----------
        track_ids : sequence of str [shape=(n,)]

        Returns
        -------
        n_frames : np.ndarray [shape=(n,), dtype=int64]

        Raises
        ------
        DataError
            A track is not in the store (the first one is named).
        """
        rows = self._rows(track_ids)
        out = self._n_frames[rows]
        for j in np.flatnonzero(out < 0):
            out[j] = len(self[self._ids[rows[j]]])
        return out

    def signature(self, track_ids: Sequence[str]) -> str:
        """A digest of where ``track_ids``' mels are and of their files' size and mtime: it changes
        when any of them is rewritten (training packs are keyed by it).

        Parameters
        ----------
        track_ids : sequence of str
            The tracks, in order (the order is part of the digest).

        Returns
        -------
        digest : str
            20 hexadecimal digits.

        Raises
        ------
        DataError
            A track is unknown or its file cannot be read.
        """
        h = hashlib.sha256()
        stats: dict[int, str] = {}
        for t, i in zip(track_ids, self._rows(track_ids).tolist()):
            code = int(self._file_codes[i])
            if code not in stats:
                path = self._paths[code]
                try:
                    st = os.stat(path)
                except OSError as exc:
                    raise DataError(f"{path}: cannot read mel of track {t!r}: {exc}") from exc
                stats[code] = f"{path}\0{st.st_size}\0{st.st_mtime_ns}"
            h.update(f"{t}\0{stats[code]}\0{self.offsets[i]}\n".encode())
        return h.hexdigest()[:20]


def remove_leftovers(mel_dir: str | os.PathLike) -> list[Path]:
    """Remove what a killed preprocessing job leaves in a mel folder; the store then holds whole
    files only.

    Leftovers are the temporary files of atomic writes (``.<name>.tmp*``, in the folder and in
    ``shards/``) and shards without their index (cut short before the index was written). Run
    one preprocessing job per mel folder: another job's files in flight look like leftovers.

    Parameters
    ----------
    mel_dir : str or os.PathLike
        The mel folder (missing: nothing to do).

    Returns
    -------
    removed : list of Path
        The files removed.
    """
    mel_dir = Path(mel_dir)
    removed: set[Path] = set()
    for folder in (mel_dir, mel_dir / SHARD_DIR):
        if folder.is_dir():
            removed.update(p for p in folder.glob(".*.tmp*") if p.is_file())
    shard_dir = mel_dir / SHARD_DIR
    if shard_dir.is_dir():
        complete = set(complete_shards(mel_dir))
        removed.update(p for p in shard_dir.glob("*.npy") if p not in complete)
    for p in removed:
        p.unlink(missing_ok=True)
    return sorted(removed)


def shard_index(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The index of a shard (or training pack): its ``.index.npz``.

    Parameters
    ----------
    path : str or os.PathLike
        The shard's ``.npy``.

    Returns
    -------
    index : dict of str to np.ndarray
        ``track_ids`` [shape=(n_tracks,), str], ``offsets`` and ``n_frames``
        [shape=(n_tracks,), int64]: track ``i`` is rows ``offsets[i] : offsets[i] + n_frames[i]``.

    Raises
    ------
    DataError
        The index is missing or unreadable.
    """
    return read_npz(Path(path).with_suffix(".index.npz"), "shard index not found")


def complete_shards(mel_dir: str | os.PathLike) -> list[Path]:
    """The shards of a mel folder that have their index (a shard without one was cut short).

    Parameters
    ----------
    mel_dir : str or os.PathLike
        The mel folder.

    Returns
    -------
    shards : list of Path
        Paths of the complete shards' ``.npy`` in ``mel_dir/shards``, sorted; empty when there
        is no ``shards/`` folder.
    """
    folder = Path(mel_dir) / SHARD_DIR
    if not folder.is_dir():
        return []
    return sorted(p.with_name(p.name[:-len(".index.npz")] + ".npy") for p in folder.glob("*.index.npz")
                  if p.with_name(p.name[:-len(".index.npz")] + ".npy").is_file())


def shard_name(track_ids: Sequence[str]) -> str:
    """A shard's file stem: a digest of the tracks it holds, in order.

    Parameters
    ----------
    track_ids : sequence of str
        The shard's tracks, in order.

    Returns
    -------
    name : str
        16 hexadecimal digits (SHA-256 of the ids).
    """
    return hashlib.sha256("\0".join(track_ids).encode()).hexdigest()[:16]


def write_shard(mel_dir: str | os.PathLike, track_ids: Sequence[str],
                mels: Sequence[np.ndarray]) -> tuple[str, np.ndarray]:
    """Write tracks' mels as one shard of ``mel_dir`` (its frames, then its index, each atomically).

    Parameters
    ----------
    mel_dir : str or os.PathLike
        The mel folder; the shard goes to ``shards/<shard_name(track_ids)>.npy``.
    track_ids : sequence of str
        One id per mel, in order.
    mels : sequence of np.ndarray [shape=(n_frames_i, n_mels)]
        The tracks' mels (float16 as preprocessing writes them), concatenated along time.

    Returns
    -------
    rel : str
        The shard's path relative to ``mel_dir``.
    offsets : np.ndarray [shape=(n_tracks,), dtype=int64]
        Each track's first row in the shard.
    """
    rel = f"{SHARD_DIR}/{shard_name(track_ids)}.npy"
    path = Path(mel_dir) / rel
    save_npy(path, np.concatenate(mels))
    return rel, write_shard_index(path, track_ids, [len(m) for m in mels])


def frame_offsets(n_frames: np.ndarray) -> np.ndarray:
    """Where each track starts when their frames lie one after another.

    Parameters
    ----------
    n_frames : np.ndarray [shape=(n_tracks,)]
        Frame counts, in order.

    Returns
    -------
    offsets : np.ndarray [shape=(n_tracks,), dtype=int64]
        ``[0, n_frames[0], n_frames[0] + n_frames[1], ...]``.
    """
    return np.concatenate([[0], np.cumsum(n_frames)[:-1]]).astype(np.int64)


def write_shard_index(path: str | os.PathLike, track_ids: Sequence[str], n_frames: Sequence[int]) -> np.ndarray:
    """Write the ``.index.npz`` of the shard (or training pack) ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The shard's ``.npy``; the index goes beside it.
    track_ids : sequence of str
        The tracks, in the order of their frames.
    n_frames : sequence of int [shape=(n_tracks,)]
        Their frame counts.

    Returns
    -------
    offsets : np.ndarray [shape=(n_tracks,), dtype=int64]
        Each track's first row (:func:`frame_offsets`).
    """
    n_frames = np.asarray(n_frames, dtype=np.int64)
    offsets = frame_offsets(n_frames)
    save_npz(Path(path).with_suffix(".index.npz"), track_ids=np.array(track_ids, dtype=str), offsets=offsets,
             n_frames=n_frames)
    return offsets


def write_index(mel_dir: str | os.PathLike, track_ids: Sequence[str], files: Sequence[str], n_frames: Sequence[int],
                offsets: Sequence[int]) -> None:
    """Write a mel folder's ``index.csv`` (atomically), one row per track.

    Parameters
    ----------
    mel_dir : str or os.PathLike
        The mel folder.
    track_ids : sequence of str [shape=(n_tracks,)]
        The stored tracks.
    files : sequence of str [shape=(n_tracks,)]
        Each track's file, relative to ``mel_dir`` (or absolute).
    n_frames : sequence of int [shape=(n_tracks,)]
        Their frame counts.
    offsets : sequence of int [shape=(n_tracks,)]
        First row in the shard; below 0 marks a per-track file (written as an empty cell).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    write_csv(Path(mel_dir) / "index.csv", pd.DataFrame({
        "track_id": list(track_ids), "file": list(files), "n_frames": np.asarray(n_frames, dtype=np.int64),
        "offset": pd.array([int(o) if o >= 0 else None for o in offsets], dtype="Int64")}))


def mel_statistics(store: MelStore, track_ids: Iterable[str] | None = None) -> tuple[float, float]:
    """Global mean and standard deviation of all mel bins of a store's tracks (the dataset's
    normalisation constants).

    Parameters
    ----------
    store : MelStore
        The mels, each [shape=(n_frames, n_mels)].
    track_ids : iterable of str, optional
        The tracks to pool; None = all of the store's.

    Returns
    -------
    mean, std : float
        Over every frame and band of the tracks together, accumulated in float64 (population
        standard deviation).

    Raises
    ------
    DataError
        No frame to pool.
    """
    total, total_sq, count = 0.0, 0.0, 0
    for t in (store.track_ids if track_ids is None else track_ids):
        x = np.asarray(store[t], dtype=np.float64)
        total += x.sum()
        total_sq += (x * x).sum()
        count += x.size
    if count == 0:
        raise DataError("no mel frames to compute statistics from")
    mean = total / count
    return float(mean), float(math.sqrt(max(total_sq / count - mean * mean, 0.0)))
