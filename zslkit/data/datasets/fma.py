"""Importer for FMA (the Free Music Archive dataset), optionally with OpenMIC-2018 instrument labels.

Read (``metadata`` is the ``fma_metadata`` folder)::

    <metadata>/tracks.csv     a three-line header (group, field, "track_id"); list columns as Python
                              literals ("[21, 38]"); read with the csv module, streamed
    <metadata>/genres.csv     genre_id,#tracks,parent,title,top_level
    <audio_root>/NNN/NNNNNN.mp3          the fma_<size> folder
    <openmic>/openmic-2018.npz, class-map.json      optional (OpenMIC-2018)

Conventions
-----------
- ``subset`` keeps the tracks of that size and the smaller ones (``small`` ⊂ ``medium`` ⊂ ``large``),
  as FMA's ``subset <= size``; ``set.split`` (training / validation / test, artist-filtered) becomes
  train / valid / test.
- ``labels``: ``genres`` (the track's own genres, the default), ``genres_all`` (with every ancestor)
  or ``genre_top``. Tags are genre titles; their group is the title of their top-level genre.
- Tracks without audio (the dataset's known empty files are found by stage 01) are reported.
- With ``openmic``, the genres get instrument vectors as the original project built them: every
  OpenMIC clip of a track gives a 40-d vector (bin i = 1 when instrument i is judged present, bin
  20+i = 1 when judged absent; unobserved entries are 0), summed over the tracks of each genre
  (``genres``, leaf genres), then z-scored across the 40 values of each genre. They are written to
  the dataset's ``knowledge.csv``, which side-information kind ``table`` reads
  (``params/fma_instrument.yaml``). Genres without an annotated track get no row.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, Container, Mapping

import numpy as np
import pandas as pd

from ...builtins import FMA_SUBSETS as SUBSETS
from ...errors import DataError, ParamError
from ...io import write_csv
from . import Dataset
from .tabular import IdRegistry, Record, assemble, existing_audio, place, read_rows

SPLITS = {"training": "train", "validation": "valid", "test": "test"}
NEEDED = {("set", "split"), ("set", "subset"), ("track", "genre_top"), ("track", "genres"),
          ("track", "genres_all")}
OPTIONAL = {("track", "title"), ("artist", "name")}
GENRES_HEADER = ["genre_id", "#tracks", "parent", "title", "top_level"]


def read_genres(path: str | Path) -> pd.DataFrame:
    """``genres.csv`` as a frame indexed by genre_id (parent 0 marks a root)."""
    rows, ids = [], IdRegistry("genre_id")
    for line, f in read_rows(path, ",", header=GENRES_HEADER, n_fields=5, what="FMA genres"):
        where = place(path, line)
        try:
            gid, parent, top = int(f[0]), int(f[2]), int(f[4])
        except ValueError:
            raise DataError(f"{where}: FMA genres: genre_id, parent and top_level must be integers; got "
                            f"{f[0]!r}, {f[2]!r}, {f[4]!r}") from None
        ids.add(str(gid), where)
        rows.append((gid, parent, f[3], top))
    table = pd.DataFrame(rows, columns=["genre_id", "parent", "title", "top_level"]).set_index("genre_id")
    dup = table.title[table.title.duplicated()]
    if len(dup):
        raise DataError(f"{path}: FMA genres: title {dup.iloc[0]!r} is used by two genre ids")
    return table


INT_LIST = re.compile(r"\[(\d+(?:, ?\d+)*)?\]")


def _genre_list(where: str, column: str, text: str, known: Container[int]) -> list[int]:
    """A list literal of genre ids (``"[21, 38]"``); the common form is parsed without ``ast``."""
    match = INT_LIST.fullmatch(text)
    if match:
        value = [int(v) for v in match.group(1).split(",")] if match.group(1) else []
    else:
        try:
            value = ast.literal_eval(text) if text else []
        except (ValueError, SyntaxError):
            raise DataError(f"{where}: FMA tracks: {column} {text!r} is not a list literal like '[21, 38]'") from None
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise DataError(f"{where}: FMA tracks: {column} {text!r} is not a list of genre ids")
    unknown = [v for v in value if v not in known]
    if unknown:
        raise DataError(f"{where}: FMA tracks: {column} names genre id {unknown[0]}, which genres.csv lacks")
    return value


def read_tracks(path: str | Path, genres: pd.DataFrame, subset: str = "small",
                labels: str = "genres") -> list[Record]:
    """The tracks of ``subset`` (and smaller) from ``tracks.csv``, with genre titles as tags."""
    rows = read_rows(path, ",", what="FMA tracks")
    head = []
    for _ in range(3):
        try:
            head.append(next(rows))
        except StopIteration:
            raise DataError(f"{path}: FMA tracks: expected a three-line header (group, field, track_id)") from None
    (_, groups), (_, fields), (line3, third) = head
    if len(groups) == 1 or len(groups) != len(fields) or third[:1] != ["track_id"]:
        raise DataError(f"{place(path, line3)}: FMA tracks: not FMA's three-line header (group row, field row, "
                        f"'track_id' row); found {groups[:3]!r} / {fields[:3]!r} / {third[:2]!r}"
                        + (" (wrong delimiter?)" if len(groups) == 1 else ""))
    col = {(g, f): i for i, (g, f) in enumerate(zip(groups, fields))}
    missing = sorted(NEEDED - set(col))
    if missing:
        raise DataError(f"{place(path, 2)}: FMA tracks: missing column {missing[0]!r}")
    rank = {s: i for i, s in enumerate(SUBSETS)}
    title = genres.title.to_dict()
    ids, out = IdRegistry("track_id"), []
    for line, f in rows:
        where = place(path, line)
        if len(f) != len(groups):
            raise DataError(f"{where}: FMA tracks: expected {len(groups)} fields, found {len(f)} (truncated row?)")
        track = f[0]
        if not track.isdigit():
            raise DataError(f"{where}: FMA tracks: track_id {track!r} is not a number")
        ids.add(track, where)
        size = f[col["set", "subset"]]
        if size not in rank:
            raise DataError(f"{where}: FMA tracks: set.subset {size!r} is not one of {list(SUBSETS)}")
        split = f[col["set", "split"]]
        if split not in SPLITS:
            raise DataError(f"{where}: FMA tracks: set.split {split!r} is not one of {list(SPLITS)}")
        leaves = _genre_list(where, "genres", f[col["track", "genres"]], title)  # every row is checked
        every = _genre_list(where, "genres_all", f[col["track", "genres_all"]], title)
        if rank[size] > rank[subset]:
            continue
        if labels == "genre_top":
            top = f[col["track", "genre_top"]]
            tags = [top] if top else []
        else:
            tags = [title[g] for g in (leaves if labels == "genres" else every)]
        tid = f"{int(track):06d}"
        meta = {"fma_genres": ";".join(str(g) for g in leaves)}
        meta.update({k[0] if k[0] == "artist" else k[1]: f[col[k]] for k in OPTIONAL if k in col})
        out.append(Record(tid, f"{tid[:3]}/{tid}.mp3", tags, SPLITS[split], meta, where))
    return out


def instrument_vectors(openmic: str | Path, genres: pd.DataFrame,
                       track_genres: Mapping[int, list[int]]) -> pd.DataFrame:
    """Genre x 40 instrument table from OpenMIC-2018, the original project's recipe (module doc)."""
    folder = Path(openmic)
    npz_path, map_path = folder / "openmic-2018.npz", folder / "class-map.json"
    for p in (npz_path, map_path):
        if not p.is_file():
            raise DataError(f"{p}: OpenMIC-2018 file not found")
    try:
        classes = json.loads(map_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{map_path}: not JSON: {exc}") from None
    names = sorted(classes, key=classes.get)
    with np.load(npz_path, allow_pickle=False) as z:
        for key in ("Y_true", "Y_mask", "sample_key"):
            if key not in z.files:
                raise DataError(f"{npz_path}: key {key!r} missing; found {z.files}")
        y, mask, keys = z["Y_true"], z["Y_mask"].astype(bool), z["sample_key"]
    if y.shape != mask.shape or y.shape[1] != len(names) or len(keys) != len(y):
        raise DataError(f"{npz_path}: Y_true {y.shape}, Y_mask {mask.shape}, sample_key {keys.shape} do not "
                        f"fit {len(names)} classes of {map_path.name}")
    per_clip = np.concatenate([mask & (y > 0.5), mask & (y <= 0.5)], axis=1).astype(np.float64)
    sums: dict[int, np.ndarray] = {}
    for k, vec in zip(keys.tolist(), per_clip):
        tid = int(str(k).split("_")[0])
        for g in track_genres.get(tid, []):
            sums[g] = sums.get(g, 0) + vec
    rows = {}
    for g, vec in sorted(sums.items()):
        std = vec.std()
        rows[genres.title[g]] = (vec - vec.mean()) / std if std > 0 else vec * 0
    columns = [f"{n}_present" for n in names] + [f"{n}_absent" for n in names]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("tag").reset_index()


def import_fma(out_dir: str | Path, metadata: str | Path, audio_root: str | Path | None = None,
               subset: str = "small", labels: str = "genres", openmic: str | Path | None = None,
               name: str | None = None) -> tuple[Dataset, dict[str, Any]]:
    """Import FMA; returns the dataset and the report of what was left out."""
    metadata = Path(metadata)
    genres = read_genres(metadata / "genres.csv")
    records = read_tracks(metadata / "tracks.csv", genres, subset, labels)
    untagged = [{"track_id": r.track_id, "issue": f"no genre ({labels})"} for r in records if not r.tags]
    records = [r for r in records if r.tags]
    root = Path(audio_root) if audio_root else metadata.parent / f"fma_{subset}"
    for r in records:
        r.path = str((root / r.path).resolve())
    records, missing = existing_audio(records)
    used = {t for r in records for t in r.tags}
    top_title = {row.title: genres.title.get(row.top_level, row.title) for row in genres.itertuples()}
    tags = pd.DataFrame({"tag": sorted(used)}).assign(group=lambda d: d.tag.map(top_title))
    tags = tags.sort_values(["group", "tag"]).reset_index(drop=True)
    meta = {"name": name or Path(out_dir).name, "metadata": str(metadata.resolve()), "subset": subset,
            "labels": labels, "split": "set.split (artist-filtered)",
            "single_label": labels == "genre_top",
            "licence": "metadata CC BY 4.0; audio under each artist's Creative Commons licence"}
    report = {"left_out": untagged + missing, "no_audio": len(missing)}
    table = None
    if openmic:  # read and checked before anything is written
        leaves = {int(r.track_id): [int(g) for g in r.meta["fma_genres"].split(";") if g]
                  for r in read_tracks(metadata / "tracks.csv", genres, "large", "genres")}
        table = instrument_vectors(openmic, genres, leaves)
        table = table[table.tag.isin(used)]
        report["genres_without_instrument_vector"] = sorted(used - set(table.tag))
    ds = assemble(out_dir, records, tags, meta, "fma")
    if table is not None:
        write_csv(ds.root / "knowledge.csv", table)
    return ds, report


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    if not p["metadata"]:
        raise ParamError("data.fma.metadata: required when data.source is 'fma'")
    return import_fma(out_dir, p["metadata"], p["audio_root"], p["subset"], p["labels"], p["openmic"], name=name)
