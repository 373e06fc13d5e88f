"""Importer for the original project's pickles (kunimi00/ZSL_music_tagging; docs/datasets.md).

Layout read (``<root>`` is the folder that holds ``data_common/`` and ``data_tag_vector/``)::

    data_common/<msd|fma>/all_tag_to_track_bin_matrix.p   (n_tags, n_tracks) 0/1 array
    data_common/<msd|fma>/tag_ids_in_key_order.p          tag id per tag key (row)
    data_common/<msd|fma>/track_ids_in_key_order.p        track id per track key (column)
    data_common/<msd|fma>/track_id_to_file_path_dict.p    track id -> audio path
    data_tag_vector/<msd|fma>/*.p                         tag id -> side-information vector

Pickles are read with :class:`~zslkit.data.pickles.RestrictedUnpickler`, which admits only plain
containers, numbers, strings and numpy arrays; a pickle that asks for anything else (a function
call, a class) is refused with :class:`~zslkit.errors.UnsafePickleError` naming the file and the
global. The tag-vector pickles become ``sideinfo/original-<stem>.npz``, which the side-information
kind ``original`` reads.

Mels that the original preprocessing wrote (``<dir_mel>/<audio path with .npy>``, float32,
time x 128) are indexed as they are, never recomputed, and the dataset records the original's
normalisation constants (mean 0.2262, std 0.2579).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import DataError, ParamError
from ...io import save_npz, write_csv, write_json
from ..audio import PAPER_MEAN, PAPER_STD
from ..pickles import RestrictedUnpickler, safe_load_pickle, safe_loads_pickle  # noqa: F401  (public here too)
from . import Dataset, write_dataset


def import_seed(root: str | os.PathLike, out_dir: str | os.PathLike, dataset: str = "msd",
                dir_mel: str | os.PathLike | None = None,
                dir_audio: str | os.PathLike | None = None,
                name: str | None = None) -> tuple[Dataset, pd.DataFrame]:
    """Import the original pickles into a zslkit dataset.

    Returns
    -------
    dataset : Dataset
    report : pd.DataFrame
        ``track_id, issue`` for tracks whose original mel file is missing (when ``dir_mel``).
    """
    common = Path(root) / "data_common" / dataset
    if not common.is_dir():
        raise DataError(f"{common}: folder not found (expected <root>/data_common/{dataset})")
    matrix = np.asarray(safe_load_pickle(common / "all_tag_to_track_bin_matrix.p"))
    tag_ids = list(safe_load_pickle(common / "tag_ids_in_key_order.p"))
    track_ids = [str(t) for t in safe_load_pickle(common / "track_ids_in_key_order.p")]
    paths = safe_load_pickle(common / "track_id_to_file_path_dict.p")
    if matrix.shape != (len(tag_ids), len(track_ids)):
        raise DataError(f"{common}/all_tag_to_track_bin_matrix.p: shape {matrix.shape} does not match "
                        f"{len(tag_ids)} tag keys x {len(track_ids)} track keys")
    paths = {str(k): str(v) for k, v in paths.items()}
    missing = [t for t in track_ids if t not in paths]
    if missing:
        raise DataError(f"{common}/track_id_to_file_path_dict.p: no path for track {missing[0]!r} "
                        f"({len(missing)} tracks)")
    rel = [paths[t] for t in track_ids]
    audio = [str(Path(dir_audio) / p) if dir_audio else p for p in rel]
    tracks = pd.DataFrame({"track_id": track_ids, "path": audio, "track_key": range(len(track_ids)),
                           "original_path": rel})
    group = "genre" if dataset == "fma" else "tag"
    tags = pd.DataFrame({"tag": [str(t) for t in tag_ids], "group": group,
                         "tag_key": range(len(tag_ids))})
    meta = {"name": name or Path(out_dir).name, "source": "seed", "dataset": dataset,
            "root": str(Path(root).resolve()),
            "normalisation": {"mean": PAPER_MEAN, "std": PAPER_STD, "from": "original code"}}
    annotations = sp.csr_matrix(matrix).T.tocsr()  # sparse straight from the (tags, tracks) matrix: no dense copy
    annotations.data = (annotations.data != 0).astype(np.uint8)
    annotations.eliminate_zeros()
    ds = write_dataset(out_dir, tracks, tags[["tag", "group"]], annotations, meta)
    _import_tag_vectors(Path(root) / "data_tag_vector" / dataset, tag_ids, Path(out_dir) / "sideinfo")
    report = pd.DataFrame(columns=["track_id", "issue"])
    if dir_mel is not None:
        report = index_original_mels(ds, dir_mel)
    return ds, report


def index_original_mels(ds: Dataset, dir_mel: str | os.PathLike) -> pd.DataFrame:
    """Point the dataset's mel index at the original ``.npy`` files; report the missing ones."""
    rows, issues = [], []
    for track_id, rel in zip(ds.tracks.track_id, ds.tracks.original_path):
        path = Path(dir_mel) / (os.path.splitext(rel)[0] + ".npy")
        if not path.is_file():
            issues.append((track_id, f"original mel not found: {path}"))
            continue
        try:
            shape = np.load(path, mmap_mode="r").shape
        except (OSError, ValueError) as exc:
            issues.append((track_id, f"unreadable mel {path}: {exc}"))
            continue
        if len(shape) != 2 or shape[1] != 128:
            issues.append((track_id, f"mel {path} has shape {shape}, expected (time, 128)"))
            continue
        rows.append((track_id, str(path.resolve()), shape[0]))
    mel_dir = ds.root / "mels"
    write_csv(mel_dir / "index.csv", pd.DataFrame(rows, columns=["track_id", "file", "n_frames"]))
    report = pd.DataFrame(issues, columns=["track_id", "issue"])
    write_csv(mel_dir / "errors.csv", report.rename(columns={"issue": "reason"}))
    ds.meta["mels"] = "original"
    write_json(ds.root / "dataset.json", ds.meta)
    return report


def _import_tag_vectors(folder: Path, tag_ids: list, out_dir: Path) -> None:
    """Save each ``tag id -> vector`` pickle as ``sideinfo/original-<stem>.npz`` in tag order."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.p")):
        table = safe_load_pickle(path)
        if not isinstance(table, dict):
            raise DataError(f"{path}: expected a dict tag id -> vector, got {type(table).__name__}")
        have = [t for t in tag_ids if t in table]
        if not have:
            continue
        vectors = np.stack([np.asarray(table[t], dtype=np.float32).ravel() for t in have])
        save_npz(out_dir / f"original-{path.stem}.npz", vectors=vectors,
                 tags=np.array([str(t) for t in have]),
                 missing=np.array([str(t) for t in tag_ids if t not in table]))


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    if not p["root"]:
        raise ParamError("data.seed.root: required when data.source is 'seed'")
    ds, missing = import_seed(p["root"], out_dir, p["dataset"], p["dir_mel"], p["dir_audio"], name=name)
    return ds, {"missing_mels": missing.to_dict("records")}
