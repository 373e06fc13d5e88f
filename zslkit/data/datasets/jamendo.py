"""Importer for MTG-Jamendo (the autotagging metadata of mtg-jamendo-dataset; docs/datasets.md).

Read (``root`` is the repository's ``data/`` folder)::

    <root>/<tsv>                         e.g. autotagging_top50tags.tsv (default) or autotagging.tsv
    <root>/splits/split-<N>/<stem>-{train,validation,test}.tsv    the artist-disjoint splits
    <audio_root>/<NN>/<id>.mp3           full tracks (or <id>.low.mp3 with ``low_quality: true``)

Every file has the header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS`` (tab-separated, CRLF
line ends) and a *variable* number of trailing tag fields ``category---tag``: it is read with the
csv module, never as a 6-column table.

Conventions
-----------
- The category (``genre``, ``instrument``, ``mood/theme``) becomes the tag group and the text after
  ``---`` the tag; a text that occurs in two categories keeps its prefix (``genre---x``).
- Track ids are the ``TRACK_ID`` strings (``track_0000382``).
- Full-length tracks are cut to a window: ``offset`` seconds in, ``window`` seconds long (default
  the first 30 s), written per track in ``tracks.csv`` (``start``, ``duration``) for stage 01.
- ``split_index`` picks ``splits/split-N`` (train / validation / test → train / valid / test); a split
  file naming a track or a tag the main file does not have is an error.
- Byte-identical audio files (the dataset has a few hundred) are found by size and content hash and
  reported; they stay in, as in the dataset.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ...errors import DataError, ParamError
from . import Dataset
from .tabular import IdRegistry, Record, apply_split_lists, assemble, existing_audio, place, read_rows

HEADER = ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
PARTS = {"train": "train", "validation": "valid", "test": "test"}


def _tag(where: str, field: str) -> tuple[str, str]:
    category, sep, tag = field.partition("---")
    if not sep or not category or not tag:
        raise DataError(f"{where}: MTG-Jamendo: tag field {field!r} is not 'category---tag'")
    return category, tag


def read_tsv(path: str | Path) -> list[Record]:
    """One record per row of an ``autotagging*.tsv`` file (tags as ``category---tag``)."""
    ids, out = IdRegistry("TRACK_ID"), []
    for line, f in read_rows(path, "\t", header=HEADER, min_fields=6, what="MTG-Jamendo metadata"):
        where = place(path, line)
        track_id, artist, album, rel, duration = f[:5]
        if not track_id.startswith("track_"):
            raise DataError(f"{where}: MTG-Jamendo: TRACK_ID {track_id!r} is not 'track_<number>'")
        try:
            seconds = float(duration)
        except ValueError:
            raise DataError(f"{where}: MTG-Jamendo: DURATION {duration!r} is not a number") from None
        for field in f[5:]:
            _tag(where, field)
        ids.add(track_id, where)
        out.append(Record(track_id, rel, list(dict.fromkeys(f[5:])),
                          meta={"artist_id": artist, "album_id": album, "track_seconds": seconds},
                          where=where))
    return out


def read_split(folder: Path, stem: str, records: Mapping[str, Record],
               vocabulary: set[str]) -> dict[str, list[tuple[str, str]]]:
    """``{train|valid|test: [(track_id, where)]}`` from ``<stem>-{train,validation,test}.tsv``."""
    out = {}
    for part, ours in PARTS.items():
        path = folder / f"{stem}-{part}.tsv"
        items = []
        for line, f in read_rows(path, "\t", header=HEADER, min_fields=6, what="MTG-Jamendo split"):
            where = place(path, line)
            unknown = [t for t in f[5:] if t not in vocabulary]
            if unknown:
                raise DataError(f"{where}: MTG-Jamendo split: tag {unknown[0]!r} is not in the main file's "
                                "vocabulary")
            items.append((f[0], where))
        out[ours] = items
    return out


def duplicate_audio(paths: Mapping[str, Path]) -> list[list[str]]:
    """Groups of track ids whose files are byte-identical (size first, then SHA-1)."""
    by_size = defaultdict(list)
    for t, p in paths.items():
        by_size[p.stat().st_size].append(t)
    groups = []
    for ids in by_size.values():
        if len(ids) < 2:
            continue
        by_hash = defaultdict(list)
        for t in ids:
            by_hash[hashlib.sha1(paths[t].read_bytes()).hexdigest()].append(t)
        groups += [sorted(g) for g in by_hash.values() if len(g) > 1]
    return sorted(groups)


def import_jamendo(out_dir: str | Path, root: str | Path, audio_root: str | Path | None = None,
                   tsv: str = "autotagging_top50tags.tsv", split_index: int | None = 0,
                   categories: list[str] | None = None, low_quality: bool = False, offset: float = 0.0,
                   window: float = 30.0, name: str | None = None) -> tuple[Dataset, dict[str, Any]]:
    """Import MTG-Jamendo into a zslkit dataset; returns it and the report of what was left out."""
    root = Path(root)
    records = read_tsv(root / tsv)
    vocabulary = {t for r in records for t in r.tags}
    if split_index is not None:
        folder = root / "splits" / f"split-{split_index}"
        if not folder.is_dir():
            raise DataError(f"{folder}: split folder not found (data.jamendo.split_index: {split_index})")
        by_id = {r.track_id: r for r in records}
        apply_split_lists(by_id, read_split(folder, Path(tsv).stem, by_id, vocabulary), "MTG-Jamendo split")
    cats = {t: _tag(r.where, t)[0] for r in records for t in r.tags}
    if categories:
        unknown = sorted(set(categories) - set(cats.values()))
        if unknown:
            raise ParamError(f"data.jamendo.categories: {unknown[0]!r} is not a category of {root / tsv}; "
                             f"found {sorted(set(cats.values()))}")
    chosen = [t for t in sorted(cats, key=lambda t: (cats[t], t)) if not categories or cats[t] in categories]
    bare = defaultdict(list)
    for t in chosen:
        bare[_tag("", t)[1]].append(t)
    text = {t: (_tag("", t)[1] if len(bare[_tag("", t)[1]]) == 1 else t) for t in chosen}
    left = []
    kept = []
    for r in records:
        tags = [text[t] for t in r.tags if t in text]
        if not tags:
            left.append({"track_id": r.track_id, "issue": "no tag of the chosen categories"})
            continue
        r.tags = tags
        rel = r.path[:-4] + ".low.mp3" if low_quality and r.path.endswith(".mp3") else r.path
        r.path = str(((Path(audio_root) if audio_root else root) / rel).resolve())
        r.meta.update(start=float(offset), duration=float(window))
        short = r.meta["track_seconds"] < offset + window
        if short:
            left.append({"track_id": r.track_id, "issue": f"shorter ({r.meta['track_seconds']} s) than the "
                         f"window {offset}+{window} s"})
            continue
        kept.append(r)
    kept, missing = existing_audio(kept)
    duplicates = duplicate_audio({r.track_id: Path(r.path) for r in kept})
    table = pd.DataFrame({"tag": [text[t] for t in chosen], "group": [cats[t] for t in chosen]})
    meta = {"name": name or Path(out_dir).name, "metadata": str((root / tsv).resolve()),
            "split": f"split-{split_index}" if split_index is not None else None,
            "window": {"offset": offset, "duration": window},
            "licence": "audio: Creative Commons licences per track (see the dataset); metadata CC BY-NC-SA 4.0"}
    ds = assemble(out_dir, kept, table, meta, "jamendo")
    return ds, {"left_out": left + missing, "no_audio": len(missing), "duplicate_audio": duplicates}


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    if not p["root"]:
        raise ParamError("data.jamendo.root: required when data.source is 'jamendo'")
    return import_jamendo(out_dir, p["root"], p["audio_root"], p["tsv"], p["split_index"], p["categories"],
                          p["low_quality"], p["offset"], p["window"], name=name)
