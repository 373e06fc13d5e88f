"""zslkit's log-mel preprocessing against the original script's way, on the same 30-second files.

Baseline (what ``scripts/preprocess_audio_msd.py`` did): per file, in one process, ``librosa.load``
at 22,050 Hz, ``librosa.stft`` (n_fft 1024, hop 512), magnitude, mel filterbank product,
``log10(1 + 10 x)``, ``np.save`` of float32.
zslkit: :func:`zslkit.data.preprocess.preprocess` (soundfile + soxr decode, framed real FFT, float16
stores in the default layout, shards, read back through :class:`zslkit.data.melstore.MelStore`; process
pool, atomic writes, error report).

Usage: python benchmarks/bench_preprocess.py [--files 48] [--seconds 30] [--workers 0] [--rate 44100] [--quick]
Prints clips per second for each, their ratio, and the largest mel difference (before float16).
``--quick``: 4 clips of 5 s, 2 workers (seconds; checks that the script runs, the numbers mean little).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.data.audio import MelSpec, load_audio, logmel  # noqa: E402
from zslkit.data.melstore import MelStore  # noqa: E402
from zslkit.data.preprocess import preprocess  # noqa: E402


def make_files(folder: Path, n: int, rate: int, seconds: float = 30.0) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    paths = []
    for i in range(n):
        f0 = 110 * 2 ** rng.uniform(0, 4)
        y = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) for k in range(1, 6))
        y = (y * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t)) + 0.01 * rng.standard_normal(len(t)))
        path = folder / f"clip{i:03d}.wav"
        sf.write(path, (0.5 * y / np.abs(y).max()).astype(np.float32), rate, subtype="PCM_16")
        paths.append(path)
    return paths


def baseline(paths: list[Path], out: Path) -> None:
    import librosa
    out.mkdir(parents=True, exist_ok=True)
    for p in paths:
        y, sr = librosa.load(str(p), sr=22050)
        S = np.abs(librosa.stft(y, n_fft=1024, hop_length=512))
        mel = librosa.filters.mel(sr=sr, n_fft=1024, n_mels=128) @ S
        np.save(out / (p.stem + ".npy"), np.log10(1 + 10 * mel).T.astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each test file")
    ap.add_argument("--workers", type=int, default=0, help="zslkit processes (0 = all cores)")
    ap.add_argument("--rate", type=int, default=44100, help="sample rate of the test files")
    ap.add_argument("--quick", action="store_true", help="4 clips of 5 s, 2 workers: seconds, to check the script runs")
    if ap.parse_known_args()[0].quick:  # smaller defaults; sizes given explicitly still win
        ap.set_defaults(files=4, seconds=5.0, workers=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = make_files(tmp, args.files, args.rate, args.seconds)
        warm = paths[:2]  # import and JIT costs are paid once, outside the timings
        baseline(warm, tmp / "warm_base")
        preprocess([(p.stem, str(p)) for p in warm], tmp / "warm_ours", workers=1, progress=False)

        t0 = time.perf_counter()
        baseline(paths, tmp / "base")
        t_base = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = preprocess([(p.stem, str(p)) for p in paths], tmp / "ours", workers=args.workers,
                           progress=False)
        t_ours = time.perf_counter() - t0
        assert (table.status == "ok").all(), table[table.status != "ok"]

        diff = 0.0
        for p in paths[:8]:
            ref = np.load(tmp / "base" / (p.stem + ".npy"))
            ours = logmel(load_audio(p, 22050), MelSpec())
            diff = max(diff, float(np.abs(ref - ours).max()))
        store = MelStore.from_dir(tmp / "ours")  # shards by default: read back as the later stages do
        stored = max(float(np.abs(np.load(tmp / "base" / (p.stem + ".npy"))
                              - np.asarray(store[p.stem], dtype=np.float32)).max())
                     for p in paths[:8])
    n = len(paths)
    print(f"files: {n} x {args.seconds:g} s at {args.rate} Hz, cores: {os.cpu_count()}, zslkit workers: "
          f"{args.workers or os.cpu_count()}")
    print(f"baseline (librosa, per file, 1 process): {n / t_base:7.2f} clips/s  ({t_base:.2f} s)")
    print(f"zslkit preprocess:                       {n / t_ours:7.2f} clips/s  ({t_ours:.2f} s)")
    print(f"ratio zslkit / baseline:                 {t_base / t_ours:7.2f}x")
    print(f"max |mel difference| before float16:     {diff:.2e}  (after float16 storage: {stored:.2e})")


if __name__ == "__main__":
    main()
