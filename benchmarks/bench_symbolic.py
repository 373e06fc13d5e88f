"""The m21 builder's score parsing (the first half of stage 01 on a new machine) against music21's default parse.

Baseline: :func:`zslkit.data.datasets.m21.corpus.parse_piece` with ``lean=False``, i.e. music21 as it parses by
default: every ABC part beamed, every score file pickled into music21's scratch folder (empty at the start, as on
a new machine). zslkit: the same function as the builder calls it (``lean=True``): no beams, no pickles. Both
write the same MIDI file and metadata for every piece, which the script checks.

The pieces are an even sample of the demo's selection (``make demo``: 3,155 candidates, three quarters of them
ABC tunes), parsed in one process each way.

Usage: python benchmarks/bench_symbolic.py [--pieces 160] [--quick]
Prints pieces per second for each, their ratio, and how many files the baseline left in the scratch folder.
``--quick``: 8 pieces (seconds; checks that the script runs, the numbers mean little).
"""
from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.data.datasets.m21.build import default_caps, select_pieces  # noqa: E402
from zslkit.data.datasets.m21.corpus import parse_piece  # noqa: E402


def sample(n: int) -> list[tuple[str, dict]]:
    """``n`` pieces spread evenly over the demo's selection (seed 0, 3,000 clips)."""
    items = [item for chosen in select_pieces(default_caps(3000), 0).values() for item in chosen]
    step = max(1, len(items) // n)
    return items[::step][:n]


def parse_all(items: list[tuple[str, dict]], out: Path, lean: bool) -> tuple[float, list[dict]]:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    pieces = [asdict(parse_piece(source, fixed, out, lean=lean)) for source, fixed in items]
    return time.perf_counter() - t0, pieces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=160)
    ap.add_argument("--quick", action="store_true", help="8 pieces: seconds, to check the script runs")
    if ap.parse_known_args()[0].quick:
        ap.set_defaults(pieces=8)
    args = ap.parse_args()
    items = sample(args.pieces)
    n_abc = sum("#" in source for source, _ in items)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parse_all(items[:2], tmp / "warm", lean=True)  # imports and music21's first-use costs, outside the timings
        before, tempfile.tempdir = tempfile.tempdir, str(tmp / "scratch")  # music21's scratch: <temp>/music21, empty
        (tmp / "scratch").mkdir()
        try:
            t_base, base = parse_all(items, tmp / "base", lean=False)
            t_ours, ours = parse_all(items, tmp / "ours", lean=True)
        finally:
            tempfile.tempdir = before
        left = sum(1 for p in (tmp / "scratch").rglob("*") if p.is_file())
        same_midi = all(filecmp.cmp(tmp / "base" / f"{p['piece_id']}.mid", tmp / "ours" / f"{p['piece_id']}.mid",
                                    shallow=False) for p in ours)
    print(f"{len(items)} pieces ({n_abc} ABC tunes, {len(items) - n_abc} score files), one process each way")
    print(f"baseline (music21's default parse): {len(items) / t_base:7.1f} pieces/s  ({t_base:.1f} s); "
          f"{left} file(s) left in music21's scratch folder")
    print(f"zslkit (no beams, no pickles):      {len(items) / t_ours:7.1f} pieces/s  ({t_ours:.1f} s)")
    print(f"ratio zslkit / baseline: {t_base / t_ours:.2f}x")
    print(f"same metadata: {base == ours}; same MIDI bytes: {same_midi}")
    if base != ours or not same_midi:
        sys.exit("the lean parse changed a piece")


if __name__ == "__main__":
    main()
