"""Reading real datasets' metadata at full size: zslkit's importers against the obvious baseline.

Generated here (``zslkit.data.datasets.samples``, metadata only, no audio; tag values are random):
- MagnaTagATune ``annotations_final.csv``: 25,863 clips x 188 tag columns;
- MTG-Jamendo ``autotagging_top50tags.tsv``: 55,609 tracks with variable tag fields;
- FMA ``tracks.csv``: 106,574 tracks (fma_large), three-line header, list literals;
- the original project's MSD pickles: 400,000 tracks x 1,126 tags (``--msd-tracks`` to change).

zslkit: the importer's parser with every check (MTAT, Jamendo, FMA), and for the pickles the whole
``import_seed`` (restricted unpickler, checks, sparse annotation written to a dataset folder).
Baseline: ``pandas.read_csv`` of the whole file (MTAT; FMA with its three-line header), a plain
``csv.reader`` loop (Jamendo: pandas cannot read its variable rows), ``pickle.load`` (MSD, the
original code's unrestricted way, which also runs code hidden in a pickle). Each measurement runs
in a fresh process, timed once, then repeated under ``tracemalloc`` for "peak MB": the most memory
the read allocated at once (Python objects and numpy buffers), the interpreter and imports not
counted.

Usage: python benchmarks/bench_import.py [--msd-tracks 400000] [--skip-msd] [--quick]
``--quick``: 1 % of each size (a few seconds in all; checks that the script runs, the numbers mean little).
"""
from __future__ import annotations

import argparse
import csv
import json
import pickle
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.data.datasets import fma, jamendo, mtat, samples, seed  # noqa: E402


def write_msd(root: Path, n_tracks: int, n_tags: int = 1126) -> Path:
    """The original pickles at MSD size (about 4 positives per track), without mels."""
    common = root / "data_common" / "msd"
    common.mkdir(parents=True)
    rng = np.random.default_rng(0)
    matrix = np.zeros((n_tags, n_tracks), dtype=np.int8)
    matrix[rng.integers(0, n_tags, 4 * n_tracks), np.repeat(np.arange(n_tracks), 4)] = 1
    tracks = [f"TR{i:016d}" for i in range(n_tracks)]
    files = {"all_tag_to_track_bin_matrix.p": matrix, "tag_ids_in_key_order.p": [f"tag {k}" for k in range(n_tags)],
             "track_ids_in_key_order.p": tracks,
             "track_id_to_file_path_dict.p": {t: f"{t[2]}/{t[3]}/{t}.mp3" for t in tracks}}
    for name, obj in files.items():
        (common / name).write_bytes(pickle.dumps(obj, protocol=2))
    return root


def measure(fmt: str, method: str, path: str) -> dict:
    """One timed read in this process: ``{seconds, rows}``."""
    t0 = time.perf_counter()
    if fmt == "mtat":
        if method == "zslkit":
            rows = len(mtat.read_annotations(Path(path) / "annotations_final.csv")[1])
        else:
            import pandas as pd
            rows = len(pd.read_csv(Path(path) / "annotations_final.csv", sep="\t"))
    elif fmt == "jamendo":
        tsv = Path(path) / "data" / "autotagging_top50tags.tsv"
        if method == "zslkit":
            rows = len(jamendo.read_tsv(tsv))
        else:
            with open(tsv, newline="") as fh:
                rows = sum(1 for _ in csv.reader(fh, delimiter="\t")) - 1
    elif fmt == "fma":
        meta = Path(path) / "fma_metadata"
        if method == "zslkit":
            rows = len(fma.read_tracks(meta / "tracks.csv", fma.read_genres(meta / "genres.csv"), "large"))
        else:
            import pandas as pd
            rows = len(pd.read_csv(meta / "tracks.csv", index_col=0, header=[0, 1]))
    else:
        common = Path(path) / "data_common" / "msd"
        if method == "zslkit":
            with tempfile.TemporaryDirectory() as out:
                rows = seed.import_seed(path, Path(out) / "ds", "msd")[0].n_tracks
        else:
            loaded = {}
            for name in ("all_tag_to_track_bin_matrix.p", "track_ids_in_key_order.p", "track_id_to_file_path_dict.p"):
                with open(common / name, "rb") as fh:
                    loaded[name] = pickle.load(fh)
            rows = loaded["all_tag_to_track_bin_matrix.p"].shape[1]
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def run_child(fmt: str, method: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", fmt, method, str(path)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--msd-tracks", type=int, default=400_000)
    ap.add_argument("--skip-msd", action="store_true")
    ap.add_argument("--quick", action="store_true", help="1 %% of every size: seconds, to check the script runs")
    ap.add_argument("--child", nargs=3, metavar=("FORMAT", "METHOD", "PATH"))
    args = ap.parse_args()
    scale = 0.01 if args.quick else 1.0
    sizes = {fmt: max(8, int(n * scale)) for fmt, n in
             {"mtat": 25_863, "jamendo": 55_609, "fma": 106_574, "msd": args.msd_tracks}.items()}
    if args.child:
        res = measure(*args.child)  # timed without tracing
        tracemalloc.start()  # then once more for the allocation peak (numpy's buffers are traced too)
        measure(*args.child)
        res["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        print(json.dumps(res))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        paths = {"mtat": samples.write_mtat(tmp / "mtat", sizes["mtat"], audio=False, split_lists=False, n_tags=188),
                 "jamendo": samples.write_jamendo(tmp / "jamendo", sizes["jamendo"], audio=False),
                 "fma": samples.write_fma(tmp / "fma", sizes["fma"], audio=False, openmic=False)}
        if not args.skip_msd:
            paths["msd"] = write_msd(tmp / "msd", sizes["msd"])
        print(f"generated the metadata in {time.perf_counter() - t0:.1f} s\n")
        print(f"{'format':<9} {'rows':>8} {'zslkit s':>9} {'rows/s':>10} {'peak MB':>8} | {'baseline s':>10} "
              f"{'peak MB':>8} | {'time ratio':>10}")
        ratios = {}
        for fmt, path in paths.items():
            ours, base = run_child(fmt, "zslkit", path), run_child(fmt, "baseline", path)
            ratios[fmt] = ours["seconds"] / base["seconds"]
            print(f"{fmt:<9} {ours['rows']:>8} {ours['seconds']:>9.2f} {ours['rows'] / ours['seconds']:>10,.0f} "
                  f"{ours['peak_mb']:>8.0f} | {base['seconds']:>10.2f} {base['peak_mb']:>8.0f} | "
                  f"{ratios[fmt]:>9.2f}x")
        print("\ntime ratio zslkit / baseline: " + ", ".join(f"{fmt} {r:.2f}x" for fmt, r in ratios.items())
              + " (above 1: zslkit is slower; it checks every row and field, streams, and refuses code in pickles)")


if __name__ == "__main__":
    main()
