"""Feature extraction with the musicnn port (zslkit.model.backbones.musicnn): seconds per 15-s clip.

Each clip is a synthetic 15-s tone mixture at ``--rate`` (22,050 Hz, the demo's rate), resampled to 16 kHz
(``librosa.resample``, soxr HQ), turned into musicnn's log-mel spectrogram (librosa, 96 bands) and cut into
five non-overlapping 3-s patches; the network (MTT_musicnn by default) gives ``bn_dense`` (200-d) and the
50 tag probabilities, mean over patches. Two ways, on the same clips:

- **batched**: :func:`~zslkit.model.backbones.musicnn.embed_clips` over all clips, their patches batched
  together (``--batch`` patches a forward pass);
- **baseline, one clip at a time**: :func:`~zslkit.model.backbones.musicnn.embed_waveform` per clip.

Both report wall seconds and CPU seconds (this process, every thread) per clip, and the front end's
share (resampling and log-mel alone). The weights are read once beforehand (the checkpoint load time is
printed apart). The issue's TensorFlow measurement for comparison: about 0.3 s of CPU per 15-s clip.

Usage: python benchmarks/bench_musicnn.py [--clips 32] [--seconds 15] [--rate 22050] [--variant MTT_musicnn]
                                          [--batch 64] [--threads 0] [--quick]
``--quick``: 2 clips of 6 s (seconds; checks that the script runs, the numbers mean little).
``--threads``: torch threads (0: torch's default, the number of cores).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.model.backbones import musicnn  # noqa: E402


def make_clips(n: int, rate: int, seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    clips = []
    for _ in range(n):
        f0 = 110 * 2 ** rng.uniform(0, 4)
        y = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) for k in range(1, 6))
        y = y * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t)) + 0.01 * rng.standard_normal(len(t))
        clips.append(y.astype(np.float32))
    return clips


def timed(fn) -> tuple[float, float, object]:
    """``(wall s, CPU s of this process, result)``."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=int, default=22050)
    ap.add_argument("--variant", default="MTT_musicnn", choices=musicnn.VARIANTS)
    ap.add_argument("--batch", type=int, default=64, help="patches a forward pass (batched way)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    ap.add_argument("--quick", action="store_true", help="2 clips of 6 s: seconds, to check the script runs")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.seconds = 2, 6.0
    if args.threads:
        torch.set_num_threads(args.threads)
    clips = make_clips(args.clips, args.rate, args.seconds)
    wall, cpu, net = timed(lambda: musicnn.load(args.variant))
    print(f"{args.variant}: weights read and loaded in {wall:.2f} s; {args.clips} clips of {args.seconds:g} s at "
          f"{args.rate} Hz; torch threads {torch.get_num_threads()}")
    musicnn.embed_clips(net, clips[:1], args.rate)  # warm-up (librosa's imports, torch's first pass)

    front_wall, front_cpu, _ = timed(lambda: [musicnn.patches(musicnn.logmel(musicnn.to_mono_16k(y, args.rate)))
                                              for y in clips])
    b_wall, b_cpu, (emb, prob) = timed(lambda: musicnn.embed_clips(net, clips, args.rate, batch_size=args.batch))
    o_wall, o_cpu, one = timed(lambda: [musicnn.embed_waveform(net, y, args.rate) for y in clips])
    diff = max(float(np.abs(emb[i] - one[i][0]).max()) for i in range(len(clips)))

    n = len(clips)
    print(f"\n{'way':<22} {'wall s/clip':>11} {'CPU s/clip':>11} {'clips/s':>8}")
    print(f"{'front end alone':<22} {front_wall / n:>11.3f} {front_cpu / n:>11.3f} {n / front_wall:>8.1f}")
    print(f"{'batched':<22} {b_wall / n:>11.3f} {b_cpu / n:>11.3f} {n / b_wall:>8.1f}")
    print(f"{'one clip at a time':<22} {o_wall / n:>11.3f} {o_cpu / n:>11.3f} {n / o_wall:>8.1f}")
    print(f"embeddings {emb.shape}, probabilities {prob.shape}; largest batched/single difference {diff:.1e}")
    print(f"\ntime ratio batched / one clip at a time: {b_wall / o_wall:.2f}x wall, {b_cpu / o_cpu:.2f}x CPU "
          f"(below 1: batching pays)")


if __name__ == "__main__":
    main()
