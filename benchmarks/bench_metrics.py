"""zslkit's metric suite against the original evaluation's way, on MSD-sized synthetic score tables.

Tables: 207,024 tracks x 226 tags (ZSL, Y only) and x 1,126 tags (GZSL, X+Y), float32 scores,
sparse labels (every track has a positive). The *suite* is, in both directions (annotation per
track, retrieval per tag): ROC-AUC, average precision, hit@k, P@k and AP@k for k = 1, 5, 10,
plus 95 % bootstrap intervals (1,000 resamples) of AUC and AP.

Baseline (what ``eval.py`` did): a Python loop calling scikit-learn's ``roc_auc_score`` and
``average_precision_score`` per row, and ``np.argsort`` per row for hit@k / AP@k. A full-size
baseline would take hours, so it is timed on a sample of rows in each direction and scaled by
the row count (printed as "extrapolated"); zslkit is timed on the same sample (a measured
like-for-like ratio) and on the whole table, in a fresh process whose peak memory is reported.

``--backend torch`` times zslkit's torch backend (``evaluate.backend: torch``) on ``--device``
(auto = CUDA when present) instead of the numpy one; the baseline is the same.

Usage: python benchmarks/bench_metrics.py [--tracks 207024] [--sample 2000] [--tables 226,1126]
                                          [--backend numpy|torch] [--device auto|cpu|cuda] [--quick]
``--quick``: 500 x 10 and x 40 tables, a sample of 50 tracks and 4 columns (seconds; checks that
the script runs, the numbers mean little).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.evaluate import metrics  # noqa: E402
from zslkit.model.inference import resolve_device  # noqa: E402

KS = (1, 5, 10)


def table(n_tracks: int, n_tags: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.random((n_tracks, n_tags), dtype=np.float32) < min(0.05, 4.0 / n_tags)
    labels[np.arange(n_tracks), rng.integers(0, n_tags, n_tracks)] = True
    scores = rng.standard_normal((n_tracks, n_tags), dtype=np.float32) + 0.5 * labels
    return scores, labels


BACKEND = {"backend": "numpy"}


def suite(scores, labels) -> float:
    """zslkit: everything, both directions, with bootstrap CIs of AUC and AP; returns seconds."""
    t0 = time.perf_counter()
    for axis in (1, 0):
        items = metrics.per_item(scores, labels, axis, KS, **BACKEND)
        for name in ("AUC", "AP"):
            metrics.bootstrap_ci(items[name], 1000, seed=0)
    return time.perf_counter() - t0


def baseline(s_all, y_all) -> float:
    """The original loop, one scikit-learn call per row of ``s_all``; returns seconds."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    t0 = time.perf_counter()
    for s, y in zip(s_all, y_all):
        if 0 < y.sum() < len(y):
            roc_auc_score(y, s)
        average_precision_score(y, s)
        order = np.argsort(-s)
        for k in KS:
            top = y[order[:k]]
            top.any()
            np.cumsum(top)
    return time.perf_counter() - t0


def full_run(n_tracks: int, n_tags: int) -> dict:
    """zslkit on the whole table, in this (fresh) process: seconds and peak RSS."""
    scores, labels = table(n_tracks, n_tags)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = suite(scores, labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_gb": peak / 1e6, "table_gb": (scores.nbytes + labels.nbytes) / 1e9,
            "rss_before_gb": base_rss / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=207_024)
    ap.add_argument("--tables", default="226,1126")
    ap.add_argument("--sample", type=int, default=2000, help="rows (tracks) in the like-for-like sample")
    ap.add_argument("--columns", type=int, default=20, help="full-length tag columns timed for the baseline")
    ap.add_argument("--backend", default="numpy", choices=metrics.BACKENDS)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch backend's device")
    ap.add_argument("--quick", action="store_true", help="small tables: seconds, to check the script runs")
    ap.add_argument("--full-child", nargs=2, type=int, help=argparse.SUPPRESS)
    if ap.parse_known_args()[0].quick:  # smaller defaults; sizes given explicitly still win
        ap.set_defaults(tracks=500, tables="10,40", sample=50, columns=4)
    args = ap.parse_args()
    if args.backend == "torch":
        BACKEND.update(backend="torch", device=resolve_device(args.device, "--device"))
    if args.full_child:
        print(json.dumps(full_run(*args.full_child)))
        return
    print(f"metric suite: AUC, AP, hit/P/AP@{{1,5,10}}, both directions, + bootstrap CIs; {args.tracks:,} tracks; "
          f"zslkit backend {BACKEND['backend']}" + (f" on {BACKEND['device']}" if "device" in BACKEND else ""))
    for n_tags in map(int, args.tables.split(",")):
        scores, labels = table(args.tracks, n_tags)
        # like-for-like sample: `sample` tracks, both directions, both implementations
        idx = np.random.default_rng(1).choice(args.tracks, size=min(args.sample, args.tracks), replace=False)
        s, y = scores[idx], labels[idx]
        t_base = baseline(s, y) + baseline(s.T, y.T)
        t_ours = suite(s, y)
        # whole-table baseline, extrapolated per call: annotation calls on `sample` rows scaled to all
        # tracks; retrieval calls on full-length columns (a few of them) scaled to all tags
        cols = np.arange(0, n_tags, max(1, n_tags // args.columns))[: args.columns]
        t_ann = baseline(s, y) * args.tracks / len(idx)
        t_ret = baseline(np.ascontiguousarray(scores[:, cols].T),
                         np.ascontiguousarray(labels[:, cols].T)) * n_tags / len(cols)
        extrapolated = t_ann + t_ret
        child = subprocess.run([sys.executable, __file__, "--full-child", str(args.tracks), str(n_tags),
                                "--backend", args.backend, "--device", args.device],
                               capture_output=True, text=True, check=True)
        full = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"\n{args.tracks:,} x {n_tags} ({full['table_gb']:.2f} GB of scores + labels)")
        print(f"  sample of {len(idx):,} tracks: original loop {t_base:7.2f} s | zslkit {t_ours:6.3f} s | "
              f"ratio {t_base / t_ours:6.1f}x (measured)")
        print(f"  whole table:  original loop ~{extrapolated:7.0f} s (extrapolated: annotation {t_ann:.0f} s, "
              f"retrieval {t_ret:.0f} s from {len(cols)} full columns) | zslkit {full['seconds']:6.1f} s (measured) | "
              f"ratio ~{extrapolated / full['seconds']:.0f}x")
        print(f"  zslkit peak memory {full['peak_gb']:.2f} GB (process, including the table)")


if __name__ == "__main__":
    main()
