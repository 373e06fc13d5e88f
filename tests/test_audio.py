import librosa
import numpy as np
import pandas as pd
import pytest
from conftest import tone

from zslkit import DataError
from zslkit.data.audio import MelSpec, load_audio, logmel
from zslkit.data.melstore import MelStore, mel_statistics
from zslkit.data.preprocess import preprocess


def librosa_logmel(y, sr=22050, pad_mode="constant"):
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=512, window="hann", center=True, pad_mode=pad_mode))
    return np.log10(1 + 10 * (librosa.filters.mel(sr=sr, n_fft=1024, n_mels=128) @ S)).T


@pytest.mark.parametrize("signal", ["sine", "noise", "chirp", "impulses"])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_logmel_matches_librosa(signal, pad_mode):
    sr, n = 22050, 22050 * 3 + 123
    t = np.arange(n) / sr
    rng = np.random.default_rng(1)
    y = {"sine": 0.5 * np.sin(2 * np.pi * 1000 * t),
         "noise": 0.1 * rng.standard_normal(n),
         "chirp": librosa.chirp(fmin=50, fmax=10000, sr=sr, length=n),
         "impulses": (np.arange(n) % 5000 == 0).astype(float)}[signal].astype(np.float32)
    ours = logmel(y, MelSpec(pad_mode=pad_mode))
    ref = librosa_logmel(y, pad_mode=pad_mode)
    assert ours.shape == ref.shape == (1 + n // 512, 128)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_logmel_of_a_tone_peaks_in_the_right_band():
    mel = logmel(tone(1000.0, 1.0))
    freqs = librosa.mel_frequencies(n_mels=128, fmax=11025)
    assert abs(freqs[mel[10:-10].mean(axis=0).argmax()] - 1000) < 60


def test_load_audio_mixes_to_mono_and_resamples(wav):
    stereo = np.stack([tone(440, 1.0, 44100), tone(440, 1.0, 44100)], axis=1)
    y = load_audio(wav("s.wav", stereo, 44100), 22050)
    assert y.ndim == 1 and abs(len(y) - 22050) <= 1
    ref, _ = librosa.load(wav("m.wav", stereo[:, 0], 44100), sr=22050)
    np.testing.assert_allclose(y, ref, atol=1e-4)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_load_audio_formats(wav, fmt):
    y = load_audio(wav(f"x.{fmt.lower()}", tone(440, 1.0), 22050, format=fmt), 22050)
    assert abs(len(y) / 22050 - 1.0) < 0.1 and np.abs(y).max() > 0.1


def test_load_audio_max_duration(wav):
    y = load_audio(wav("long.wav", tone(440, 5.0)), 22050, max_duration=2.0)
    assert len(y) == 44100


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(DataError, match="broken.wav"):
        load_audio(bad)


def test_preprocess_skips_bad_files_and_resumes(tmp_path, wav):
    good = wav("good.wav", tone(440, 3.0))
    short = wav("short.wav", tone(440, 0.3))
    silent = wav("silent.wav", np.zeros(22050 * 2, dtype=np.float32))
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(100))
    tracks = [("g", good), ("s", short), ("q", silent), ("c", corrupt), ("m", tmp_path / "missing.wav")]
    out = tmp_path / "mels"
    table = preprocess(tracks, out, min_duration=1.0, workers=1, progress=False)
    status = dict(zip(table.track_id, table.status))
    assert status == {"g": "ok", "s": "error", "q": "error", "c": "error", "m": "error"}
    reasons = dict(zip(table.track_id, table.reason))
    assert reasons["s"].startswith("too short") and reasons["q"].startswith("silent")
    assert reasons["c"].startswith("unreadable") and reasons["m"].startswith("unreadable")
    errors = pd.read_csv(out / "errors.csv")
    assert set(errors.track_id) == {"s", "q", "c", "m"}
    store = MelStore.from_dir(out)
    mel = store["g"]
    assert isinstance(mel, np.memmap) and mel.dtype == np.float16 and mel.shape == (1 + 3 * 22050 // 512, 128)
    np.testing.assert_allclose(mel, logmel(load_audio(good)), atol=2e-3)
    again = preprocess(tracks, out, min_duration=1.0, workers=1, progress=False)
    assert dict(zip(again.track_id, again.status))["g"] == "cached"
    assert not list(out.glob(".*tmp*")), "no temporary files left behind"


def test_preprocess_in_parallel_equals_serial(tmp_path, wav):
    tracks = [(f"t{i}", wav(f"t{i}.wav", tone(200 + 50 * i, 2.0, noise=0.01, seed=i))) for i in range(20)]
    a = preprocess(tracks, tmp_path / "a", workers=1, progress=False)
    b = preprocess(tracks, tmp_path / "b", workers=2, progress=False, chunksize=2)
    assert (a.status == "ok").all() and (b.status == "ok").all()
    for t, _ in tracks:
        np.testing.assert_array_equal(MelStore.from_dir(tmp_path / "a")[t], MelStore.from_dir(tmp_path / "b")[t])


def test_preprocess_rejects_duplicate_ids(tmp_path, wav):
    p = wav("a.wav", tone())
    with pytest.raises(DataError, match="duplicate track_id 'x'"):
        preprocess([("x", p), ("x", p)], tmp_path / "m", progress=False)


def test_mel_statistics_known_values(tmp_path):
    np.save(tmp_path / "a.npy", np.full((10, 4), 1.0, dtype=np.float16))
    np.save(tmp_path / "b.npy", np.full((10, 4), 3.0, dtype=np.float16))
    mean, std = mel_statistics(MelStore({"a": tmp_path / "a.npy", "b": tmp_path / "b.npy"}))
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_integer_fast_path_equals_libsndfile_floats(wav, subtype, fmt):
    import soundfile as sf
    if fmt == "FLAC" and subtype in ("PCM_32", "FLOAT"):
        pytest.skip("FLAC has no such subtype")
    y = np.stack([tone(440, 0.5, noise=0.2), tone(660, 0.5, noise=0.2)], axis=1) * 0.9
    path = wav(f"x.{fmt.lower()}", y, 22050, subtype=subtype, format=fmt)
    expected = sf.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)
    np.testing.assert_array_equal(load_audio(path, 22050), expected)
