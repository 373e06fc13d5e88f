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
- Stored as float16, one ``.npy`` per track, read back through ``np.load(..., mmap_mode='r')``.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.fft
import soundfile as sf
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .errors import DataError
from .io import save_npy, write_csv

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


# ----------------------------------------------------------------------------- mel store

class MelStore:
    """Read per-track log-mels through memory maps.

    Parameters
    ----------
    files : mapping track_id -> path of a ``.npy`` file of shape ``(n_frames, n_mels)``
        float16 (zslkit's own) or float32 (the original project's files).
    """

    def __init__(self, files: Mapping[str, str | os.PathLike]):
        self.files = {str(k): Path(v) for k, v in files.items()}

    @classmethod
    def from_dir(cls, mel_dir: str | os.PathLike) -> "MelStore":
        """Open a folder written by :func:`preprocess` (it holds ``index.csv``)."""
        mel_dir = Path(mel_dir)
        index = mel_dir / "index.csv"
        if not index.is_file():
            raise DataError(f"{index}: mel index not found; run preprocessing first")
        table = pd.read_csv(index, dtype={"track_id": str, "file": str})
        return cls({t: (Path(f) if os.path.isabs(f) else mel_dir / f)
                    for t, f in zip(table.track_id, table.file)})

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, track_id: str) -> bool:
        return str(track_id) in self.files

    @property
    def track_ids(self) -> list[str]:
        return list(self.files)

    def __getitem__(self, track_id: str) -> np.ndarray:
        """The memory-mapped array of one track, shape ``(n_frames, n_mels)``."""
        try:
            path = self.files[str(track_id)]
        except KeyError:
            raise DataError(f"track {track_id!r} has no mel in this store") from None
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read mel: {exc}") from exc


# ----------------------------------------------------------------------------- batch

def _check_signal(y: np.ndarray, sample_rate: int, min_duration: float) -> str | None:
    if len(y) < max(1, min_duration * sample_rate):
        return f"too short: {len(y) / sample_rate:.2f} s < min_duration {min_duration} s"
    if not np.isfinite(y).all():
        return "corrupt: non-finite samples"
    if np.max(np.abs(y)) < SILENCE_PEAK:
        return f"silent: peak below {SILENCE_PEAK}"
    return None


def _process_one(job):
    track_id, audio_path, out_path, spec, max_duration, min_duration, offset = job
    try:
        y = load_audio(audio_path, spec.sample_rate, max_duration, offset)
    except DataError as exc:
        return track_id, audio_path, "error", f"unreadable: {exc.__cause__ or exc}", 0, 0.0
    reason = _check_signal(y, spec.sample_rate, min_duration)
    duration = len(y) / spec.sample_rate
    if reason:
        return track_id, audio_path, "error", reason, 0, duration
    mel = logmel(y, spec)
    save_npy(out_path, mel.astype(np.float16))
    return track_id, audio_path, "ok", "", mel.shape[0], duration


def _init_worker():
    # one BLAS thread per worker process: the pool already uses every core
    threadpool_limits(1)


def preprocess(tracks: Sequence[tuple[str, str]], mel_dir: str | os.PathLike,
               spec: MelSpec = MelSpec(), max_duration: float | None = None,
               min_duration: float = 1.0, workers: int = 0, progress: bool = True,
               chunksize: int = 8, windows: Mapping[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Compute log-mels for many tracks, in parallel, resumably.

    Parameters
    ----------
    tracks : sequence of (track_id, audio_path)
    mel_dir : folder for ``<track_id>.npy`` files, ``index.csv`` and ``errors.csv``
    workers : processes; 0 = all cores
    progress : show a tqdm bar
    windows : optional ``{track_id: (start, duration)}`` in seconds: the part of a long file to use
        (``duration`` caps ``max_duration``)

    Returns
    -------
    pd.DataFrame
        One row per track: ``track_id, path, status ('ok' | 'cached' | 'error'), reason,
        n_frames, duration``. Tracks whose ``.npy`` already exists are not recomputed.
        ``index.csv`` (ok tracks) and ``errors.csv`` (skipped tracks with reasons) are written.
    """

    mel_dir = Path(mel_dir)
    mel_dir.mkdir(parents=True, exist_ok=True)
    ids = [str(t) for t, _ in tracks]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise DataError(f"duplicate track_id {dup!r} in the track list")
    rows, jobs = [], []
    for track_id, path in tracks:
        out = mel_dir / f"{_safe_name(str(track_id))}.npy"
        if out.is_file():
            n = np.load(out, mmap_mode="r").shape[0]
            rows.append((str(track_id), str(path), "cached", "", n, np.nan))
        else:
            start, length = (windows or {}).get(str(track_id), (0.0, None))
            cap = length if max_duration is None else min(max_duration, length or max_duration)
            jobs.append((str(track_id), str(path), out, spec, cap, min_duration, start))
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="log-mel", unit="track", disable=not progress or not jobs)
    if workers == 1 or len(jobs) < 2 * chunksize:
        with threadpool_limits(1):  # as in the workers: the same summation order, bit-identical mels
            for job in jobs:
                rows.append(_process_one(job))
                bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"),
                                 initializer=_init_worker) as pool:
            for row in pool.map(_process_one, jobs, chunksize=chunksize):
                rows.append(row)
                bar.update()
    bar.close()
    table = pd.DataFrame(rows, columns=["track_id", "path", "status", "reason", "n_frames",
                                        "duration"])
    order = {t: i for i, t in enumerate(ids)}
    table = table.sort_values("track_id", key=lambda s: s.map(order)).reset_index(drop=True)
    done = table[table.status != "error"]
    index = pd.DataFrame({"track_id": done.track_id,
                          "file": [f"{_safe_name(t)}.npy" for t in done.track_id],
                          "n_frames": done.n_frames.astype(int)})
    write_csv(mel_dir / "index.csv", index)
    write_csv(mel_dir / "errors.csv", table.loc[table.status == "error", ["track_id", "path", "reason"]])
    return table


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
