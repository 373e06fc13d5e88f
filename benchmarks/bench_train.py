"""Training throughput: zslkit's data path against one built like the original code.

Baseline (the original ``data_generator.py``): per sample, ``np.load`` of the whole float32 mel
file, tiling, a random crop, standardisation; the positive drawn from a Python list of the track's
tags and the negatives from a list comprehension over all seen tags; batches built in the training
loop. zslkit: the tracks' float16 mels packed once into one memory map (the pack's build time is
printed apart), each batch's crops read in one vectorised gather, vectorised sampling, a
DataLoader (in the main process by default, as ``train.workers: 0``). ``--no-pack`` uses
zslkit's per-track memory maps instead. Timing starts after the first batch.
Both train the same paper model with the same batch size and hinge loss on an MSD-like synthetic
set (30-s clips, 900 seen tags).

Usage: python benchmarks/bench_train.py [--tracks 2560] [--batches 40] [--workers 0] [--cold] [--no-pack]
                                       [--device auto|cpu|cuda] [--precision fp32|bf16] [--quick]
``--quick``: 64 tracks of 260 frames, 3 batches of 16 (seconds; checks that the script runs, the
numbers mean little).
Prints training segments per second for each, their ratio, the same for the data path alone,
and the share of training time spent waiting for data (and on CUDA the GPU utilisation NVML
reports while training, when pynvml is installed). On the training device (``--device``;
auto = CUDA when present) it then times zslkit's device feed (the pack in device memory, crops
gathered there: :mod:`zslkit.model.feed`) against the model step alone on a resident batch, and prints
how many times the model's demand the data path delivers (target: at least 5x on a GPU).
``--cold`` drops the page cache before each timed phase (needs root: ``/proc/sys/vm/drop_caches``),
which is the case of a dataset larger than memory; without it every file is read from the page cache.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.data.melpack import build_pack  # noqa: E402
from zslkit.data.melstore import MelStore  # noqa: E402
from zslkit.model.encoders import PaperEncoder  # noqa: E402
from zslkit.model.feed import DeviceBatches, DevicePack  # noqa: E402
from zslkit.model.inference import (
    resolve_device,  # noqa: E402
    standardise,  # noqa: E402
)
from zslkit.model.losses import hinge_loss  # noqa: E402
from zslkit.model.networks import JointModel, TagBranch  # noqa: E402
from zslkit.model.sampling import BatchSource, TrackSet  # noqa: E402

FRAMES, MELS, N_TAGS, DIM, MEAN, STD = 1292, 128, 900, 300, 0.2262, 0.2579
SEG = 130  # frames per segment (the paper)


def make_set(folder: Path, n: int, frames: int = FRAMES):
    rng = np.random.default_rng(0)
    labels = rng.random((n, N_TAGS)) < 5 / N_TAGS
    labels[np.arange(n), rng.integers(0, N_TAGS, n)] = True
    f32, f16 = [], []
    for i in range(n):
        mel = rng.random((frames, MELS), dtype=np.float32)
        np.save(folder / f"{i}.npy", mel)
        np.save(folder / f"{i}.f16.npy", mel.astype(np.float16))
        f32.append(str(folder / f"{i}.npy"))
        f16.append(str(folder / f"{i}.f16.npy"))
    return labels, f32, f16


def baseline_batches(labels, files, batch_size, n_batches, seed=0):
    """Generator like the original: whole-file loads and Python list scans per sample."""
    rnd = random.Random(seed)
    tag_lists = [list(np.flatnonzero(row)) for row in labels]
    all_tags = list(range(labels.shape[1]))
    order = list(range(len(files)))
    rnd.shuffle(order)
    for b in range(n_batches):
        xs, pos, neg = [], [], []
        for i in order[b * batch_size:(b + 1) * batch_size]:
            mel = np.load(files[i])
            while len(mel) < 130:
                mel = np.concatenate([mel, mel])
            s = rnd.randint(0, len(mel) - 130)
            xs.append((mel[s:s + 130] - MEAN) / STD)
            pos.append(rnd.choice(tag_lists[i]))
            neg.append(rnd.sample([t for t in all_tags if t not in tag_lists[i]], 1))
        yield torch.from_numpy(np.stack(xs).astype(np.float32)), torch.tensor(pos), torch.tensor(neg)


def ours_batches(labels, files, batch_size, n_batches, workers, pack=None, frames=FRAMES):
    tracks = TrackSet([str(i) for i in range(len(files))], MelStore({str(i): f for i, f in enumerate(files)}),
                      np.full(len(files), frames), labels)
    source = BatchSource(tracks, batch_size, 1, 0, SEG, pack=pack)
    loader = torch.utils.data.DataLoader(source, batch_size=None, num_workers=workers,
                                         prefetch_factor=4 if workers else None)
    for b, (x, p, n, _) in enumerate(loader):
        if b >= n_batches:
            break
        yield standardise(x, MEAN, STD), p, n  # float16 crops -> float32, as the trainer does


def drop_caches(cold: bool) -> None:
    if cold:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")


def train(batches, vectors, device=torch.device("cpu"), precision="fp32"):
    """Segments per second and the share of time waiting for data, timed after the first batch
    (a loader worker starts once per run in zslkit, so its start-up is left out; the baseline's
    first batch is left out alike). Each step ends with ``loss.item()``, as the trainer's, so GPU
    time is counted in the step."""
    torch.manual_seed(0)
    model = JointModel(PaperEncoder(), TagBranch(DIM)).to(device)
    vectors = vectors.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    n, wait, tick, t0 = 0, 0.0, 0.0, 0.0
    for i, (x, pos, neg) in enumerate(batches):
        if i:
            wait += time.perf_counter() - tick
            n += len(x)
        x, pos, neg = (t.to(device, non_blocking=True) for t in (x, pos, neg))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = hinge_loss(model.pair_scores(x, vectors, torch.cat([pos[:, None], neg], 1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        tick = time.perf_counter()
        if not i:
            t0 = tick
    total = tick - t0
    return n / total, wait / total


class GpuSampler:
    """GPU utilisation as nvidia-smi reports it (``torch.cuda.utilization``, which needs pynvml),
    sampled every 50 ms while a phase runs; ``None`` when it cannot be read."""

    def __init__(self, device):
        self.device, self.samples, self.stop = device, [], threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self):
        while not self.stop.wait(0.05):
            try:
                self.samples.append(torch.cuda.utilization(self.device))
            except Exception:  # no pynvml, or no NVML on this driver: say so below, do not guess
                return

    def __enter__(self):
        if self.device.type == "cuda":
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()

    @property
    def mean(self):
        return sum(self.samples) / len(self.samples) if self.samples else None


def data_only(batches, device=None):
    n, t0 = 0, None
    for x, _, _ in batches:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        if t0 is None:
            t0 = time.perf_counter()
        else:
            n += len(x)
    return n / (time.perf_counter() - t0)


def device_batches(labels, files, pack, device, batch_size, n_batches, frames=FRAMES):
    """zslkit's device feed: crops gathered from the pack in ``device`` memory, standardised there."""
    tracks = TrackSet([str(i) for i in range(len(files))], MelStore({str(i): f for i, f in enumerate(files)}),
                      np.full(len(files), frames), labels)
    source = BatchSource(tracks, batch_size, 1, 0, SEG, pack=pack)
    feed = DeviceBatches(source, DevicePack(pack, device))
    for b, (x, p, n, _) in enumerate(feed):
        if b >= n_batches:
            break
        yield standardise(x, MEAN, STD), p, n


def repeat(batch, n_batches):
    """The same resident batch again and again: the model step's demand with no data path at all."""
    for _ in range(n_batches):
        yield batch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=2560)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0, help="zslkit DataLoader workers (train.workers)")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each phase (root)")
    ap.add_argument("--no-pack", action="store_true", help="zslkit reads per-track memory maps")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="the training device")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--frames", type=int, default=FRAMES, help=f"frames per mel (default {FRAMES}: 30 s)")
    ap.add_argument("--quick", action="store_true", help="64 short tracks, 3 batches: seconds, to check it runs")
    if ap.parse_known_args()[0].quick:  # smaller defaults; sizes given explicitly still win
        ap.set_defaults(tracks=64, batches=3, batch_size=16, frames=2 * SEG)
    args = ap.parse_args()
    device = resolve_device(args.device)
    n_batches = min(args.batches, args.tracks // args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        labels, f32, f16 = make_set(Path(tmp), args.tracks, args.frames)
        pack, pack_s = None, 0.0
        if not args.no_pack:
            t0 = time.perf_counter()
            pack = build_pack([str(i) for i in range(len(f16))], f16, Path(tmp) / "packs", progress=False)
            pack_s = time.perf_counter() - t0
        vectors = torch.randn(N_TAGS, DIM)

        def ours():
            return ours_batches(labels, f16, args.batch_size, n_batches, args.workers, pack, args.frames)

        list(baseline_batches(labels, f32, args.batch_size, 1))  # warm the page cache for both
        list(ours_batches(labels, f16, args.batch_size, 1, 0, pack, args.frames))
        drop_caches(args.cold)
        base_seg, base_wait = train(baseline_batches(labels, f32, args.batch_size, n_batches), vectors)
        drop_caches(args.cold)
        ours_seg, ours_wait = train(ours(), vectors)
        drop_caches(args.cold)
        base_data = data_only(baseline_batches(labels, f32, args.batch_size, n_batches))
        drop_caches(args.cold)
        ours_data = data_only(ours())
        on_device = None
        if pack is not None:
            def feed():
                return device_batches(labels, f16, pack, device, args.batch_size, n_batches, args.frames)
            dev_data = data_only(feed(), device)
            with GpuSampler(device) as gpu:
                dev_seg, dev_wait = train(feed(), vectors, device, args.precision)
            resident = next(iter(feed()))
            model_seg, _ = train(repeat(resident, n_batches), vectors, device, args.precision)
            on_device = (dev_data, dev_seg, dev_wait, model_seg, gpu.mean)
    print(f"{n_batches} batches of {args.batch_size}, {N_TAGS} seen tags, "
          f"{'30-s mels' if args.frames == FRAMES else f'mels of {args.frames} frames'}, "
          f"page cache {'cold' if args.cold else 'warm'}, torch threads "
          f"{torch.get_num_threads()}, zslkit DataLoader workers {args.workers}, "
          + ("per-track memory maps" if args.no_pack else
             f"packed ({args.tracks} tracks packed once in {pack_s:.1f} s, not counted below)"))
    print(f"training, baseline data path: {base_seg:8.1f} segments/s (data wait {base_wait:.0%})")
    print(f"training, zslkit:             {ours_seg:8.1f} segments/s (data wait {ours_wait:.0%})")
    print(f"training ratio zslkit / baseline: {ours_seg / base_seg:.2f}x")
    print(f"data path alone: baseline {base_data:.0f} segments/s, zslkit {ours_data:.0f} segments/s, "
          f"ratio {ours_data / base_data:.2f}x")
    if on_device:
        dev_data, dev_seg, dev_wait, model_seg, util = on_device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"on the training device ({device.type}: {name}, {args.precision}), zslkit's device feed:")
        print(f"  data path alone {dev_data:9.0f} segments/s; model step alone (resident batch) {model_seg:8.1f} "
              f"segments/s; data path / model demand {dev_data / model_seg:.1f}x")
        print(f"  training {dev_seg:8.1f} segments/s, data wait {dev_wait:.1%} of the step, "
              f"{dev_seg / model_seg:.0%} of the resident-batch rate")
        if device.type == "cuda":
            shown = f"{util:.0f} % (NVML, mean of 50-ms samples)" if util is not None else \
                "not readable (pip install pynvml)"
            print(f"  GPU utilisation during training: {shown}")


if __name__ == "__main__":
    main()
