"""Importer for GTZAN (genre classification: 10 genres x 100 clips of 30 s; docs/datasets.md).

Read::

    <root>/genres/<genre>/<genre>.000NN.au    (the original archive; .wav copies are read too)
    <split_lists>/{train,valid,test}_filtered.txt   optional: the fault-filtered split (Kereliuk &
                                                     Sturm; 443 / 197 / 290 clips), one relative
                                                     path per line, e.g. blues/blues.00029.wav

Conventions
-----------
- One tag per clip, its genre (group ``genre``); the dataset is marked ``single_label`` so that the
  transfer stage also reports accuracy.
- Track ids are ``<genre>.000NN`` (the extension dropped, so ``.au`` and ``.wav`` copies agree); the
  split lists may name either extension.
- A clip present as both ``.au`` and ``.wav`` is read once, from the ``.au`` (the original archive's
  format; :data:`PREFERENCE`), or from the ``.wav`` when the ``.au`` is empty; the copy not read is listed
  in the report's ``merged``. A clip whose files are all empty (0 bytes) is left out and listed.
- With split lists, clips in none of them (the filtered-out ones) are left out and reported.
- A clip that cannot be decoded (the Kaggle copy's ``jazz.00054.wav``) is found by stage 01 and
  listed with its reason; it never stops the import.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ...errors import DataError, ParamError
from . import Dataset
from .tabular import Record, apply_split_lists, assemble, one_file_per_track, place, read_rows

EXTENSIONS = (".au", ".wav")
#: a clip present in both formats is read from the first usable one: the original archive's ``.au``
#: (the ``.wav`` copies are conversions of it), the ``.wav`` when the ``.au`` is missing or empty
PREFERENCE = (".au", ".wav")
LISTS = {"train": "train_filtered.txt", "valid": "valid_filtered.txt", "test": "test_filtered.txt"}


def scan(root: str | Path) -> tuple[list[Record], dict[str, list[dict]]]:
    """Every clip ``genres/<genre>/<genre>.NNNNN.{au,wav}`` under ``root``, sorted, one record per clip.

    Returns the records and the report ``{"left_out": [...], "merged": [...]}``: clips whose every
    file is empty, and the copies not read beside the one that is (:data:`PREFERENCE`), each
    ``{"track_id", "path", "issue"}``.
    """
    folder = Path(root) / "genres"
    if not folder.is_dir():
        folder = Path(root)
    copies: dict[str, list[Path]] = {}
    genre_of: dict[str, str] = {}
    for genre_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(genre_dir.iterdir()):
            if path.suffix not in EXTENSIONS:
                continue
            genre = genre_dir.name
            if not path.stem.startswith(genre + "."):
                raise DataError(f"{path}: GTZAN clip name is not '<genre>.NNNNN{path.suffix}' in folder "
                                f"{genre!r}")
            copies.setdefault(path.stem, []).append(path)
            genre_of[path.stem] = genre
    if not copies:
        raise DataError(f"{folder}: no GTZAN clip found (expected genres/<genre>/<genre>.000NN.au)")
    chosen, left, merged = one_file_per_track(copies, PREFERENCE, "GTZAN's original format is .au")
    out = [Record(clip, str(path.resolve()), [genre_of[clip]], meta={"genre": genre_of[clip]}, where=str(path))
           for clip, path in sorted(chosen.items())]
    return out, {"left_out": left, "merged": merged}


def read_lists(folder: str | Path) -> dict[str, list[tuple[str, str]]]:
    """``{part: [(clip id, where)]}`` from the three filtered lists."""
    out = {}
    for part, fname in LISTS.items():
        path = Path(folder) / fname
        items = []
        for line, fields in read_rows(path, "\t", n_fields=1, what="GTZAN split list"):
            rel = fields[0].strip()
            genre, _, clip = rel.partition("/")
            stem = Path(clip).stem
            if not clip or Path(clip).suffix not in EXTENSIONS or not stem.startswith(genre + "."):
                raise DataError(f"{place(path, line)}: GTZAN split list entry {rel!r} is not "
                                "'<genre>/<genre>.000NN.wav'")
            items.append((stem, place(path, line)))
        out[part] = items
    return out


def import_gtzan(out_dir: str | Path, root: str | Path, split_lists: str | Path | None = None,
                 name: str | None = None) -> tuple[Dataset, dict[str, Any]]:
    """Import GTZAN; returns the dataset and the report of what was left out."""
    records, found = scan(root)
    left = list(found["left_out"])
    if split_lists:
        by_id = {r.track_id: r for r in records}
        empty = {e["track_id"] for e in left}  # a listed clip whose files are all empty is reported above
        apply_split_lists({**{t: Record(t, "", []) for t in empty}, **by_id}, read_lists(split_lists),
                          "GTZAN split list")
        left += [{"track_id": r.track_id, "path": r.path, "issue": "not in the filtered split lists"}
                 for r in records if not r.split]
        records = [r for r in records if r.split]
    genres = sorted({r.tags[0] for r in records})
    meta = {"name": name or Path(out_dir).name, "root": str(Path(root).resolve()), "single_label": True,
            "split": "fault-filtered lists" if split_lists else None,
            "licence": "research use; the clips' copyright stays with their owners"}
    ds = assemble(out_dir, records, pd.DataFrame({"tag": genres, "group": "genre"}), meta, "gtzan")
    return ds, {"left_out": left, "merged": found["merged"]}


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    if not p["root"]:
        raise ParamError("data.gtzan.root: required when data.source is 'gtzan'")
    return import_gtzan(out_dir, p["root"], p["split_lists"], name=name)
