"""The batch job of stage 01: every track's log-mel, computed in parallel and resumably.

Conventions
-----------
- Each track is decoded and turned into the paper's log-mel by :mod:`zslkit.data.audio` (the front
  end), checked (missing, empty (0 bytes), unreadable, too short, non-finite, silent: skipped with a
  reason) and stored as float16.
- The work is cut into tasks of up to ``shard_tracks`` tracks (:func:`process_chunk`), run in a
  local process pool or on a Dask cluster (:mod:`zslkit.data.scheduler`). With the ``shards``
  layout each task writes one shard and its index; with ``files`` one ``.npy`` per track
  (:mod:`zslkit.data.melstore` describes both).
- Every file is written atomically, so a job killed at any point leaves whole files only. A rerun
  first removes the mel folder's leftovers (:func:`zslkit.data.melstore.remove_leftovers`), then
  computes only the tracks that no complete shard or per-track file holds yet.
- The folder's ``index.csv`` (stored tracks) and ``errors.csv`` (skipped tracks and why) are
  rewritten at the end of each call.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..config import LAYOUTS  # the mel folder layouts preprocessing writes (audio.layout)
from ..errors import DataError, ParamError
from ..io import save_npy, write_csv
from .audio import EMPTY, MelSpec, file_issue, load_audio, logmel
from .melstore import SHARD_DIR, complete_shards, remove_leftovers, shard_index, write_index, write_shard
from .scheduler import n_slots, run_tasks

#: a signal whose largest absolute sample is below this is skipped as silent
SILENCE_PEAK = 1e-4
#: the columns of a task's rows: :func:`preprocess`'s table plus where the mel went
ROW_COLUMNS = ("track_id", "path", "status", "reason", "n_frames", "duration", "file", "offset")


def track_ids(tracks: Sequence[tuple[Any, Any]]) -> list[str]:
    """The ids of a batch job's ``(track_id, path)`` list, as strings; DataError naming the first listed twice."""
    ids = [str(t) for t, _ in tracks]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise DataError(f"duplicate track_id {dup!r} in the track list")
    return ids


def _check_signal(y: np.ndarray, sample_rate: int, min_duration: float) -> str | None:
    """Why a decoded signal is skipped, or None when it is usable.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono signal (:func:`zslkit.data.audio.load_audio`).
    sample_rate : int
        Its sample rate in Hz.
    min_duration : float
        Shortest usable signal in seconds.

    Returns
    -------
    reason : str or None
        ``'too short: ...'``, ``'corrupt: non-finite samples'`` or ``'silent: ...'``
        (peak below :data:`SILENCE_PEAK`); None for a usable signal.
    """
    if len(y) < max(1, min_duration * sample_rate):
        return f"too short: {len(y) / sample_rate:.2f} s < min_duration {min_duration} s"
    if not np.isfinite(y).all():
        return "corrupt: non-finite samples"
    if np.max(np.abs(y)) < SILENCE_PEAK:
        return f"silent: peak below {SILENCE_PEAK}"
    return None


def _mel_of(job) -> tuple[tuple, np.ndarray | None]:
    """One track: ``(row, mel float16 or None)``; ``row`` as in :func:`preprocess`'s table."""
    track_id, audio_path, spec, max_duration, min_duration, offset = job
    issue = file_issue(audio_path)
    if issue:  # said plainly ('empty (0 bytes)'), not as libsndfile's guess
        return (track_id, audio_path, "error", issue if issue == EMPTY else f"unreadable: {issue}", 0, 0.0), None
    try:
        y = load_audio(audio_path, spec.sample_rate, max_duration, offset)
    except DataError as exc:
        return (track_id, audio_path, "error", f"unreadable: {exc.__cause__ or exc}", 0, 0.0), None
    reason = _check_signal(y, spec.sample_rate, min_duration)
    duration = len(y) / spec.sample_rate
    if reason:
        return (track_id, audio_path, "error", reason, 0, duration), None
    mel = logmel(y, spec).astype(np.float16)
    return (track_id, audio_path, "ok", "", mel.shape[0], duration), mel


def process_chunk(task: tuple[Sequence[tuple], str, str]) -> list[tuple]:
    """Compute and store the mels of a chunk of tracks (one task of :func:`preprocess`).

    Parameters
    ----------
    task : tuple (jobs, mel_dir, layout)
        ``jobs``: one ``(track_id, audio_path, spec, max_duration, min_duration, offset)`` per
        track (``spec`` a :class:`zslkit.data.audio.MelSpec`; ``max_duration`` in seconds or None;
        ``offset``: where to start reading, in seconds). ``mel_dir``: the mel folder. ``layout``:
        ``'shards'`` writes the chunk's mels to one shard and its index, ``'files'`` each mel to
        its own ``<track>.npy`` (:mod:`zslkit.data.melstore`). Every file is written atomically.

    Returns
    -------
    rows : list of tuple
        One row per job, in order, with the fields of :data:`ROW_COLUMNS`: ``track_id, path,
        status ('ok' | 'error'), reason, n_frames, duration, file, offset``; ``file`` is relative
        to ``mel_dir`` (``''`` for a skipped track) and ``offset`` is the track's first row in its
        shard (-1 for a per-track file or a skipped track).
    """
    jobs, mel_dir, layout = task
    mel_dir = Path(mel_dir)
    rows, mels = [], []
    for job in jobs:
        row, mel = _mel_of(job)
        if mel is not None and layout == "files":
            name = f"{_safe_name(row[0])}.npy"
            save_npy(mel_dir / name, mel)
            row += (name, -1)
        elif mel is not None:
            mels.append(mel)
        rows.append(row)
    where, rel = {}, ""
    if mels:
        ids = [r[0] for r in rows if r[2] == "ok"]
        rel, offsets = write_shard(mel_dir, ids, mels)
        where = dict(zip(ids, offsets.tolist()))
    return [r if len(r) == 8 else r + ((rel, where[r[0]]) if r[0] in where else ("", -1)) for r in rows]


def _finished(mel_dir: Path, ids: Sequence[str]) -> dict[str, tuple[str, int, int]]:
    """Tracks of ``ids`` whose mel is already stored: ``{track_id: (file, offset, n_frames)}``, from
    complete shards first, then per-track files, after the folder's leftovers are removed."""
    remove_leftovers(mel_dir)
    wanted = set(ids)
    found: dict[str, tuple[str, int, int]] = {}
    for path in complete_shards(mel_dir):
        index = shard_index(path)
        rel = f"{SHARD_DIR}/{path.name}"
        for t, o, n in zip(index["track_ids"].tolist(), index["offsets"].tolist(), index["n_frames"].tolist()):
            if t in wanted and t not in found:
                found[t] = (rel, int(o), int(n))
    for t in ids:
        if t not in found:
            out = mel_dir / f"{_safe_name(t)}.npy"
            if out.is_file():
                found[t] = (out.name, -1, np.load(out, mmap_mode="r").shape[0])
    return found


def preprocess(tracks: Sequence[tuple[str, str]], mel_dir: str | os.PathLike,
               spec: MelSpec = MelSpec(), max_duration: float | None = None,
               min_duration: float = 1.0, workers: int = 0, progress: bool = True,
               chunksize: int | None = None, windows: Mapping[str, tuple[float, float]] | None = None,
               layout: str = "shards", scheduler: str = "local", shard_tracks: int = 512) -> pd.DataFrame:
    """Compute log-mels for many tracks, in parallel, resumably.

    Parameters
    ----------
    tracks : sequence of (track_id, audio_path)
        The tracks, with unique ids.
    mel_dir : str or os.PathLike
        Folder for the mels (``shards/`` or ``<track_id>.npy`` files), ``index.csv`` and
        ``errors.csv`` (:mod:`zslkit.data.melstore`); created when missing.
    spec : MelSpec
        Front-end settings (:class:`zslkit.data.audio.MelSpec`; the defaults are the paper's).
    max_duration : float or None
        Seconds of each file to use at most; None = all of it.
    min_duration : float
        Shorter signals are skipped (``'too short'``).
    workers : int
        Local processes; 0 = all cores, 1 = in this process (``scheduler='local'`` only).
    progress : bool
        Show a tqdm bar.
    chunksize : int or None
        Tracks per task (and per shard); None = an even share of the work for four tasks per
        worker, at most ``shard_tracks``.
    windows : mapping of track_id to (start, duration), optional
        The part of a long file to use, in seconds (``duration`` caps ``max_duration``; None =
        to the end).
    layout : {'shards', 'files'}
        Many tracks per file, or one ``.npy`` per track.
    scheduler : str
        ``'local'`` or a Dask scheduler address (:mod:`zslkit.data.scheduler`).
    shard_tracks : int
        Most tracks per shard (a task holds its shard's mels in memory).

    Returns
    -------
    table : pd.DataFrame
        One row per track, in the order of ``tracks``: ``track_id, path, status ('ok' | 'cached' |
        'error'), reason, n_frames, duration`` (seconds decoded; NaN for a cached track). Tracks
        already stored (in either layout) are not recomputed; a killed job leaves whole files only
        and the next call does the rest. ``index.csv`` (stored tracks) and ``errors.csv`` (skipped
        tracks with reasons) are written.

    Raises
    ------
    ParamError
        ``layout`` is not one of :data:`LAYOUTS`.
    DataError
        A track id is listed twice.
    """
    if layout not in LAYOUTS:
        raise ParamError(f"audio.layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    mel_dir = Path(mel_dir)
    mel_dir.mkdir(parents=True, exist_ok=True)
    ids = track_ids(tracks)
    found = _finished(mel_dir, ids)
    rows, jobs = [], []
    for track_id, path in tracks:
        track_id = str(track_id)
        if track_id in found:
            rel, offset, n = found[track_id]
            rows.append((track_id, str(path), "cached", "", n, np.nan, rel, offset))
        else:
            start, length = (windows or {}).get(track_id, (0.0, None))
            cap = length if max_duration is None else min(max_duration, length or max_duration)
            jobs.append((track_id, str(path), spec, cap, min_duration, start))
    if jobs:
        size = chunksize or min(shard_tracks, max(1, math.ceil(len(jobs) / (4 * n_slots(scheduler, workers)))))
        tasks = [(jobs[a:a + size], str(mel_dir), layout) for a in range(0, len(jobs), size)]
        with tqdm(total=len(jobs), desc="log-mel", unit="track", disable=not progress) as bar:
            for task, result in run_tasks(process_chunk, tasks, scheduler, workers):
                rows += result
                bar.update(len(task[0]))
    table = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    order = {t: i for i, t in enumerate(ids)}
    table = table.sort_values("track_id", key=lambda s: s.map(order)).reset_index(drop=True)
    done = table[table.status != "error"]
    write_index(mel_dir, done.track_id, done.file, done.n_frames.astype(int), done.offset)
    write_csv(mel_dir / "errors.csv", table.loc[table.status == "error", ["track_id", "path", "reason"]])
    return table.drop(columns=["file", "offset"])


def _safe_name(track_id: str) -> str:
    """A file name for a track id (ids may hold '/' when they are relative paths)."""
    return track_id.replace(os.sep, "__").replace("/", "__")
