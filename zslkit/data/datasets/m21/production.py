"""How an m21 clip is recorded and produced, as real tracks are: microphone colouring, a room or hall,
low-level noise or mains hum, mixing EQ, bus compression, a loudness target, and a lossy codec round trip.

:func:`draw` fixes a clip's chain from its own seed and the ranges of ``catalogue.yaml``'s ``production``
(``data.m21.production_ranges`` overrides single keys); every value is recorded in ``tracks.csv``
(``prod_*``). :func:`apply` runs the chain on the stereo render and returns mono audio:

1. peak to -3 dBFS; microphone: high-pass, presence peak, high shelf (pedalboard's filters);
2. room: pedalboard's ``Reverb`` (Freeverb) from a small room to a large hall, stereo;
3. noise (white or pink, independent per channel) or mains hum (50 or 60 Hz and five harmonics, the
   same in both channels) at the drawn signal-to-noise ratio by RMS;
4. mixing EQ (low shelf, mid peak) and a bus compressor (pedalboard's ``Compressor``);
5. mono (the channels' mean, as the front end takes it), gain to the loudness target measured with
   pyloudnorm (ITU-R BS.1770), a peak limiter at -1 dBFS, measured and set once more;
6. codec: MP3 at a constant bitrate (LAME, through ``pedalboard.io``) or Ogg Vorbis at a quality
   (libsndfile, through soundfile), encoded and decoded in memory; the codec's delay is measured once
   per process and removed, so the clip keeps its length and its timing.

No recording, loop or sample of another package enters: the noise and hum are synthesised from the
clip's seed, the reverb is an algorithm.
"""
from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import soundfile as sf

from ....errors import ParamError
from .plans import draw_value

CEILING_DB = -1.0   # the limiter's ceiling
#: the constant bitrates the MP3 encoder takes (LAME through pedalboard.io), kbit/s
MP3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def check(ranges: Mapping[str, Any]) -> None:
    """Raise :class:`ParamError` for codec settings the encoders do not take."""
    bad = [k for k in ranges["mp3_kbps"] if k not in MP3_KBPS]
    if bad:
        raise ParamError(f"data.m21.production_ranges.mp3_kbps: {bad} not among the MP3 bitrates {list(MP3_KBPS)}")
    if not 0 <= min(ranges["ogg_quality"]) <= max(ranges["ogg_quality"]) <= 1:
        raise ParamError("data.m21.production_ranges.ogg_quality: Vorbis quality lies in [0, 1]")


def draw(seed: int, ranges: Mapping[str, Any]) -> dict[str, Any]:
    """A clip's production (module doc): one uniform draw per key (sorted); the values a choice leaves
    unused are ``None`` (the SNR without noise, the bitrate without MP3, the quality without Ogg)."""
    rng = np.random.default_rng([seed, 31])
    out = {k: draw_value(rng, ranges[k]) for k in sorted(ranges)}
    if out["noise"] == "none":
        out["noise_snr_db"] = None
    if out["codec"] != "mp3":
        out["mp3_kbps"] = None
    if out["codec"] != "ogg":
        out["ogg_quality"] = None
    return out


def _noise(kind: str, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """(2, n) float32 noise or hum of unit RMS."""
    if kind in ("hum50", "hum60"):  # one second holds whole cycles of 50 and 60 Hz: made once, repeated
        t = np.arange(sample_rate) / sample_rate
        f0 = 50.0 if kind == "hum50" else 60.0
        y = np.zeros(sample_rate)
        for h in range(1, 7):
            if h * f0 < sample_rate / 2:
                y += rng.uniform(0.2, 1.0) / h * np.sin(2 * math.pi * h * f0 * t + rng.uniform(0, 2 * math.pi))
        y = np.tile(y, n // sample_rate + 1)[:n]
        y = np.stack([y, y])
    else:
        y = rng.standard_normal((2, n), dtype=np.float32)
        if kind == "pink":  # -3 dB per octave (a standard three-pole filter, within 0.05 dB from 9 Hz up)
            from scipy.signal import lfilter
            y = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                        [1.0, -2.494956002, 2.017265875, -0.522189400], y, axis=1)
    return (y / max(float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))), 1e-12)).astype(np.float32)


def limit(y: np.ndarray, sample_rate: int, ceiling_db: float = CEILING_DB, window_ms: float = 10.0) -> np.ndarray:
    """A look-ahead peak limiter: the gain each sample needs, held over ``window_ms`` either side and
    smoothed within it (so it never exceeds what any sample needs), then a hard clip for rounding."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    ceiling = 10 ** (ceiling_db / 20)
    if float(np.abs(y).max()) <= ceiling:
        return y
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(y), 1e-12))
    half = max(1, int(sample_rate * window_ms / 1000))
    gain = uniform_filter1d(minimum_filter1d(need, 2 * half + 1, mode="nearest"), half + 1, mode="nearest")
    return np.clip(y * gain, -ceiling, ceiling)


def loudness(y: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (pyloudnorm, ITU-R BS.1770-4); -inf for silence."""
    import pyloudnorm  # the [m21] extra
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(y, dtype=np.float64)))


def to_loudness(y: np.ndarray, sample_rate: int, target: float) -> np.ndarray:
    """``y`` set to ``target`` LUFS under the limiter's ceiling (set and limited; measured and set once
    more if the limiter took some loudness away)."""
    for _ in range(2):
        now = loudness(y, sample_rate)
        if not math.isfinite(now):
            return y
        scaled = y * 10 ** ((target - now) / 20)
        y = limit(scaled, sample_rate)
        if y is scaled:
            break
    return y


def _encode_decode(y: np.ndarray, sample_rate: int, codec: str, setting: float) -> np.ndarray:
    buf = io.BytesIO()
    if codec == "mp3":
        from pedalboard.io import AudioFile  # the [m21] extra
        with AudioFile(buf, "w", sample_rate, 1, format="mp3", quality=f"{int(setting)} kbps") as f:
            f.write(y[None].astype(np.float32))
        buf.seek(0)
        with AudioFile(buf) as f:
            if f.samplerate != sample_rate:
                raise RuntimeError(f"the MP3 encoder changed the rate: {f.samplerate} Hz")
            return f.read(f.frames)[0]
    sf.write(buf, y, sample_rate, format="OGG", subtype="VORBIS", compression_level=1.0 - float(setting))
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


@lru_cache(maxsize=None)
def codec_delay(sample_rate: int, codec: str, setting: float) -> int:
    """Samples the round trip delays the audio (MP3: the encoder's and decoder's delay, 1105 with LAME and
    mpg123), found once per process on a probe of noise bursts."""
    rng = np.random.default_rng(0)
    n = sample_rate * 2
    probe = np.zeros(n)
    for start in (0.2, 0.7, 1.3):
        a = int(start * sample_rate)
        probe[a:a + sample_rate // 10] = rng.standard_normal(sample_rate // 10) * 0.3
    out = _encode_decode(probe, sample_rate, codec, setting)[:n]
    corr = np.fft.irfft(np.fft.rfft(out, 2 * n) * np.conj(np.fft.rfft(probe, 2 * n)))
    lag = int(np.argmax(corr[: sample_rate // 5]))
    return lag


def codec_round_trip(y: np.ndarray, sample_rate: int, codec: str, setting: float) -> np.ndarray:
    """``y`` encoded (``mp3`` at ``setting`` kbit/s, ``ogg`` at quality ``setting``) and decoded, with the
    codec's delay removed: the same length, the same timing."""
    delay = codec_delay(sample_rate, codec, float(setting))
    out = _encode_decode(y, sample_rate, codec, setting)[delay: delay + len(y)]
    return np.pad(out, (0, len(y) - len(out))).astype(np.float32)


def apply(stereo: np.ndarray, sample_rate: int, prod: Mapping[str, Any], seed: int) -> np.ndarray:
    """The production chain (module doc) on a ``(n, 2)`` render; mono float32 of the same length."""
    import pedalboard as pb  # the [m21] extra
    n = len(stereo)
    peak = float(np.abs(stereo).max()) if n else 0.0
    if peak == 0:
        return np.zeros(n, dtype=np.float32)
    top = 0.45 * sample_rate
    hz = lambda f: min(float(f), top)  # noqa: E731  (a lower rendering rate caps the filters)
    x = np.ascontiguousarray((stereo * (10 ** (-3 / 20) / peak)).T, dtype=np.float32)
    mic = pb.Pedalboard([pb.HighpassFilter(hz(prod["mic_highpass_hz"])),
                         pb.PeakFilter(hz(prod["mic_presence_hz"]), prod["mic_presence_db"], 1.0),
                         pb.HighShelfFilter(hz(prod["mic_shelf_hz"]), prod["mic_shelf_db"])])
    room = pb.Reverb(room_size=prod["room_size"], damping=prod["room_damping"], wet_level=prod["room_wet"],
                     dry_level=1.0 - prod["room_wet"], width=prod["room_width"])
    x = room(mic(x, sample_rate), sample_rate)
    if prod["noise"] != "none":
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        noise = _noise(prod["noise"], n, sample_rate, np.random.default_rng([seed, 37]))
        x = (x + rms * 10 ** (-prod["noise_snr_db"] / 20) * noise).astype(np.float32)
    bus = pb.Pedalboard([pb.LowShelfFilter(hz(prod["eq_low_hz"]), prod["eq_low_db"]),
                         pb.PeakFilter(hz(prod["eq_mid_hz"]), prod["eq_mid_db"], 0.9),
                         pb.Compressor(threshold_db=prod["comp_threshold_db"], ratio=prod["comp_ratio"],
                                       attack_ms=prod["comp_attack_ms"], release_ms=prod["comp_release_ms"])])
    y = bus(x, sample_rate).mean(axis=0).astype(np.float64)
    y = to_loudness(y, sample_rate, prod["loudness_lufs"])
    if prod["codec"] != "none":
        setting = prod["mp3_kbps"] if prod["codec"] == "mp3" else prod["ogg_quality"]
        y = codec_round_trip(y.astype(np.float32), sample_rate, prod["codec"], setting)
    return np.clip(y, -1.0, 1.0).astype(np.float32)
