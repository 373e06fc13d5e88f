"""Importer for MagnaTagATune (MTAT), as its users have it on disk (docs/datasets.md).

Read::

    annotations_final.csv   tab-separated, quoted: clip_id, 188 tag columns (0/1), mp3_path
    clip_info_final.csv     optional, tab-separated: clip_id, track_number, title, artist, album,
                            url, segmentStart, segmentEnd, original_url, mp3_path (31,382 rows:
                            more than the annotated clips, so joined on clip_id)
    <audio_root>/<0-9a-f>/<name>.mp3   the clips (16 kHz MP3; resampled like every input)

Conventions
-----------
- Tags keep the dataset's own spelling (``clasical``, ``harpsicord``); ``spelling`` (a CSV
  ``tag,correct``) merges misspelt columns into the correct one (a clip is positive if either is).
- ``tags: top50`` keeps the 50 tags of the widely used benchmark, in its canonical order (the
  ``tags.npy`` of Won et al.), and only clips with at least one of them; ``tags: all`` keeps every
  tag with at least ``min_count`` positives.
- Split: by default the first hex digit of ``mp3_path`` (``0``-``b`` train, ``c`` valid, ``d``-``f``
  test); or ``split_lists``, a folder with ``train.npy``, ``valid.npy``, ``test.npy`` holding
  ``"row\\tmp3_path"`` strings (row = data row of annotations_final.csv, 0-based).
- Track ids are the ``clip_id``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ...errors import DataError, ParamError
from . import Dataset
from .tabular import IdRegistry, Record, apply_split_lists, assemble, drop_untagged, existing_audio, place, read_rows

TOP50 = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
         "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
         "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
         "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
         "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice", "weird",
         "country", "metal", "female voice", "choral"]

# Tag groups of the top-50 (our reading of the tags; MTAT itself has none). Other tags: "tag".
GROUPS = {
    "instrument": ["guitar", "strings", "drums", "piano", "violin", "synth", "harpsichord", "flute",
                   "sitar", "harp", "cello", "beat", "beats"],
    "genre": ["classical", "techno", "electronic", "rock", "ambient", "indian", "opera", "pop",
              "classic", "new age", "dance", "country", "metal", "choral"],
    "vocal": ["vocal", "female", "male", "singing", "vocals", "no vocals", "woman", "male vocal",
              "no vocal", "man", "choir", "voice", "male voice", "female vocal", "no voice",
              "female voice"],
    "mood": ["slow", "fast", "loud", "quiet", "soft", "solo", "weird"],
}
TAG_GROUP = {t: g for g, ts in GROUPS.items() for t in ts}
HEX_SPLIT = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}
CLIP_INFO_HEADER = ["clip_id", "track_number", "title", "artist", "album", "url", "segmentStart",
                    "segmentEnd", "original_url", "mp3_path"]


def read_annotations(path: str | Path) -> tuple[list[str], list[Record]]:
    """Parse ``annotations_final.csv``: (tag columns, one record per clip in file order)."""
    rows = read_rows(path, "\t", what="MTAT annotations")
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{path}: MTAT annotations file is empty") from None
    if len(header) == 1:
        raise DataError(f"{place(path, 1)}: MTAT annotations: the header is one field {header[0][:80]!r}; "
                        "expected tab-separated columns clip_id, tags..., mp3_path (wrong delimiter?)")
    if header[0].lstrip("\ufeff") != "clip_id" or header[-1] != "mp3_path":
        raise DataError(f"{place(path, 1)}: MTAT annotations: the header must start with 'clip_id' and "
                        f"end with 'mp3_path'; found {header[0]!r} ... {header[-1]!r}")
    tags = header[1:-1]
    dup = pd.Series(tags)[pd.Series(tags).duplicated()]
    if len(dup):
        raise DataError(f"{place(path, 1)}: MTAT annotations: tag column {dup.iloc[0]!r} appears twice")
    ids, records = IdRegistry("clip_id"), []
    for line, fields in rows:
        where = place(path, line)
        if len(fields) != len(header):
            raise DataError(f"{where}: MTAT annotations: expected {len(header)} tab-separated fields, "
                            f"found {len(fields)} (truncated or extra fields): {fields[:3]!r}")
        clip_id, values, mp3 = fields[0], fields[1:-1], fields[-1]
        if not clip_id.isdigit():
            raise DataError(f"{where}: MTAT annotations: clip_id {clip_id!r} is not a number")
        bad = next((v for v in values if v not in ("0", "1")), None)
        if bad is not None:
            col = tags[values.index(bad)]
            raise DataError(f"{where}: MTAT annotations: tag {col!r} has value {bad!r}; expected 0 or 1")
        if not mp3.endswith(".mp3") or "/" not in mp3:
            raise DataError(f"{where}: MTAT annotations: mp3_path {mp3!r} is not '<hex digit>/<name>.mp3'")
        ids.add(clip_id, where)
        records.append(Record(clip_id, mp3, [t for t, v in zip(tags, values) if v == "1"],
                              meta={"row": len(records), "mp3_path": mp3}, where=where))
    return tags, records


def read_clip_info(path: str | Path) -> dict[str, dict[str, str]]:
    """``clip_id -> {title, artist, album}`` from ``clip_info_final.csv``."""
    out, ids = {}, IdRegistry("clip_id")
    for line, f in read_rows(path, "\t", header=CLIP_INFO_HEADER, n_fields=len(CLIP_INFO_HEADER),
                             what="MTAT clip info"):
        ids.add(f[0], place(path, line))
        out[f[0]] = {"title": f[2], "artist": f[3], "album": f[4]}
    return out


def read_spelling(path: str | Path) -> dict[str, str]:
    """``misspelt -> correct`` from a CSV ``tag,correct``."""
    return {f[0].strip(): f[1].strip()
            for _, f in read_rows(path, ",", header=["tag", "correct"], n_fields=2, what="spelling map")}


def read_split_lists(folder: str | Path, records: list[Record]) -> dict[str, list[tuple[str, str]]]:
    """The ``train/valid/test.npy`` lists of ``"row\\tmp3_path"`` as ``{part: [(clip_id, where)]}``."""
    folder = Path(folder)
    by_row = {r.meta["row"]: r for r in records}
    out = {}
    for part in ("train", "valid", "test"):
        path = folder / f"{part}.npy"
        if not path.is_file():
            raise DataError(f"{path}: split list not found (expected train.npy, valid.npy, test.npy)")
        try:
            items = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a numpy array of strings: {exc}") from None
        if items.ndim != 1 or items.dtype.kind != "U":
            raise DataError(f"{path}: expected a 1-D array of 'row\\tpath' strings, got {items.dtype} "
                            f"{items.shape}")
        out[part] = []
        for k, item in enumerate(items.tolist()):
            where = f"{path}, entry {k}"
            row, _, mp3 = item.partition("\t")
            if not row.isdigit() or not mp3:
                raise DataError(f"{where}: expected 'row\\tmp3_path', got {item!r}")
            rec = by_row.get(int(row))
            if rec is None or rec.meta["mp3_path"] != mp3:
                raise DataError(f"{where}: split list names {item!r}, which is not a row of the "
                                "annotations (row number and mp3_path must match)")
            out[part].append((rec.track_id, where))
    return out


def import_mtat(out_dir: str | Path, annotations: str | Path, audio_root: str | Path | None = None,
                clip_info: str | Path | None = None, tags: str = "top50", min_count: int = 1,
                split_lists: str | Path | None = None, spelling: str | Path | None = None,
                name: str | None = None) -> tuple[Dataset, dict[str, Any]]:
    """Import MTAT into a zslkit dataset at ``out_dir``; returns it and the report of what was left out."""
    columns, records = read_annotations(annotations)
    if spelling:
        fix = read_spelling(spelling)
        unknown = [t for t in fix if t not in columns]
        if unknown:
            raise DataError(f"{spelling}: tag {unknown[0]!r} is not a column of {annotations}")
        for r in records:
            r.tags = list(dict.fromkeys(fix.get(t, t) for t in r.tags))
        columns = list(dict.fromkeys(fix.get(t, t) for t in columns))
    if split_lists:
        apply_split_lists({r.track_id: r for r in records}, read_split_lists(split_lists, records),
                          "MTAT split list")
    else:
        for r in records:
            r.split = HEX_SPLIT.get(r.meta["mp3_path"][0], "")
    info = read_clip_info(clip_info) if clip_info else {}
    for r in records:
        r.meta.update(info.get(r.track_id, {}))
    if tags == "top50":
        missing = [t for t in TOP50 if t not in columns]
        if missing:
            raise DataError(f"{annotations}: top-50 tag {missing[0]!r} is not a column")
        vocabulary = TOP50
    elif tags == "all":
        counts = pd.Series([t for r in records for t in r.tags]).value_counts()
        vocabulary = [t for t in columns if counts.get(t, 0) >= min_count]
    else:
        raise ParamError(f"data.mtat.tags: {tags!r} is not one of ['top50', 'all']")
    records, untagged = drop_untagged(records, set(vocabulary))
    root = Path(audio_root) if audio_root else Path(annotations).parent
    for r in records:
        r.path = str((root / r.path).resolve())
    records, missing = existing_audio(records)
    table = pd.DataFrame({"tag": vocabulary, "group": [TAG_GROUP.get(t, "tag") for t in vocabulary]})
    meta = {"name": name or Path(out_dir).name, "annotations": str(Path(annotations).resolve()),
            "tags": tags, "split": "lists" if split_lists else "first hex digit of mp3_path",
            "licence": "CC BY-NC-SA 1.0 (Magnatune)"}
    ds = assemble(out_dir, records, table, meta, "mtat")
    return ds, {"left_out": untagged + missing, "no_tag": len(untagged), "no_audio": len(missing)}


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    if not p["annotations"]:
        raise ParamError("data.mtat.annotations: required when data.source is 'mtat'")
    return import_mtat(out_dir, p["annotations"], p["audio_root"], p["clip_info"], p["tags"], p["min_count"],
                       p["split_lists"], p["spelling"], name=name)
