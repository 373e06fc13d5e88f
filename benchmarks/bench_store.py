"""The mel store as it grows: shards and an index against one ``.npy`` file per track.

Simulated: every track is a small random float16 mel (``--frames`` 24 to 40 frames x ``--mels`` 16
bands, about 1 KB) instead of a 30-s clip (1,292 x 128, 331 KB), so that 400,000 tracks fit on a
small disk; the index, the number of files and the lookups are those of a real collection of that
size, the bytes read per crop are not. For each size and layout, in a fresh process:

- **write**: the mels written as the preprocessing stage writes them (``audio.shard_tracks``
  tracks per shard with :func:`zslkit.data.melstore.write_shard`, or one ``np.save`` per track), then
  ``index.csv`` (:func:`zslkit.data.melstore.write_index`);
- **open**: :meth:`zslkit.data.melstore.MelStore.from_dir` (read the index, build the lookup), its time
  and the memory it takes (resident set growth);
- **crops**: ``--crops`` random crops of 16 frames from random tracks through the store (each read
  copies the frames out of the memory map), crops per second, and the resident set after them.

Usage: python benchmarks/bench_store.py [--sizes 10000 100000 400000] [--baseline-max 100000]
                                        [--shard-tracks 512] [--crops 20000] [--quick]
``--quick``: 1,000 tracks, 64 per shard, 1,000 crops (seconds; checks that the script runs, the numbers
mean little).
Per-track files are written only up to ``--baseline-max`` tracks (400,000 files take minutes and
400,000 inodes); sizes above it print the shards alone.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.data.melstore import MelStore, write_index, write_shard  # noqa: E402

CROP = 16


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def simulate(n: int, mels: int, frames: tuple[int, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(frames[0], frames[1] + 1, n)
    return [f"track{i:07d}" for i in range(n)], lengths, rng


def write(folder: Path, n: int, layout: str, args) -> float:
    ids, lengths, rng = simulate(n, args.mels, tuple(args.frames))
    t0 = time.perf_counter()
    files, offsets = [], []
    for a in range(0, n, args.shard_tracks):
        chunk = [rng.random((k, args.mels), dtype=np.float32).astype(np.float16)
                 for k in lengths[a:a + args.shard_tracks]]
        if layout == "shards":
            rel, off = write_shard(folder, ids[a:a + args.shard_tracks], chunk)
            files += [rel] * len(chunk)
            offsets += off.tolist()
        else:
            for t, mel in zip(ids[a:a + args.shard_tracks], chunk):
                np.save(folder / f"{t}.npy", mel)
                files.append(f"{t}.npy")
                offsets.append(-1)
    write_index(folder, ids, files, lengths, offsets)
    return time.perf_counter() - t0


def one(n: int, layout: str, args) -> dict:
    """Write, open and read one store in this process; a dict of timings and memory."""
    root = Path(tempfile.mkdtemp(prefix="zslkit-store-", dir=args.tmp))
    try:
        seconds_write = write(root, n, layout, args)
        disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20
        base = rss_mb()
        t0 = time.perf_counter()
        store = MelStore.from_dir(root)
        seconds_open = time.perf_counter() - t0
        index_mb = rss_mb() - base
        rng = np.random.default_rng(1)
        ids = store.track_ids
        picks = rng.integers(0, n, args.crops)
        lengths = store.n_frames([ids[i] for i in picks])
        starts = (rng.random(args.crops) * (lengths - CROP + 1)).astype(np.int64)
        t0 = time.perf_counter()
        total = 0.0
        for i, s in zip(picks, starts):
            total += float(np.array(store[ids[i]][s:s + CROP])[0, 0])
        seconds_crops = time.perf_counter() - t0
        return {"tracks": n, "layout": layout, "files": store.n_files, "disk_mb": disk, "write_s": seconds_write,
                "open_s": seconds_open, "index_mb": index_mb, "crops_per_s": args.crops / seconds_crops,
                "rss_mb": rss_mb(), "checksum": total}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 400_000])
    ap.add_argument("--baseline-max", type=int, default=100_000)
    ap.add_argument("--shard-tracks", type=int, default=512)
    ap.add_argument("--crops", type=int, default=20_000)
    ap.add_argument("--mels", type=int, default=16)
    ap.add_argument("--frames", type=int, nargs=2, default=[24, 40])
    ap.add_argument("--tmp", default=None, help="where the stores are written (default: the system's temp)")
    ap.add_argument("--quick", action="store_true", help="1,000 tracks: seconds, to check the script runs")
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "LAYOUT"), help=argparse.SUPPRESS)
    if ap.parse_known_args()[0].quick:  # smaller defaults; sizes given explicitly still win
        ap.set_defaults(sizes=[1000], shard_tracks=64, crops=1000)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args)))
        return
    passed = [a for a in sys.argv[1:]]
    print(f"simulated tracks: {args.frames[0]}-{args.frames[1]} frames x {args.mels} mels float16; "
          f"{args.shard_tracks} tracks per shard; {args.crops} random {CROP}-frame crops")
    head = (f"{'tracks':>8} {'layout':>7} {'files':>7} {'disk MB':>8} {'write s':>8} {'open s':>7} "
            f"{'index MB':>9} {'crops/s':>9} {'RSS MB':>7}")
    print(head)
    for n in args.sizes:
        rows = {}
        for layout in ("shards", "files"):
            if layout == "files" and n > args.baseline_max:
                continue
            out = subprocess.run([sys.executable, __file__, "--one", str(n), layout] + passed,
                                 check=True, capture_output=True, text=True).stdout
            r = rows[layout] = json.loads(out.strip().splitlines()[-1])
            print(f"{n:>8} {layout:>7} {r['files']:>7} {r['disk_mb']:>8.0f} {r['write_s']:>8.2f} {r['open_s']:>7.2f} "
                  f"{r['index_mb']:>9.1f} {r['crops_per_s']:>9.0f} {r['rss_mb']:>7.0f}", flush=True)
        if "files" in rows:
            s, f = rows["shards"], rows["files"]
            print(f"{'':>8} ratio   write {f['write_s'] / s['write_s']:.1f}x faster, "
                  f"open {f['open_s'] / s['open_s']:.1f}x, crops {s['crops_per_s'] / f['crops_per_s']:.1f}x, "
                  f"files {f['files'] / s['files']:.0f}x fewer",
                  flush=True)


if __name__ == "__main__":
    main()
