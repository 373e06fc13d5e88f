"""The paper's front end: audio decoding and the log-mel spectrogram.

Conventions (the paper's preprocessing; docs/pipeline.md)
---------------------------------------------------------
- Decode with soundfile (WAV, FLAC, MP3, OGG), average channels to mono, resample with soxr
  (the same resampler librosa uses) to ``sample_rate`` (22,050 Hz).
- STFT: ``n_fft`` 1024, hop 512, periodic Hann window, centred frames padded with zeros
  (``pad_mode='constant'``, librosa's default since 0.10; 2019 librosa used ``'reflect'``).
- Magnitude (not power) spectrogram, 128 Slaney-scale, Slaney-normalised mel bands (librosa's
  ``filters.mel`` defaults), then ``log10(1 + 10 * mel)``.
- Layout is time-major: an array of shape ``(n_frames, n_mels)``. ``n_frames = 1 + len(y) // hop``.
- The batch job that computes every track's mel, in parallel and resumably, is
  :mod:`zslkit.data.preprocess`; the mels are stored as float16 in shards of many tracks (or one
  ``.npy`` per track) and read back through memory maps (:mod:`zslkit.data.melstore`).
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np
import scipy.fft
import soundfile as sf

from ..errors import DataError

#: The original code's global log-mel statistics (computed on MSD; also used for FMA).
PAPER_MEAN, PAPER_STD = 0.2262, 0.2579
_INT_READ = {"PCM_16": ("int16", 1 / 32768), "PCM_24": ("int32", 1 / 2**31),
             "PCM_32": ("int32", 1 / 2**31)}


@dataclass(frozen=True)
class MelSpec:
    """Front-end settings; the defaults are the paper's.

    Parameters
    ----------
    sample_rate : int
        Rate the audio is resampled to, in Hz.
    n_fft : int
        STFT frame length in samples (periodic Hann window of that length).
    hop_length : int
        Samples between frame starts.
    n_mels : int
        Slaney mel bands.
    log_gain : float
        ``g`` in ``log10(1 + g * mel)``.
    pad_mode : {'constant', 'reflect'}
        Padding of the centred frames at both ends (zeros, or the 2019 librosa reflection).
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    log_gain: float = 10.0
    pad_mode: str = "constant"

    @classmethod
    def from_params(cls, audio: Mapping) -> "MelSpec":
        """The settings of a parameter file's ``audio`` section (other keys are ignored).

        Parameters
        ----------
        audio : mapping
            Holds every field of :class:`MelSpec` by name.

        Returns
        -------
        spec : MelSpec
        """
        return cls(**{k: audio[k] for k in cls.__dataclass_fields__})

    def n_frames(self, n_samples: int) -> int:
        """Frames of the log-mel of a signal of ``n_samples`` samples.

        Parameters
        ----------
        n_samples : int
            Length of the signal at :attr:`sample_rate`.

        Returns
        -------
        n_frames : int
            ``1 + n_samples // hop_length`` (centred frames).
        """
        return 1 + n_samples // self.hop_length


#: file suffixes looked for when a folder of audio is given (what libsndfile decodes)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".au", ".aiff", ".aif")


#: why :func:`file_issue` finds an audio file unusable before decoding it
EMPTY = "empty (0 bytes)"


def file_issue(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot hold audio, said plainly, or None when it is a non-empty regular file.

    libsndfile reports an empty MP3 as "File does not exist or is not a regular file (possibly a
    pipe?)" and a missing file as "System error"; every importer and the mel computation say this instead.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    issue : str or None
        ``'not found'``, ``'not a regular file'``, ``'empty (0 bytes)'`` (:data:`EMPTY`) or None.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "not found"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return EMPTY if st.st_size == 0 else None


def load_audio(path: str | os.PathLike, sample_rate: int = 22050,
               max_duration: float | None = None, offset: float = 0.0) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``, from ``offset`` seconds on.

    Channels are averaged; a file at another rate is resampled with soxr (``'HQ'``, librosa's
    default). Integer PCM is read as integers and scaled, bit-identical to libsndfile's floats.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file libsndfile decodes (WAV, FLAC, OGG, MP3, ...).
    sample_rate : int
        Rate of the returned signal, in Hz.
    max_duration : float or None
        Seconds to keep at most (from ``offset``); None = to the end of the file.
    offset : float
        Seconds to skip at the start (past the end: an empty signal).

    Returns
    -------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
        Mono signal at ``sample_rate``, C-contiguous; ``n_samples`` is at most
        ``round(max_duration * sample_rate)``.

    Raises
    ------
    DataError
        The file is missing, empty or cannot be decoded; the message names the file and
        says which (``<path>: empty (0 bytes)``, ``<path>: not found``, ``<path>: cannot decode audio: ...``).
    """
    issue = file_issue(path)
    if issue:
        raise DataError(f"{path}: {issue}")
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
    """The Slaney mel filterbank (librosa's ``filters.mel`` defaults, transposed); cached.

    Parameters
    ----------
    sample_rate : int
        Sample rate in Hz (the bands span 0 to ``sample_rate / 2``).
    n_fft : int
        FFT length.
    n_mels : int
        Number of mel bands.

    Returns
    -------
    fb : np.ndarray [shape=(1 + n_fft // 2, n_mels), dtype=float32]
        Weights from FFT bins to mel bands: ``magnitude @ fb`` gives the mel spectrogram.
    """
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
    y : np.ndarray [shape=(n_samples,)]
        Mono signal at ``spec.sample_rate`` (converted to float32).
    spec : MelSpec
        Front-end settings; the defaults are the paper's.

    Returns
    -------
    mel : np.ndarray [shape=(n_frames, n_mels), dtype=float32]
        ``log10(1 + log_gain * mel)`` of the magnitude spectrogram, time-major;
        ``n_frames = 1 + n_samples // hop_length`` (:meth:`MelSpec.n_frames`).
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
