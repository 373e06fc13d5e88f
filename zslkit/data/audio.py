"""Audio decoding, the paper's log-mel spectrogram, and the memory-mapped mel store.

Conventions (the paper's preprocessing; docs/pipeline.md)
---------------------------------------------------------
- Decode with soundfile (WAV, FLAC, MP3, OGG), average channels to mono, resample with soxr
  (the same resampler librosa uses) to ``sample_rate`` (22,050 Hz).
- STFT: ``n_fft`` 1024, hop 512, periodic Hann window, centred frames padded with zeros
  (``pad_mode='constant'``, librosa's default since 0.10; 2019 librosa used ``'reflect'``).
- Magnitude (not power) spectrogram, 128 Slaney-scale, Slaney-normalised mel bands (librosa's
  ``filters.mel`` defaults), then ``log10(1 + 10 * mel)``.
- Layout is time-major: an array of shape ``(n_frames, n_mels)``. ``n_frames = 1 + len(y) // hop``.
- Stored as float16 in shards of many tracks (or one ``.npy`` per track), read back through memory
  maps (:mod:`zslkit.data.melstore`). Computed in a local process pool or on a Dask cluster
  (:mod:`zslkit.data.scheduler`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.fft
import soundfile as sf
from tqdm.auto import tqdm

from ..errors import DataError, ParamError
from ..io import save_npy, write_csv
from .melstore import SHARD_DIR, MelStore, complete_shards, shard_index, write_index, write_shard
from .scheduler import n_slots, run_tasks

#: The original code's global log-mel statistics (computed on MSD; also used for FMA).
PAPER_MEAN, PAPER_STD = 0.2262, 0.2579
SILENCE_PEAK = 1e-4
_INT_READ = {"PCM_16": ("int16", 1 / 32768), "PCM_24": ("int32", 1 / 2**31),
             "PCM_32": ("int32", 1 / 2**31)}


@dataclass(frozen=True)
class MelSpec:
    """Front-end settings; the defaults are the paper's."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    log_gain: float = 10.0
    pad_mode: str = "constant"

    @classmethod
    def from_params(cls, audio: Mapping) -> "MelSpec":
        return cls(**{k: audio[k] for k in cls.__dataclass_fields__})

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length


#: file suffixes looked for when a folder of audio is given (what libsndfile decodes)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".au", ".aiff", ".aif")


def load_audio(path: str | os.PathLike, sample_rate: int = 22050,
               max_duration: float | None = None, offset: float = 0.0) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``, from ``offset`` seconds on.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32

    Raises
    ------
    DataError
        The file is missing or cannot be decoded; the message names the file.
    """
    try:
        with sf.SoundFile(str(path)) as fh:
            native = fh.samplerate
            frames = -1 if max_duration is None else int(math.ceil(max_duration * native))
            if offset:
                fh.seek(min(int(round(offset * native)), fh.frames))
            # libsndfile's own int->float conversion is slow; integer PCM is read as integers
            # and scaled here, which gives bit-identical floats (tests check it).
            int_type = _INT_READ.get(fh.subtype)
            if int_type:
                raw = fh.read(frames=frames, dtype=int_type[0], always_2d=True)
                y = raw.astype(np.float32)
                y *= np.float32(int_type[1])
            else:
                y = fh.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode audio: {exc}") from exc
    y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    if native != sample_rate:
        import soxr  # librosa's default resampler ('soxr_hq')
        y = soxr.resample(y, native, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if max_duration is not None:
        y = y[: int(round(max_duration * sample_rate))]
    return np.ascontiguousarray(y, dtype=np.float32)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney mel filterbank, shape ``(1 + n_fft // 2, n_mels)``, float32 (librosa's, transposed)."""
    import librosa
    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def logmel(y: np.ndarray, spec: MelSpec = MelSpec()) -> np.ndarray:
    """The paper's log-mel spectrogram of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    spec : MelSpec

    Returns
    -------
    np.ndarray, shape (1 + n_samples // hop_length, n_mels), float32
        ``log10(1 + log_gain * mel)``, time-major.
    """
    y = np.asarray(y, dtype=np.float32)
    pad = spec.n_fft // 2
    if spec.pad_mode == "reflect" and len(y) > pad:
        padded = np.pad(y, pad, mode="reflect")
    else:
        padded = np.pad(y, pad, mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, spec.n_fft)[:: spec.hop_length]
    frames = frames[: spec.n_frames(len(y))] * _hann(spec.n_fft)
    magnitude = np.abs(scipy.fft.rfft(frames, axis=1))
    mel = magnitude @ mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels)
    return np.log10(1.0 + spec.log_gain * mel, dtype=np.float32)


# ----------------------------------------------------------------------------- batch

def _check_signal(y: np.ndarray, sample_rate: int, min_duration: float) -> str | None:
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


def process_chunk(task) -> list[tuple]:
    """Compute and store the mels of a chunk of tracks (a task of :func:`preprocess`).

    ``task = (jobs, mel_dir, layout)``. With ``layout='files'`` each mel goes to its own
    ``<track>.npy``; with ``'shards'`` the chunk's mels go to one shard and its index
    (:mod:`zslkit.data.melstore`). Every file is written atomically. Returns one row per track:
    ``track_id, path, status, reason, n_frames, duration, file, offset``.
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
    complete shards first, then per-track files. Leftovers of a killed job (temporary files, a
    shard without its index) are removed."""
    wanted = set(ids)
    found: dict[str, tuple[str, int, int]] = {}
    shard_dir = mel_dir / SHARD_DIR
    if shard_dir.is_dir():
        for leftover in shard_dir.glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)
        complete = set(complete_shards(mel_dir))
        for p in shard_dir.glob("*.npy"):
            if p not in complete:
                p.unlink(missing_ok=True)
        for path in sorted(complete):
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


LAYOUTS = ("shards", "files")


def preprocess(tracks: Sequence[tuple[str, str]], mel_dir: str | os.PathLike,
               spec: MelSpec = MelSpec(), max_duration: float | None = None,
               min_duration: float = 1.0, workers: int = 0, progress: bool = True,
               chunksize: int | None = None, windows: Mapping[str, tuple[float, float]] | None = None,
               layout: str = "shards", scheduler: str = "local", shard_tracks: int = 512) -> pd.DataFrame:
    """Compute log-mels for many tracks, in parallel, resumably.

    Parameters
    ----------
    tracks : sequence of (track_id, audio_path)
    mel_dir : folder for the mels (``shards/`` or ``<track_id>.npy`` files), ``index.csv`` and
        ``errors.csv`` (:mod:`zslkit.data.melstore`)
    workers : local processes; 0 = all cores (``scheduler: local`` only)
    progress : show a tqdm bar
    chunksize : tracks per task (and per shard); default: an even share of the work for four tasks
        per worker, at most ``shard_tracks``
    windows : optional ``{track_id: (start, duration)}`` in seconds: the part of a long file to use
        (``duration`` caps ``max_duration``)
    layout : ``'shards'`` (many tracks per file) or ``'files'`` (one ``.npy`` per track)
    scheduler : ``'local'`` or a Dask scheduler address (:mod:`zslkit.data.scheduler`)
    shard_tracks : most tracks per shard (memory per task: their mels)

    Returns
    -------
    pd.DataFrame
        One row per track: ``track_id, path, status ('ok' | 'cached' | 'error'), reason,
        n_frames, duration``. Tracks already stored (in either layout) are not recomputed; a
        killed job leaves whole files only and the next call does the rest.
        ``index.csv`` (stored tracks) and ``errors.csv`` (skipped tracks with reasons) are written.
    """
    if layout not in LAYOUTS:
        raise ParamError(f"audio.layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    mel_dir = Path(mel_dir)
    mel_dir.mkdir(parents=True, exist_ok=True)
    ids = [str(t) for t, _ in tracks]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise DataError(f"duplicate track_id {dup!r} in the track list")
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
    table = pd.DataFrame(rows, columns=["track_id", "path", "status", "reason", "n_frames", "duration",
                                        "file", "offset"])
    order = {t: i for i, t in enumerate(ids)}
    table = table.sort_values("track_id", key=lambda s: s.map(order)).reset_index(drop=True)
    done = table[table.status != "error"]
    write_index(mel_dir, done.track_id, done.file, done.n_frames.astype(int), done.offset)
    write_csv(mel_dir / "errors.csv", table.loc[table.status == "error", ["track_id", "path", "reason"]])
    return table.drop(columns=["file", "offset"])


def _safe_name(track_id: str) -> str:
    """A file name for a track id (ids may hold '/' when they are relative paths)."""
    return track_id.replace(os.sep, "__").replace("/", "__")


def mel_statistics(store: MelStore, track_ids: Iterable[str] | None = None) -> tuple[float, float]:
    """Global mean and standard deviation of all mel bins over ``track_ids`` (default: all)."""
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
